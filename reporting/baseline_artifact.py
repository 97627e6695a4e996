"""Fetch the default branch's last gated model from its CI artifact, for a fork with no remote.

A fresh fork has no DVC remote and no MLflow server, so a pull request's gate would find no base
model. Every successful push to the default branch uploads its gated model, model metadata and
metrics as an artifact; this command finds the newest successful `push` run of the CI workflow on
the default branch (by run id, through the API), downloads that artifact and unpacks only the
files model/baseline.py reads, plus `source.json` naming the run. Standard library only.

Nothing to fetch (no successful run yet, no artifact, expired) prints why and exits 0: the gate
then says it had no baseline. An API error exits 1. The download link redirects to blob storage;
the redirect is followed without the token, which goes to the API host only.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from reporting.github import DEFAULT_API_URL, USER_AGENT, GitHub, GitHubError

# What model/baseline.py reads from the unpacked folder (a unit test holds the two equal).
MEMBERS = ("models/model.onnx", "models/model.json", "reports/metrics.json")
SOURCE_FILE = "source.json"
MAX_BYTES = 256 * 1024 * 1024  # an artifact larger than this is not a model we shipped


@dataclass(frozen=True)
class Run:
    """The workflow run the baseline comes from."""

    id: int
    head_sha: str
    branch: str
    url: str


class _Refuse(urllib.request.HTTPRedirectHandler):
    """Report a redirect instead of following it: urllib would resend the token."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_Refuse)


def latest_successful_run(github: GitHub, workflow: str, branch: str) -> Run | None:
    """The newest successful `push` run of `workflow` on `branch` in this repository, if any."""
    query = f"branch={quote(branch, safe='')}&event=push&status=success&per_page=1"
    path = f"/repos/{github.repository}/actions/workflows/{quote(workflow, safe='')}/runs?{query}"
    listing, _ = github.request("GET", github.api_url.rstrip("/") + path)
    for run in (listing or {}).get("workflow_runs") or []:
        repository = str((run.get("head_repository") or {}).get("full_name") or "")
        if (
            run.get("event") == "push"
            and run.get("conclusion") == "success"
            and run.get("head_branch") == branch
            and repository == github.repository
        ):
            return Run(int(run["id"]), str(run["head_sha"]), branch, str(run.get("html_url", "")))
    return None


def artifact_url(github: GitHub, run_id: int, name: str) -> str | None:
    """The download URL of the run's unexpired artifact called `name`, if it has one."""
    path = f"/repos/{github.repository}/actions/runs/{run_id}/artifacts?name={quote(name)}"
    listing, _ = github.request("GET", github.api_url.rstrip("/") + path)
    for artifact in (listing or {}).get("artifacts") or []:
        if artifact.get("name") == name and not artifact.get("expired"):
            return str(artifact["archive_download_url"])
    return None


def _read(request: urllib.request.Request, timeout_s: float) -> bytes:
    with _OPENER.open(request, timeout=timeout_s) as response:
        body: bytes = response.read(MAX_BYTES + 1)
    if len(body) > MAX_BYTES:
        raise GitHubError(f"the artifact is over {MAX_BYTES} bytes: refused")
    return body


def download(github: GitHub, url: str) -> bytes:
    """The artifact's zip. The API answers with a redirect to storage, fetched without the token."""
    if urlsplit(url)[:2] != urlsplit(github.api_url)[:2]:
        raise GitHubError(f"refusing to send the token off {github.api_url}: {url}")
    headers = {"Authorization": f"Bearer {github.token}", "User-Agent": USER_AGENT}
    try:
        return _read(urllib.request.Request(url, headers=headers), github.timeout_s)
    except urllib.error.HTTPError as error:
        location = error.headers.get("Location")
        if error.code not in (301, 302, 303, 307, 308) or not location:
            raise GitHubError(f"GET artifact zip failed with HTTP {error.code}") from None
    if urlsplit(location).scheme not in ("https", urlsplit(github.api_url).scheme):
        raise GitHubError(f"refusing a redirect to a {urlsplit(location).scheme!r} URL")
    try:
        plain = urllib.request.Request(location, headers={"User-Agent": USER_AGENT})
        return _read(plain, github.timeout_s)
    except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
        raise GitHubError(f"downloading the artifact failed: {error}") from None


def unpack(archive: bytes, run: Run, into: Path) -> list[str]:
    """Write the expected members (nothing else, whatever the zip holds) and source.json into
    `into`, replacing what was there; returns the members found."""
    staging = Path(tempfile.mkdtemp(prefix=".baseline-", dir=into.parent))
    try:
        with zipfile.ZipFile(io.BytesIO(archive)) as bundle:
            found = [name for name in MEMBERS if name in bundle.namelist()]
            for name in found:
                target = staging / name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(bundle.read(name))
        source = {"run_id": run.id, "head_sha": run.head_sha, "branch": run.branch, "url": run.url}
        (staging / SOURCE_FILE).write_text(json.dumps(source, indent=2) + "\n")
        (staging / ".gitignore").write_text("*\n")  # never committed by accident
        shutil.rmtree(into, ignore_errors=True)
        staging.rename(into)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return found


def fetch(github: GitHub, workflow: str, branch: str, name: str, into: Path) -> str:
    """Fetch and unpack; returns the sentence to print. Raises GitHubError on API errors."""
    run = latest_successful_run(github, workflow, branch)
    if run is None:
        return f"no successful push run of {workflow} on {branch} yet: no baseline artifact"
    url = artifact_url(github, run.id, name)
    if url is None:
        return f"run {run.id} ({run.head_sha[:7]}) has no unexpired artifact {name!r}: no baseline"
    found = unpack(download(github, url), run, into)
    missing = sorted(set(MEMBERS) - set(found))
    lacking = f" (it lacks {', '.join(missing)})" if missing else ""
    origin = f"{workflow} run {run.id} on {branch} ({run.head_sha[:7]})"
    return f"baseline from {name!r} of {origin} -> {into}{lacking}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m reporting.baseline_artifact", description=__doc__
    )
    parser.add_argument("--workflow", default="ci.yml", help="the workflow file that uploads it")
    parser.add_argument("--artifact", default="baseline-model", help="the artifact's name")
    parser.add_argument("--branch", help="default: $DEFAULT_BRANCH")
    parser.add_argument("--into", type=Path, default=Path(".baseline"), help="where to unpack")
    parser.add_argument("--repo", help="owner/name (default: $GITHUB_REPOSITORY)")
    args = parser.parse_args(argv)
    token = os.environ.get("GITHUB_TOKEN", "")
    repo = args.repo or os.environ.get("GITHUB_REPOSITORY", "")
    branch = args.branch or os.environ.get("DEFAULT_BRANCH", "")
    if not (token and repo and branch):
        print(
            "fetch-baseline: needs GITHUB_TOKEN, GITHUB_REPOSITORY and DEFAULT_BRANCH (set in "
            "GitHub Actions): no baseline artifact fetched"
        )
        return 0
    github = GitHub(repo, token, api_url=os.environ.get("GITHUB_API_URL") or DEFAULT_API_URL)
    try:
        print(f"fetch-baseline: {fetch(github, args.workflow, branch, args.artifact, args.into)}")
    except (GitHubError, zipfile.BadZipFile) as error:
        print(f"fetch-baseline: {error}", file=sys.stderr)  # API errors come redacted
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
