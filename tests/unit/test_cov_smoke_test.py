"""The rollout's smoke test names what is wrong with a server's answer, or passes it.

A new version gets traffic only when `smoke_test` returns None; every other answer must say
which way the server failed, since that text is the rollout's reason in its log and state.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from rollout.servers import smoke_test
from serving.schema import TRAFFIC_SOURCE_HEADER

URL = "http://127.0.0.1:9"
BODY = json.dumps({"rows": [{"x": 1.0}, {"x": 2.0}]})
LABELS = ("first", "second")


def _answering(
    monkeypatch: pytest.MonkeyPatch, status: int, content: Any, sent: list[httpx.Request]
) -> None:
    """httpx.post, as the smoke test calls it, answered with `status` and `content` (JSON)."""

    def post(url: str, *, content: str, headers: dict[str, str], timeout: float) -> httpx.Response:
        request = httpx.Request("POST", url, content=content, headers=headers)
        sent.append(request)
        return httpx.Response(status, text=answer, request=request)

    answer = content if isinstance(content, str) else json.dumps(content)
    monkeypatch.setattr(httpx, "post", post)


def test_one_known_label_per_row_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[httpx.Request] = []
    _answering(monkeypatch, 200, [{"label": "first"}, {"label": "second"}], sent)
    assert smoke_test(URL, BODY, LABELS) is None
    assert sent[0].url == f"{URL}/predict"
    assert sent[0].headers[TRAFFIC_SOURCE_HEADER] == "smoke-test"  # kept out of the analysis


def test_a_server_that_cannot_be_reached_is_named_by_its_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refuse(url: str, **_kwargs: Any) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    monkeypatch.setattr(httpx, "post", refuse)
    assert smoke_test(URL, BODY) == "smoke test: ConnectError: connection refused"


def test_an_error_status_is_reported_with_its_body(monkeypatch: pytest.MonkeyPatch) -> None:
    _answering(monkeypatch, 503, "model not loaded", [])
    assert smoke_test(URL, BODY) == "smoke test: HTTP 503: model not loaded"


@pytest.mark.parametrize(
    "answer",
    [
        "not json",
        {"label": "first"},  # an object, not one answer per row
        [{"class": "first"}, {"class": "second"}],  # no label
        [{"label": "first"}],  # a row short
    ],
    ids=["not-json", "object", "no-label", "row-missing"],
)
def test_an_answer_that_is_not_one_label_per_row_is_unexpected(
    monkeypatch: pytest.MonkeyPatch, answer: Any
) -> None:
    _answering(monkeypatch, 200, answer, [])
    problem = smoke_test(URL, BODY, LABELS)
    assert problem is not None
    assert problem.startswith("smoke test: unexpected answer")


def test_labels_the_model_does_not_have_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    _answering(monkeypatch, 200, [{"label": "first"}, {"label": "stranger"}], [])
    assert smoke_test(URL, BODY, LABELS) == (
        "smoke test: labels ['stranger'] are not the model's ['first', 'second']"
    )


def test_without_labels_any_label_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    _answering(monkeypatch, 200, [{"label": "stranger"}, {"label": "other"}], [])
    assert smoke_test(URL, BODY) is None
