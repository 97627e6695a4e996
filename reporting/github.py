"""Post the report as one sticky pull-request comment, updated in place on every push.

Standard library only (urllib, argparse), so the comment job runs `python3 -m reporting.github`
with nothing installed: it never needs the project's environment. The pull request is resolved
from the CI run itself (its head repository, branch and SHA, through the API), never taken from
the run's artifact, which the pull request's own code wrote; only the bot's own marked comment is
edited, so a report can land neither on another pull request nor over someone else's comment.
Transient failures (5xx, 429, rate-limit 403s, dropped connections) are retried a bounded number of
times; permission and naming mistakes fail at once with a message that says what to check. The
token never appears in a message: it is redacted from anything that reaches an exception.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

# The report's first line, how the sticky comment is found again. reporting/render.py writes the
# same string (a unit test holds them equal): this module imports nothing beyond the stdlib.
MARKER = "<!-- mlops-starter-report -->"
BOT_LOGINS = ("github-actions[bot]",)  # who may own the sticky comment (GITHUB_TOKEN posts as this)
DEFAULT_API_URL = "https://api.github.com"
USER_AGENT = "mlops-starter-report"
API_VERSION = "2022-11-28"
NEXT_LINK = re.compile(r'<([^>]+)>\s*;\s*rel="next"')

HINTS = {
    401: "the token was rejected: check that GITHUB_TOKEN is set and has not expired",
    403: (
        "the token may not write comments: check that the job grants `permissions: "
        "pull-requests: write` (pull requests from forks only get a read-only token)"
    ),
    404: (
        "not found: check the repository name (owner/name), the pull request number, and that "
        "the token can see the repository"
    ),
}
RATE_LIMIT_HINT = "rate limited: run the job again later, or raise the wait cap"


class GitHubError(RuntimeError):
    """A GitHub API call failed for good; the message says what to check."""


@dataclass(frozen=True)
class GitHub:
    """A minimal GitHub REST client for one repository."""

    repository: str  # owner/name
    token: str = field(repr=False)
    api_url: str = DEFAULT_API_URL
    attempts: int = 4
    backoff_s: float = 1.0  # waits 1, 2, 4 s between attempts
    max_wait_s: float = 60.0  # a rate limit asking for longer than this fails instead
    timeout_s: float = 30.0
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)

    def _redact(self, text: str) -> str:
        return text.replace(self.token, "***") if self.token else text

    def _headers(self, has_body: bool) -> dict[str, str]:
        headers = {
            "Authorization": f"Bearer {self.token}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": API_VERSION,
            "User-Agent": USER_AGENT,
        }
        if has_body:
            headers["Content-Type"] = "application/json"
        return headers

    def _url(self, path: str) -> str:
        return self.api_url.rstrip("/") + path

    def request(self, method: str, url: str, payload: Any = None) -> tuple[Any, Message]:
        """One API call with bounded retries; returns the decoded JSON body and the headers."""
        data = None if payload is None else json.dumps(payload).encode()
        where = f"{method} {urlsplit(url).path}"
        for attempt in range(1, self.attempts + 1):
            request = urllib.request.Request(
                url, data=data, headers=self._headers(data is not None), method=method
            )
            try:
                with _OPENER.open(request, timeout=self.timeout_s) as response:
                    body = response.read()
                    return (json.loads(body) if body else None), response.headers
            except urllib.error.HTTPError as error:
                limited = _rate_limited(error.code, error.headers)
                wait = self._retry_wait(error.code, error.headers, attempt)
                if wait is None or attempt == self.attempts:
                    detail = self._redact(_error_message(error))
                    message = _explain(where, error.code, detail, attempt, limited)
                    raise GitHubError(message) from None
            except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
                if attempt == self.attempts:
                    reason = self._redact(str(getattr(error, "reason", error)))
                    raise GitHubError(
                        f"{where}: cannot reach {self.api_url} after {attempt} attempts ({reason})"
                    ) from None
                wait = self._backoff(attempt)
            self.sleep(wait)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _backoff(self, attempt: int) -> float:
        return float(self.backoff_s * 2 ** (attempt - 1))

    def _retry_wait(self, status: int, headers: Message, attempt: int) -> float | None:
        """Seconds to wait before retrying, or None when retrying cannot help."""
        if not _rate_limited(status, headers):
            return self._backoff(attempt) if status >= 500 else None
        asked = _asked_wait(headers)
        if asked is None:
            return self._backoff(attempt)
        if asked > self.max_wait_s:
            return None
        return asked

    def comments(self, pr: int) -> list[dict[str, Any]]:
        """Every issue comment on the pull request, following the Link header's pages."""
        url: str | None = self._url(f"/repos/{self.repository}/issues/{pr}/comments?per_page=100")
        found: list[dict[str, Any]] = []
        while url is not None:
            page, headers = self.request("GET", url)
            found += page or []
            url = _next_page(headers.get("Link"))
            if url is not None and not _same_origin(url, self.api_url):
                raise GitHubError(f"refusing to follow a next page off {self.api_url}: {url}")
        return found

    def upsert_comment(
        self, pr: int, body: str, marker: str = MARKER, authors: tuple[str, ...] = BOT_LOGINS
    ) -> tuple[str, int]:
        """Update our comment that starts with `marker`, or create it: ("created"|"updated", id).

        A marked comment by anyone not in `authors` is left alone: anyone can paste the marker.
        """
        for comment in self.comments(pr):
            login = str((comment.get("user") or {}).get("login") or "")
            if login in authors and str(comment.get("body") or "").startswith(marker):
                path = f"/repos/{self.repository}/issues/comments/{comment['id']}"
                updated, _ = self.request("PATCH", self._url(path), {"body": body})
                return "updated", int(updated["id"])
        path = f"/repos/{self.repository}/issues/{pr}/comments"
        created, _ = self.request("POST", self._url(path), {"body": body})
        return "created", int(created["id"])

    def pull_request_of_run(self, run_id: int) -> int | None:
        """The open pull request whose head is exactly the run's head repository and SHA.

        None when there is none (the branch moved on since, or the PR was closed): a newer run
        reports instead. Matching on repository and SHA, not branch name alone, keeps a fork's
        same-named branch from steering the comment.
        """
        run, _ = self.request("GET", self._url(f"/repos/{self.repository}/actions/runs/{run_id}"))
        if run.get("event") != "pull_request":
            raise GitHubError(
                f"run {run_id} was started by {run.get('event')!r}, not by a pull request"
            )
        head_repo = str((run.get("head_repository") or {}).get("full_name") or "")
        head_sha, head_branch = str(run.get("head_sha") or ""), str(run.get("head_branch") or "")
        if not (head_repo and head_sha and head_branch):
            raise GitHubError(f"run {run_id} names no head repository, branch and SHA")
        owner = head_repo.split("/", 1)[0]
        query = f"head={quote(f'{owner}:{head_branch}', safe='')}&state=open&per_page=100"
        pulls, _ = self.request("GET", self._url(f"/repos/{self.repository}/pulls?{query}"))
        numbers = sorted(
            int(pull["number"])
            for pull in pulls or []
            if (pull.get("head") or {}).get("sha") == head_sha
            and ((pull.get("head") or {}).get("repo") or {}).get("full_name") == head_repo
        )
        if len(numbers) > 1:
            raise GitHubError(f"run {run_id}: head {head_sha} is the head of PRs {numbers}")
        return numbers[0] if numbers else None

    def dispatch_workflow(self, workflow: str, ref: str, inputs: dict[str, str]) -> None:
        """Start a `workflow_dispatch` run (the token needs `actions: write`)."""
        path = f"/repos/{self.repository}/actions/workflows/{workflow}/dispatches"
        self.request("POST", self._url(path), {"ref": ref, "inputs": inputs})


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is reported, not followed: urllib would resend the token to any host."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def _rate_limited(status: int, headers: Message) -> bool:
    """429, or a 403 that is GitHub's primary or secondary rate limit rather than a refusal."""
    if status == 429:
        return True
    return status == 403 and (
        headers.get("x-ratelimit-remaining") == "0" or "retry-after" in headers
    )


def _asked_wait(headers: Message) -> float | None:
    """Seconds GitHub asks us to wait: Retry-After, else until x-ratelimit-reset."""
    retry_after = headers.get("retry-after")
    if retry_after is not None and retry_after.strip().isdigit():
        return float(retry_after)
    reset = headers.get("x-ratelimit-reset")
    if reset is not None and reset.strip().isdigit():
        return max(0.0, float(reset) - time.time())
    return None


def _error_message(error: urllib.error.HTTPError) -> str:
    """GitHub's own `message` field when the body has one, else the HTTP reason."""
    try:
        body = json.loads(error.read() or b"{}")
    except (ValueError, OSError):
        body = {}
    message = body.get("message") if isinstance(body, Mapping) else None
    return str(message or error.reason)


def _explain(where: str, status: int, detail: str, attempt: int, rate_limited: bool) -> str:
    tries = f" after {attempt} attempts" if attempt > 1 else ""
    message = f"{where} failed with HTTP {status}{tries}: {detail}"
    hint = RATE_LIMIT_HINT if rate_limited else HINTS.get(status)
    return f"{message}; {hint}" if hint else message


def _next_page(link: str | None) -> str | None:
    match = NEXT_LINK.search(link or "")
    return match.group(1) if match else None


def _same_origin(url: str, base: str) -> bool:
    one, two = urlsplit(url), urlsplit(base)
    return (one.scheme, one.netloc) == (two.scheme, two.netloc)


def post_command(args: argparse.Namespace) -> int:
    """Post the report on the run's pull request (--run-id), or on --pr when a person names it."""
    token = os.environ.get("GITHUB_TOKEN", "")
    repo = args.repo or os.environ.get("GITHUB_REPOSITORY", "")
    run_id = args.run_id if args.run_id is not None else os.environ.get("RUN_ID", "")
    pr = args.pr if args.pr is not None else os.environ.get("PR_NUMBER", "")
    target = ("--run-id or RUN_ID", str(run_id)) if run_id else ("--pr or PR_NUMBER", str(pr))
    required = (("GITHUB_TOKEN", token), ("--repo or GITHUB_REPOSITORY", repo), target)
    missing = [name for name, value in required if not value]
    if missing:
        print(f"post: missing {', '.join(missing)}", file=sys.stderr)
        return 2
    if not target[1].isdigit():
        print(f"post: {target[0]} must be a positive integer, not {target[1]!r}", file=sys.stderr)
        return 2
    api_url = os.environ.get("GITHUB_API_URL") or DEFAULT_API_URL
    github = GitHub(repository=repo, token=token, api_url=api_url)
    authors = tuple(args.author) or BOT_LOGINS
    try:
        number = int(pr) if not run_id else github.pull_request_of_run(int(run_id))
        if number is None:
            print(f"post: run {run_id} is no longer the head of an open pull request: skipped")
            return 0
        claimed = _claimed_pr(args.artifact_pr_file)
        if claimed is not None and claimed != str(number):
            print(
                f"post: refusing: the artifact names pull request {claimed!r}, "
                f"but run {run_id} belongs to #{number}",
                file=sys.stderr,
            )
            return 1
        action, comment_id = github.upsert_comment(number, args.report.read_text(), authors=authors)
    except GitHubError as error:
        print(f"post: {error}", file=sys.stderr)
        return 1
    print(f"{action} comment {comment_id}")
    return 0


def _claimed_pr(path: Path | None) -> str | None:
    """The PR number the artifact claims (written by the PR's own run), or None without one."""
    if path is None or not path.is_file():
        return None
    return path.read_text(encoding="utf-8", errors="replace").strip()


def add_post_arguments(parser: argparse.ArgumentParser) -> None:
    """The `post` command's options, shared by `python -m reporting` and this module's main."""
    parser.add_argument(
        "--report", type=Path, default=Path("reports/report.md"), help="the rendered Markdown"
    )
    parser.add_argument(
        "--run-id",
        type=int,
        help="the CI run whose pull request gets the comment (default: $RUN_ID); "
        "the PR is resolved from the run's head repository and SHA",
    )
    parser.add_argument(
        "--pr", type=int, help="post on this pull request instead (default: $PR_NUMBER)"
    )
    parser.add_argument(
        "--artifact-pr-file",
        type=Path,
        help="the PR number the run's artifact claims: a mismatch is refused",
    )
    parser.add_argument(
        "--author",
        action="append",
        default=[],
        help=f"a login whose marked comment may be edited (repeatable; default {BOT_LOGINS[0]})",
    )
    parser.add_argument("--repo", help="owner/name (default: $GITHUB_REPOSITORY)")
    parser.set_defaults(run=post_command)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reporting.github", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    add_post_arguments(commands.add_parser("post", help="create or update the sticky comment"))
    args = parser.parse_args(argv)
    code: int = args.run(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
