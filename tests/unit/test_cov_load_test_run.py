"""`python -m load_tests.run` points Locust at the right server with the right model, and fails
the load test when there is nothing to load-test.

Locust itself is replaced here by a recorder of the command and environment it would get; the
real run is the `load_test` stage (tests/e2e).
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from load_tests import run
from model.params import Params
from rollout.bento_server import NotReadyError
from rollout.traffic import MODEL_INFO_ENV, ROWS_ENV, SUMMARY_ENV

HOST = "http://127.0.0.1:9"


def _recording(monkeypatch: pytest.MonkeyPatch, exit_code: int) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []

    def fake_run(
        command: Sequence[str], *, env: Mapping[str, str], check: bool
    ) -> subprocess.CompletedProcess[str]:
        calls.append({"command": list(command), "env": dict(env)})
        return subprocess.CompletedProcess(command, exit_code)

    monkeypatch.setattr(subprocess, "run", fake_run)
    return calls


def test_a_running_server_needs_the_model_it_serves(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        run.main(["--reports", str(tmp_path), "--rows", "rows.csv", "--host", HOST])
    assert exited.value.code == 2
    assert "--host needs --model-info" in capsys.readouterr().err


def test_a_running_server_is_load_tested_with_its_models_rows_and_locusts_exit_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _recording(monkeypatch, exit_code=1)  # Locust's verdict: the SLO was missed
    reports, info = tmp_path / "reports", tmp_path / "model.json"
    argv = ["--reports", str(reports), "--rows", "rows.csv", "--host", HOST]
    assert run.main([*argv, "--model-info", str(info)]) == 1
    [call] = calls
    command, env = call["command"], call["env"]
    assert command[command.index("--host") + 1] == HOST
    assert env[MODEL_INFO_ENV] == str(info)
    assert env[ROWS_ENV] == "rows.csv"
    assert env[SUMMARY_ENV] == str(reports / "load_test.json")
    assert reports.is_dir()


def test_a_server_that_never_gets_ready_fails_the_load_test_without_running_locust(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    calls = _recording(monkeypatch, exit_code=0)

    class NeverReady:
        def __init__(self, **_kwargs: object) -> None:
            pass

        def __enter__(self) -> NeverReady:
            raise NotReadyError("not ready within 1 s")

        def __exit__(self, *_exc: object) -> None:
            return None

    monkeypatch.setattr(run, "BentoServer", NeverReady)
    assert run.against_new_server("model:tag", Params.load(), tmp_path, {}) == 1
    assert not calls
    assert "not ready within 1 s" in capsys.readouterr().err
