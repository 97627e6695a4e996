"""The sticky comment is created once, updated after, and failures are retried or explained.

A small stateful fake of the GitHub issue-comments API runs on loopback: comments created through it
appear in its listing, it pages that listing with Link headers, and canned responses queued in
`script` are served first (to inject 5xx, rate limits and refusals).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

import pytest

from reporting import render
from reporting.cli import main
from reporting.github import MARKER, GitHub, GitHubError

TOKEN = "ghp_fake_token_that_must_never_leak_0123456789"
REPO = "owner/name"
PR = 7
BOT = "github-actions[bot]"
RUN_ID = 99
HEAD_SHA = "a" * 40
FORK = "forker/name"
REPORT = f"{MARKER}\n\n## report"


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class FakeGitHub:
    url: str = ""
    comments: list[dict[str, Any]] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)
    script: list[tuple[int, dict[str, str], Any]] = field(default_factory=list)
    page_size: int = 100
    next_id: int = 1000
    run: dict[str, Any] = field(
        default_factory=lambda: {
            "event": "pull_request",
            "head_sha": HEAD_SHA,
            "head_branch": "main",
            "head_repository": {"full_name": FORK},
        }
    )
    pulls: list[dict[str, Any]] = field(default_factory=list)

    def add_comment(self, body: str, login: str = BOT) -> int:
        self.next_id += 1
        self.comments.append({"id": self.next_id, "body": body, "user": {"login": login}})
        return self.next_id

    def add_pull(self, number: int, sha: str = HEAD_SHA, repo: str = FORK) -> None:
        self.pulls.append({"number": number, "head": {"sha": sha, "repo": {"full_name": repo}}})

    def handle(self, request: Request) -> tuple[int, dict[str, str], Any]:
        self.requests.append(request)
        if self.script:
            return self.script.pop(0)
        split = urlsplit(request.path)
        listing = f"/repos/{REPO}/issues/{PR}/comments"
        if request.method == "GET" and split.path == listing:
            page = int(parse_qs(split.query).get("page", ["1"])[0])
            start = (page - 1) * self.page_size
            headers = {}
            if start + self.page_size < len(self.comments):
                headers["Link"] = f'<{self.url}{listing}?per_page=100&page={page + 1}>; rel="next"'
            return 200, headers, self.comments[start : start + self.page_size]
        if request.method == "POST" and split.path == listing:
            comment_id = self.add_comment(request.body["body"])
            return 201, {}, self.comments[-1]
        if request.method == "GET" and split.path == f"/repos/{REPO}/actions/runs/{RUN_ID}":
            return 200, {}, self.run
        if request.method == "GET" and split.path == f"/repos/{REPO}/pulls":
            return 200, {}, self.pulls
        prefix = f"/repos/{REPO}/issues/comments/"
        if request.method == "PATCH" and split.path.startswith(prefix):
            comment_id = int(split.path.removeprefix(prefix))
            for comment in self.comments:
                if comment["id"] == comment_id:
                    comment["body"] = request.body["body"]
                    return 200, {}, comment
        return 404, {}, {"message": "Not Found"}


class _Server(ThreadingHTTPServer):
    fake: FakeGitHub


class _Handler(BaseHTTPRequestHandler):
    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        request = Request(
            self.command,
            self.path,
            {name.lower(): value for name, value in self.headers.items()},
            json.loads(raw) if raw else None,
        )
        status, headers, body = cast(_Server, self.server).fake.handle(request)
        payload = json.dumps(body).encode()
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PATCH = _serve  # noqa: N815 (names http.server dispatches to)

    def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
        pass


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    server = _Server(("127.0.0.1", 0), _Handler)
    server.fake = FakeGitHub(url=f"http://127.0.0.1:{server.server_address[1]}")
    # a short poll interval so shutdown() returns at once
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield server.fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def client(github: FakeGitHub, sleeps: list[float]) -> GitHub:
    return GitHub(REPO, TOKEN, api_url=github.url, backoff_s=0.5, sleep=sleeps.append)


def test_a_comment_is_created_when_none_carries_the_marker(
    github: FakeGitHub, client: GitHub
) -> None:
    github.add_comment("LGTM")
    action, comment_id = client.upsert_comment(PR, REPORT)
    assert action == "created"
    assert github.comments[-1] == {"id": comment_id, "body": REPORT, "user": {"login": BOT}}


def test_a_second_post_updates_the_same_comment(github: FakeGitHub, client: GitHub) -> None:
    _, first = client.upsert_comment(PR, REPORT)
    assert client.upsert_comment(PR, REPORT + " v2") == ("updated", first)
    assert github.comments == [{"id": first, "body": REPORT + " v2", "user": {"login": BOT}}]


def test_every_page_of_comments_is_searched_for_the_marker(
    github: FakeGitHub, client: GitHub
) -> None:
    github.page_size = 2
    for number in range(5):
        github.add_comment(f"review {number}")
    marked = github.add_comment(REPORT)
    assert client.upsert_comment(PR, REPORT) == ("updated", marked)
    assert [request.method for request in github.requests] == ["GET", "GET", "GET", "PATCH"]


def test_a_server_error_is_retried_after_a_backoff(
    github: FakeGitHub, client: GitHub, sleeps: list[float]
) -> None:
    github.script = [(502, {}, {"message": "Bad Gateway"})]
    assert client.upsert_comment(PR, REPORT)[0] == "created"
    assert sleeps == [0.5]


def test_a_rate_limit_is_retried_after_the_wait_github_asks_for(
    github: FakeGitHub, client: GitHub, sleeps: list[float]
) -> None:
    github.script = [(429, {"Retry-After": "3"}, {"message": "slow down"})]
    assert client.upsert_comment(PR, REPORT)[0] == "created"
    assert sleeps == [3.0]


def test_a_rate_limited_403_is_retried(
    github: FakeGitHub, client: GitHub, sleeps: list[float]
) -> None:
    limited = {"x-ratelimit-remaining": "0"}
    github.script = [(403, limited, {"message": "API rate limit exceeded"})]
    assert client.upsert_comment(PR, REPORT)[0] == "created"
    assert sleeps == [0.5]


def test_a_rate_limit_longer_than_the_cap_fails_without_waiting(
    github: FakeGitHub, client: GitHub, sleeps: list[float]
) -> None:
    github.script = [(429, {"Retry-After": "3600"}, {"message": "slow down"})]
    with pytest.raises(GitHubError, match="rate limited"):
        client.upsert_comment(PR, REPORT)
    assert sleeps == []


def test_retries_stop_after_four_attempts(
    github: FakeGitHub, client: GitHub, sleeps: list[float]
) -> None:
    github.script = [(500, {}, {"message": "boom"})] * 10
    with pytest.raises(GitHubError, match="HTTP 500 after 4 attempts"):
        client.upsert_comment(PR, REPORT)
    assert len(github.requests) == 4
    assert sleeps == [0.5, 1.0, 2.0]


@pytest.mark.parametrize(
    ("status", "hint"),
    [
        (401, "GITHUB_TOKEN"),
        (403, "pull-requests: write"),
        (404, "repository name"),
    ],
)
def test_a_refusal_fails_at_once_and_says_what_to_check(
    github: FakeGitHub, client: GitHub, sleeps: list[float], status: int, hint: str
) -> None:
    github.script = [(status, {}, {"message": "nope"})]
    with pytest.raises(GitHubError, match=hint):
        client.upsert_comment(PR, REPORT)
    assert len(github.requests) == 1
    assert sleeps == []


def test_requests_carry_the_api_headers_and_a_json_body(github: FakeGitHub, client: GitHub) -> None:
    client.upsert_comment(PR, REPORT)
    post = github.requests[-1]
    assert post.method == "POST"
    assert post.body == {"body": REPORT}
    assert post.headers["authorization"] == f"Bearer {TOKEN}"
    assert post.headers["accept"] == "application/vnd.github+json"
    assert post.headers["x-github-api-version"] == "2022-11-28"
    assert post.headers["content-type"] == "application/json"
    assert post.headers["user-agent"]


def test_the_listing_asks_for_full_pages(github: FakeGitHub, client: GitHub) -> None:
    client.upsert_comment(PR, REPORT)
    assert github.requests[0].path == f"/repos/{REPO}/issues/{PR}/comments?per_page=100"


def test_the_token_never_appears_in_an_error_even_when_echoed(
    github: FakeGitHub, client: GitHub
) -> None:
    github.script = [(401, {}, {"message": f"bad credentials: {TOKEN}"})]
    with pytest.raises(GitHubError) as caught:
        client.upsert_comment(PR, REPORT)
    assert TOKEN not in str(caught.value)
    assert TOKEN not in repr(client)


def _run_post(github: FakeGitHub, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> int:
    report = tmp_path / "report.md"
    report.write_text(REPORT)
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    monkeypatch.setenv("GITHUB_API_URL", github.url)
    monkeypatch.setenv("GITHUB_REPOSITORY", REPO)
    monkeypatch.setenv("PR_NUMBER", str(PR))
    return main(["post", "--report", str(report)])


def test_the_post_command_prints_what_it_did(
    github: FakeGitHub,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = _run_post(github, monkeypatch, tmp_path)
    assert code == 0
    assert capsys.readouterr().out == f"created comment {github.comments[0]['id']}\n"


def test_the_post_command_fails_without_showing_the_token(
    github: FakeGitHub,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    github.script = [(403, {}, {"message": f"token {TOKEN} may not write"})]
    code = _run_post(github, monkeypatch, tmp_path)
    captured = capsys.readouterr()
    assert code == 1
    assert "pull-requests: write" in captured.err
    assert TOKEN not in captured.out + captured.err


def test_a_workflow_dispatch_posts_ref_and_inputs(github: FakeGitHub, client: GitHub) -> None:
    github.script = [(204, {}, None)]
    client.dispatch_workflow("retrain.yml", "main", {"reason": "drift"})
    [request] = github.requests
    assert request.method == "POST"
    assert request.path == f"/repos/{REPO}/actions/workflows/retrain.yml/dispatches"
    assert request.body == {"ref": "main", "inputs": {"reason": "drift"}}


def test_a_marked_comment_by_another_user_is_never_edited(
    github: FakeGitHub, client: GitHub
) -> None:
    theirs = github.add_comment(REPORT + " forged", login="mallory")
    action, ours = client.upsert_comment(PR, REPORT)
    assert action == "created"
    assert ours != theirs
    assert github.comments[0]["body"] == REPORT + " forged"
    assert "PATCH" not in [request.method for request in github.requests]


def test_the_render_and_the_poster_share_one_marker() -> None:
    assert render.MARKER == MARKER


def test_the_pull_request_is_resolved_from_the_runs_head_repository_and_sha(
    github: FakeGitHub, client: GitHub
) -> None:
    github.add_pull(3, sha="b" * 40)  # the branch moved on: an older head
    github.add_pull(5, repo=REPO)  # the same SHA and branch name in another repository
    github.add_pull(PR)
    assert client.pull_request_of_run(RUN_ID) == PR
    lookup = github.requests[-1]
    assert urlsplit(lookup.path).path == f"/repos/{REPO}/pulls"
    assert parse_qs(urlsplit(lookup.path).query)["head"] == ["forker:main"]


def test_a_run_that_is_no_longer_a_pull_requests_head_resolves_to_none(
    github: FakeGitHub, client: GitHub
) -> None:
    github.add_pull(PR, sha="b" * 40)
    assert client.pull_request_of_run(RUN_ID) is None


def test_a_run_not_started_by_a_pull_request_is_refused(github: FakeGitHub, client: GitHub) -> None:
    github.run["event"] = "push"
    with pytest.raises(GitHubError, match="not by a pull request"):
        client.pull_request_of_run(RUN_ID)


def _run_post_for_run(
    github: FakeGitHub, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, claimed: str | None
) -> int:
    report = tmp_path / "report.md"
    report.write_text(REPORT)
    args = ["post", "--report", str(report), "--run-id", str(RUN_ID)]
    if claimed is not None:
        (tmp_path / "pr-number.txt").write_text(claimed + "\n")
        args += ["--artifact-pr-file", str(tmp_path / "pr-number.txt")]
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    monkeypatch.setenv("GITHUB_API_URL", github.url)
    monkeypatch.setenv("GITHUB_REPOSITORY", REPO)
    monkeypatch.delenv("PR_NUMBER", raising=False)
    return main(args)


def test_the_post_command_comments_on_the_pull_request_of_the_run(
    github: FakeGitHub, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    github.add_pull(PR)
    assert _run_post_for_run(github, monkeypatch, tmp_path, claimed=str(PR)) == 0
    assert github.requests[-1].method == "POST"
    assert urlsplit(github.requests[-1].path).path == f"/repos/{REPO}/issues/{PR}/comments"


def test_an_artifact_naming_another_pull_request_is_refused(
    github: FakeGitHub,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    github.add_pull(PR)
    assert _run_post_for_run(github, monkeypatch, tmp_path, claimed="1") == 1
    assert "refusing" in capsys.readouterr().err
    assert [request.method for request in github.requests] == ["GET", "GET"]
    assert github.comments == []


def test_a_stale_run_posts_nothing(
    github: FakeGitHub,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert _run_post_for_run(github, monkeypatch, tmp_path, claimed=str(PR)) == 0
    assert "skipped" in capsys.readouterr().out
    assert github.comments == []
