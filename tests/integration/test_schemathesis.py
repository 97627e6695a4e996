"""Schemathesis against the real service's own OpenAPI document: every check, valid and invalid
data, zero failures.

One documented exception: a schema-valid row may still be one the model cannot score (every
number fits float32, yet the graph overflows), which is a 422 naming the row, never a 200 with
null probabilities; so /predict's positive-data check also accepts 422."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from rollout.bento_server import BentoServer
from tests.pipeline_fixtures import VENV_BIN, project_env, serving

pytestmark = pytest.mark.slow

CONFIG = """
[[operations]]
include-path = "/predict"
checks.positive_data_acceptance.expected-statuses = ["2xx", "422"]
"""
MAX_EXAMPLES = 60  # per operation and phase: about 1,000 requests, well under 2 minutes


@pytest.fixture(scope="module")
def server(pipeline_repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BentoServer]:
    with serving(pipeline_repo, tmp_path_factory.mktemp("schemathesis")) as running:
        yield running


def test_schemathesis_finds_no_failure_in_the_documented_api(
    server: BentoServer, tmp_path: Path
) -> None:
    cli = VENV_BIN / "schemathesis"
    if not cli.exists() and shutil.which("schemathesis") is None:
        pytest.skip("schemathesis is not installed (pip install -e '.[dev]')")
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    command = [str(cli if cli.exists() else "schemathesis"), "--config-file", str(config)]
    command += ["run", f"{server.url}/docs.json", "--checks", "all", "--mode", "all"]
    command += ["--max-examples", str(MAX_EXAMPLES), "--workers", "1"]
    command += ["--request-timeout", "10", "--seed", "14", "--no-color"]
    result = subprocess.run(
        command, cwd=tmp_path, env=project_env(), capture_output=True, text=True, timeout=300
    )
    report = result.stdout + result.stderr
    assert result.returncode == 0, report[-4000:]
    assert "No issues found" in report, report[-4000:]
