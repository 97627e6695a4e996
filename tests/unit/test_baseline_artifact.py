"""The default branch's last gated model is fetched by run id from its CI artifact.

A recording fake of the GitHub Actions API runs on loopback: the workflow-runs listing, a run's
artifacts, the artifact's download link (a redirect, as GitHub answers) and the storage it
redirects to. Every request is recorded with its headers, so the tests can say where the token went.
"""

from __future__ import annotations

import io
import json
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from model.baseline import ARTIFACT_DIR, ARTIFACT_SOURCE, from_artifact
from reporting.baseline_artifact import MEMBERS, SOURCE_FILE, main
from tests.conftest import REPO_ROOT

TOKEN = "ghp_fake_token_that_must_never_leak_0123456789"
REPO = "owner/name"
RUN_ID = 4242
SHA = "b" * 40
ARTIFACT = "baseline-model"
METRICS = {"roc_auc": 0.97}
MODEL = b"onnx bytes"


def _zip(extra: dict[str, bytes] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        bundle.writestr("models/model.onnx", MODEL)
        bundle.writestr("models/model.json", json.dumps({"sha256": "c" * 64}))
        bundle.writestr("reports/metrics.json", json.dumps(METRICS))
        for name, data in (extra or {}).items():
            bundle.writestr(name, data)
    return buffer.getvalue()


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]


@dataclass
class FakeActions:
    url: str = ""
    requests: list[Recorded] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)
    artifacts: list[dict[str, Any]] = field(default_factory=list)
    archive: bytes = field(default_factory=_zip)
    status: int = 200  # of the runs listing

    def add_run(self, **overrides: Any) -> None:
        run = {
            "id": RUN_ID,
            "head_sha": SHA,
            "head_branch": "main",
            "event": "push",
            "conclusion": "success",
            "head_repository": {"full_name": REPO},
            "html_url": f"https://github.com/{REPO}/actions/runs/{RUN_ID}",
        }
        self.runs.append(run | overrides)

    def add_artifact(self, expired: bool = False) -> None:
        self.artifacts.append(
            {
                "id": 9,
                "name": ARTIFACT,
                "expired": expired,
                "archive_download_url": f"{self.url}/repos/{REPO}/actions/artifacts/9/zip",
            }
        )

    def handle(self, path: str) -> tuple[int, dict[str, str], bytes]:
        split = urlsplit(path)
        if split.path == f"/repos/{REPO}/actions/workflows/ci.yml/runs":
            body = {"workflow_runs": self.runs} if self.status == 200 else {"message": "Nope"}
            return self.status, {}, json.dumps(body).encode()
        if split.path == f"/repos/{REPO}/actions/runs/{RUN_ID}/artifacts":
            name = parse_qs(split.query)["name"][0]
            found = [a for a in self.artifacts if a["name"] == name]
            return 200, {}, json.dumps({"artifacts": found}).encode()
        if split.path == f"/repos/{REPO}/actions/artifacts/9/zip":
            return 302, {"Location": f"{self.url}/storage/9.zip?sig=secret"}, b""
        if split.path == "/storage/9.zip":
            return 200, {}, self.archive
        return 404, {}, b'{"message": "Not Found"}'


class _Server(ThreadingHTTPServer):
    fake: FakeActions


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        fake = cast(_Server, self.server).fake
        headers = {name.lower(): value for name, value in self.headers.items()}
        fake.requests.append(Recorded(self.path, headers))
        status, extra, body = fake.handle(self.path)
        self.send_response(status)
        for name, value in extra.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
        pass


@pytest.fixture
def actions(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeActions]:
    server = _Server(("127.0.0.1", 0), _Handler)
    server.fake = FakeActions(url=f"http://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    monkeypatch.setenv("GITHUB_REPOSITORY", REPO)
    monkeypatch.setenv("DEFAULT_BRANCH", "main")
    monkeypatch.setenv("GITHUB_API_URL", server.fake.url)
    try:
        yield server.fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _fetch(into: Path) -> int:
    return main(["--workflow", "ci.yml", "--artifact", ARTIFACT, "--into", str(into)])


def test_it_asks_for_the_newest_successful_push_run_on_the_default_branch(
    actions: FakeActions, tmp_path: Path
) -> None:
    assert _fetch(tmp_path / "baseline") == 0
    query = parse_qs(urlsplit(actions.requests[0].path).query)
    assert query == {
        "branch": ["main"],
        "event": ["push"],
        "status": ["success"],
        "per_page": ["1"],
    }


def test_the_artifact_of_that_run_is_unpacked_where_the_gate_looks(
    actions: FakeActions, tmp_path: Path
) -> None:
    actions.add_run()
    actions.add_artifact()
    into = tmp_path / "baseline"
    assert _fetch(into) == 0
    baseline = from_artifact(into, Path("reports/metrics.json"), Path("models/model.onnx"))
    assert (baseline.kind, baseline.metrics, baseline.model) == ("artifact", METRICS, MODEL)
    assert baseline.source == f"default-branch run {RUN_ID} (main {SHA[:7]})"


def test_only_the_expected_files_leave_the_zip(actions: FakeActions, tmp_path: Path) -> None:
    actions.add_run()
    actions.add_artifact()
    actions.archive = _zip({"../escaped.txt": b"x", "reports/other.json": b"{}"})
    into = tmp_path / "baseline"
    assert _fetch(into) == 0
    written = sorted(str(p.relative_to(into)) for p in into.rglob("*") if p.is_file())
    assert written == sorted([*MEMBERS, SOURCE_FILE, ".gitignore"])
    assert not (tmp_path / "escaped.txt").exists()


def test_the_token_goes_to_the_api_and_never_to_the_storage_redirect(
    actions: FakeActions, tmp_path: Path
) -> None:
    actions.add_run()
    actions.add_artifact()
    assert _fetch(tmp_path / "baseline") == 0
    by_path = {urlsplit(r.path).path: r.headers for r in actions.requests}
    assert by_path[f"/repos/{REPO}/actions/artifacts/9/zip"]["authorization"] == f"Bearer {TOKEN}"
    assert "authorization" not in by_path["/storage/9.zip"]


def test_the_source_file_names_the_run(actions: FakeActions, tmp_path: Path) -> None:
    actions.add_run()
    actions.add_artifact()
    into = tmp_path / "baseline"
    assert _fetch(into) == 0
    source = json.loads((into / SOURCE_FILE).read_text())
    assert (source["run_id"], source["head_sha"], source["branch"]) == (RUN_ID, SHA, "main")


@pytest.mark.parametrize(
    "override",
    [
        {"head_repository": {"full_name": "forker/name"}},
        {"head_branch": "feature"},
        {"event": "pull_request"},
        {"conclusion": "failure"},
    ],
    ids=["another repository", "another branch", "a pull request", "a failed run"],
)
def test_a_run_that_is_not_a_successful_default_branch_push_is_never_taken(
    actions: FakeActions,
    tmp_path: Path,
    override: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
) -> None:
    actions.add_run(**override)
    actions.add_artifact()
    assert _fetch(tmp_path / "baseline") == 0
    assert not (tmp_path / "baseline").exists()
    assert "no successful push run" in capsys.readouterr().out


def test_no_successful_run_yet_fetches_nothing_and_passes(
    actions: FakeActions, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _fetch(tmp_path / "baseline") == 0
    assert not (tmp_path / "baseline").exists()
    assert "no successful push run of ci.yml on main yet" in capsys.readouterr().out


def test_an_expired_artifact_fetches_nothing_and_says_which_run(
    actions: FakeActions, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    actions.add_run()
    actions.add_artifact(expired=True)
    assert _fetch(tmp_path / "baseline") == 0
    assert not (tmp_path / "baseline").exists()
    assert f"run {RUN_ID} ({SHA[:7]}) has no unexpired artifact" in capsys.readouterr().out


def test_an_api_error_fails_without_showing_the_token(
    actions: FakeActions, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    actions.status = 404
    assert _fetch(tmp_path / "baseline") == 1
    err = capsys.readouterr().err
    assert "HTTP 404" in err
    assert TOKEN not in err


def test_outside_github_actions_it_says_so_and_passes(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("GITHUB_TOKEN", "GITHUB_REPOSITORY", "DEFAULT_BRANCH"):
        monkeypatch.delenv(name, raising=False)
    assert _fetch(tmp_path / "baseline") == 0
    assert "needs GITHUB_TOKEN" in capsys.readouterr().out


def test_the_fetcher_writes_what_the_gate_reads() -> None:
    """The paths the gate stage passes (deploy/dvc.yaml) are among the members."""
    stages = yaml.safe_load((REPO_ROOT / "deploy/dvc.yaml").read_text())["stages"]
    gate = stages["gate"]["cmd"].split()
    assert {path for path in gate if path in ("models/model.onnx", "reports/metrics.json")} == {
        "models/model.onnx",
        "reports/metrics.json",
    }
    assert {"models/model.onnx", "reports/metrics.json"} <= set(MEMBERS)
    assert SOURCE_FILE == ARTIFACT_SOURCE


def test_make_fetch_baseline_unpacks_where_the_gate_looks() -> None:
    makefile = (REPO_ROOT / "Makefile").read_text()
    assert (
        f"python3 -m reporting.baseline_artifact --workflow ci.yml --artifact {ARTIFACT} "
        in makefile
    )
    assert f"--into {ARTIFACT_DIR.as_posix()}\n" in makefile
