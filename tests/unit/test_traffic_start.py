"""A rollout's traffic counts as started when its first request arrives, not when Locust is
launched: a stand-in `locust` (a shell script beside a stand-in interpreter) plays each case."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from model.params import TrafficParams
from rollout import traffic as traffic_module
from rollout.traffic import Traffic, TrafficError

PARAMS = TrafficParams(users=1, requests_per_user_s=1, min_offered_share=0.5)


def _traffic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, script: str) -> Traffic:
    """Traffic whose `locust` is `script` (sh), with ARRIVALS the log it may append to."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    locust = bin_dir / "locust"
    locust.write_text(f"#!/bin/sh\n{script}\n")
    locust.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(bin_dir / "python"))
    arrivals = tmp_path / "access.log"
    monkeypatch.setenv("ARRIVALS", str(arrivals))
    return Traffic(
        "http://127.0.0.1:1", PARAMS, 5, tmp_path / "work", Path("model.json"), arrivals=arrivals
    )


def test_entering_waits_for_the_first_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clients = _traffic(tmp_path, monkeypatch, 'sleep 0.5; echo request >> "$ARRIVALS"; sleep 30')
    started = time.monotonic()
    with clients:
        assert (tmp_path / "access.log").read_text() == "request\n"
        assert time.monotonic() - started >= 0.5
    assert clients.process is not None
    assert clients.process.poll() is not None


def test_clients_that_exit_before_a_request_are_an_error_naming_their_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clients = _traffic(tmp_path, monkeypatch, "echo 'no such host' >&2; exit 3")
    with pytest.raises(TrafficError, match=r"exited \(3\).*traffic\.log"), clients:
        pass
    assert "no such host" in (tmp_path / "work/traffic.log").read_text()


def test_clients_that_never_send_are_stopped_after_the_start_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(traffic_module, "START_TIMEOUT_S", 0.5)
    clients = _traffic(tmp_path, monkeypatch, "sleep 30")
    with pytest.raises(TrafficError, match=r"no request reached .* within 0\.5 s"), clients:
        pass
    assert clients.process is not None
    assert clients.process.poll() is not None


def test_requests_already_in_the_log_do_not_count_as_a_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(traffic_module, "START_TIMEOUT_S", 0.5)
    (tmp_path / "access.log").write_text("an earlier rollout's request\n")
    clients = _traffic(tmp_path, monkeypatch, "sleep 30")
    with pytest.raises(TrafficError), clients:
        pass
