"""README "Your data in five minutes", followed literally on the second example table.

A fresh copy of the project, the example CSV copied into data/raw/, `make contract`, then
`make pipeline` through the first rollout, then `make serve` answering raw rows with strings
and nulls. Nothing in the reports, the card or the Bento may mention the project's own table.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from model.contract import Contract
from rollout.ports import free_port
from tests.conftest import REPO_ROOT
from tests.pipeline_fixtures import copy_project, project_env

pytestmark = pytest.mark.slow

README = REPO_ROOT / "README.md"
EXAMPLE = "data/examples/penguins.csv"


def readme_steps() -> list[str]:
    """The shell lines of the README's "Your data in five minutes" code block."""
    text = README.read_text()
    section = text.split("## Your data in five minutes", 1)[1].split("\n## ", 1)[0]
    block = section.split("```bash\n", 1)[1].split("```", 1)[0]
    return [line.split("#", 1)[0].strip() for line in block.splitlines() if line.strip()]


def _make(repo: Path, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    # -o: the copy shares this checkout's .venv, already installed: never reinstall it here.
    return subprocess.run(
        ["make", "--no-print-directory", "-o", ".venv/.installed", *args],
        cwd=repo,
        env=project_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="module")
def your_data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    repo = copy_project(tmp_path_factory.mktemp("your-data"))
    (repo / ".venv").symlink_to(REPO_ROOT / ".venv")
    steps = readme_steps()
    outputs: dict[str, subprocess.CompletedProcess[str]] = {}
    for step in steps:
        if step.startswith("cp "):
            # the README copies "your" CSV: here, the example table the project ships
            target = step.split()[2]
            assert target.startswith("data/raw")
            shutil.copy(repo / EXAMPLE, repo / target)
        elif step.startswith("make contract"):
            # the README's placeholders, filled in for the example table
            assert "CSV=data/raw/" in step
            assert "LABEL=" in step
            args = [f"CSV=data/raw/{Path(EXAMPLE).name}", "LABEL=species"]
            outputs["contract"] = _make(repo, "contract", *args)
        elif step == "make pipeline":
            outputs["pipeline"] = _make(repo, "pipeline", timeout=1500)
    return {"repo": repo, "steps": steps, "outputs": outputs}


def test_the_readme_steps_are_contract_then_pipeline() -> None:
    steps = readme_steps()
    assert [s.split()[0] + " " + s.split()[1] for s in steps if s.startswith("make")][:2] == [
        "make contract",
        "make pipeline",
    ]


def test_make_contract_drafts_a_contract_that_fits(your_data: dict[str, Any]) -> None:
    result = your_data["outputs"]["contract"]
    assert result.returncode == 0, result.stdout + result.stderr
    repo: Path = your_data["repo"]
    contract = Contract.load(repo / "data/contract.yaml")
    assert contract.label.name == "species"
    assert len(contract.label.values) == 3
    assert {f.kind for f in contract.features} >= {"numeric", "categorical"}
    assert any(f.nullable for f in contract.features)
    stages = yaml.safe_load((repo / "dvc.yaml").read_text())
    assert stages["vars"][0]["raw_data"] == f"data/raw/{Path(EXAMPLE).name}"


def test_make_pipeline_runs_every_stage_through_the_first_rollout(
    your_data: dict[str, Any],
) -> None:
    result = your_data["outputs"]["pipeline"]
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    repo: Path = your_data["repo"]
    gate = json.loads((repo / "reports/gate.json").read_text())
    assert gate["passed"] is True
    assert (repo / "reports/load_test.json").is_file()
    assert (repo / "reports/report.md").is_file()
    assert "decision: promote" in (result.stdout + result.stderr).lower()


def test_no_output_mentions_the_project_table(your_data: dict[str, Any]) -> None:
    """The report, the card, the Bento and model.json know only the new table."""
    repo: Path = your_data["repo"]
    shipped = Contract.load(REPO_ROOT / "data/contract.yaml")
    banned = {shipped.label.name, *shipped.label.values, *shipped.feature_names}
    if shipped.dataset is not None:
        banned.add(shipped.dataset.name)
    texts = {
        name: (repo / name).read_text()
        for name in ("reports/report.md", "reports/model_card.md", "models/model.json")
    }
    bento = json.loads((repo / "reports/bento.json").read_text())
    texts["bento README"] = (Path(bento["path"]) / "README.md").read_text()
    for name, text in texts.items():
        found = sorted(
            word for word in banned if re.search(rf"(?<!\w){re.escape(word)}(?!\w)", text)
        )
        assert not found, f"{name} mentions {found}"


def test_make_serve_answers_raw_rows_with_strings_and_nulls(your_data: dict[str, Any]) -> None:
    repo: Path = your_data["repo"]
    info = json.loads((repo / "models/model.json").read_text())
    row = dict(info["examples"][0])
    nullable = [item["name"] for item in info["inputs"] if item.get("nullable")]
    row.update(dict.fromkeys(nullable, None))
    port = free_port()
    server = subprocess.Popen(
        ["make", "--no-print-directory", "-o", ".venv/.installed", "serve", f"PORT={port}"],
        cwd=repo,
        env=project_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2):
                    break
            except OSError:
                assert time.monotonic() < deadline, "make serve never became ready"
                time.sleep(1)
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/predict",
            data=json.dumps({"rows": [row, info["examples"][1]]}).encode(),
            headers={"content-type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            answer = json.loads(response.read())
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    assert [prediction["label"] in info["labels"] for prediction in answer] == [True, True]
    assert set(answer[0]["probabilities"]) == set(info["labels"])
