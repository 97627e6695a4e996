"""The canary analysis pinned where `make mutation` found it unpinned: what a log line with
missing or short fields becomes, which lines a window keeps, the figures a step records, and how
the agreement replay talks to the servers (docs/testing.md lists the equivalent survivors)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from model.params import Params
from rollout.analysis import (
    Attempt,
    Disagreement,
    LogEntry,
    VariantStats,
    client_failures,
    disagreement_checks,
    judge,
    label_disagreement,
    parse_entry,
    read_entries,
    wilson_bounds,
)
from serving.schema import TRAFFIC_SOURCE_HEADER
from tests.conftest import REPO_ROOT

LIMITS = Params.load(REPO_ROOT / "params.yaml").rollout.analysis
STABLE, CANARY = "http://127.0.0.1:9001", "http://127.0.0.1:9002"
REAL_CLIENT = httpx.Client


def test_a_line_without_fields_is_an_empty_entry_with_zeros_not_a_guess() -> None:
    assert parse_entry("{}") == LogEntry(msec=0.0, status=0, uri="", attempts=(), body="")


def test_attempts_without_a_status_or_time_get_status_0_and_no_time() -> None:
    line = {
        "msec": 1234.5,
        "status": 200,
        "uri": "/predict",
        "upstream": "[::1]:9002, 127.0.0.1:9001, 127.0.0.1:9003",
        "upstream_status": "502, 200",
        "upstream_time": "0.500, 0.004",
        "body": "{}",
    }
    assert parse_entry(json.dumps(line)) == LogEntry(
        msec=1234.5,
        status=200,
        uri="/predict",
        attempts=(Attempt(9002, 502, 0.5), Attempt(9001, 200, 0.004), Attempt(9003, 0, 0.0)),
        body="{}",
    )


def _entry(msec: float, uri: str = "/predict", status: int = 200) -> str:
    return json.dumps({"msec": msec, "status": status, "uri": uri, "upstream": "", "body": "b"})


def test_a_window_keeps_its_start_drops_its_end_other_uris_and_partial_lines(
    tmp_path: Path,
) -> None:
    log = tmp_path / "access.log"
    lines = [
        _entry(9.999),
        _entry(10.0),
        _entry(15.0, uri="/healthz"),
        _entry(19.5),
        _entry(20.0),
        '{"msec": 15',
    ]
    log.write_bytes(("\n".join(lines) + "\n").encode() + b'{"uri": "/predict", "body": "\xff"}\n')
    kept = read_entries(log, since=10.0, until=20.0)
    assert [entry.msec for entry in kept] == [10.0, 19.5]


def test_bytes_that_are_not_utf8_are_replaced_not_fatal(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_bytes(b'{"msec": 1, "uri": "/predict", "body": "caf\xe9 \xc3\xa9"}\n')
    [entry] = read_entries(log, since=0.0, until=2.0)
    assert entry.body == "caf\ufffd \u00e9"


def test_a_variant_is_described_with_rates_rounded_to_4_places_and_p99_to_2() -> None:
    stats = VariantStats(7, 2, 5 / 7, 12.34567, client_errors=1)
    assert stats.describe() == {
        "requests": 7,
        "failures": 2,
        "success_rate": 0.7143,
        "client_errors": 1,
        "client_error_rate": 0.1429,
        "p99_ms": 12.35,
    }


def test_client_failures_count_each_5xx_once_and_no_4xx() -> None:
    entries = [parse_entry(_entry(1.0, status=status)) for status in (499, 500, 501, 200)]
    assert client_failures([e for e in entries if e]) == 2


def test_one_differing_row_of_one_can_exceed_a_small_limit() -> None:
    lower = wilson_bounds(1, 1)[0]
    assert Disagreement(1, 1).exceeds(lower / 2) is True
    assert Disagreement(0, 0).exceeds(0.0) is False


def test_a_disagreement_without_a_kind_reads_plainly() -> None:
    assert Disagreement(1, 4).describe() == "25.0% of 4 rows"
    assert Disagreement(1, 4).describe("mirrored") == "25.0% of 4 mirrored rows"


def test_agreement_figures_are_recorded_under_their_names() -> None:
    assert disagreement_checks(None) == {"label_disagreement": None}
    sample = Disagreement(1, 3)
    assert disagreement_checks(sample) == {
        "label_disagreement": 1 / 3,
        "label_disagreement_rows": 3,
        "label_disagreement_lower_bound": round(sample.lower_bound(), 4),
    }
    assert disagreement_checks(sample)["label_disagreement_lower_bound"] == round(
        wilson_bounds(1, 3)[0], 4
    )


def test_without_stable_figures_a_canary_refusing_half_its_traffic_fails() -> None:
    """No stable figures mean stable refused nothing (not a one-request sample)."""
    canary = VariantStats(1000, 0, 1.0, 1.0, client_errors=500)
    low = wilson_bounds(500, 1000)[0]
    assert LIMITS.max_client_error_increase < low < wilson_bounds(0, 1)[1]
    verdict = judge(canary, None, LIMITS)
    assert any(reason.startswith("client errors") for reason in verdict.reasons)


class _Servers:
    """Both servers behind one httpx MockTransport: each row labelled by `label`, what each
    request carried kept in `requests`, the client's options in `options`."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, canary_status: int = 200) -> None:
        self.requests: list[httpx.Request] = []
        self.options: dict[str, Any] = {}
        self.canary_status = canary_status

        def client(**options: Any) -> httpx.Client:
            self.options = options
            return REAL_CLIENT(transport=httpx.MockTransport(self.handle), **options)

        monkeypatch.setattr(httpx, "Client", client)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        rows = json.loads(request.content)["rows"]
        refused = self.canary_status != 200 or rows[0]["label"] == "refused"
        if request.url.port == 9002 and refused:
            return httpx.Response(500, json={"detail": "refused"})
        return httpx.Response(200, json=[{"label": str(row["label"])} for row in rows])


def _bodies(*labels: str) -> list[str]:
    return [json.dumps({"rows": [{"label": label}]}) for label in labels]


def test_the_replay_sends_json_marked_as_agreement_traffic_with_a_10_s_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    servers = _Servers(monkeypatch)
    assert label_disagreement(_bodies("a", "b"), STABLE, CANARY) == Disagreement(0, 2)
    assert servers.options["timeout"] == 10
    assert len(servers.requests) == 4
    for request in servers.requests:
        assert request.headers["content-type"] == "application/json"
        assert request.headers[TRAFFIC_SOURCE_HEADER] == "agreement"
    label_disagreement(_bodies("a"), STABLE, CANARY, timeout_s=3)
    assert servers.options["timeout"] == 3


def test_rows_a_server_refused_are_not_compared_and_none_compared_is_none(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _Servers(monkeypatch)
    assert label_disagreement(_bodies("refused", "a"), STABLE, CANARY) == Disagreement(0, 1)
    _Servers(monkeypatch, canary_status=500)
    assert label_disagreement(_bodies("a", "b"), STABLE, CANARY) is None


def test_canary_bodies_must_match_the_stable_ones_one_to_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _Servers(monkeypatch)
    with pytest.raises(ValueError, match="zip"):
        label_disagreement(_bodies("a", "b"), STABLE, CANARY, _bodies("a"))


def test_an_answer_with_fewer_labels_than_rows_is_an_error_not_a_partial_count(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _Servers(monkeypatch)
    two_rows = json.dumps({"rows": [{"label": "a"}, {"label": "b"}]})
    with pytest.raises(ValueError, match="zip"):
        label_disagreement([two_rows], STABLE, CANARY, _bodies("a"))
