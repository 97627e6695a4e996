"""The GitHub workflows are thin, pinned, least-privilege, and every step runs on a laptop too."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from model.tracking import DEFAULT_TRACKING_URI
from reporting.baseline_artifact import MEMBERS
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
        if "workflow_run" in triggers and path.name != "cd.yml":  # cd.yml: a tested push only
            assert "head_sha" not in path.read_text(), path.name
            assert "head.sha" not in path.read_text(), path.name


def _checkouts(path: Path) -> list[dict[str, Any]]:
    return [
        step
        for step in _steps(_load(path))
        if str(step.get("uses", "")).startswith("actions/checkout@")
    ]


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_no_checkout_leaves_the_token_in_the_git_config(path: Path) -> None:
    for step in _checkouts(path):
        assert step.get("with", {}).get("persist-credentials") is False, f"{path.name}: {step}"


def _self_hosted_jobs() -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path.name, name, job)
        for path in WORKFLOWS
        for name, job in _load(path)["jobs"].items()
        if "self-hosted" in str(job.get("runs-on"))
    ]


def test_the_self_hosted_runner_is_used_only_by_cd_and_monitor() -> None:
    assert {(workflow, name) for workflow, name, _ in _self_hosted_jobs()} == {
        ("cd.yml", "rollout-local"),
        ("monitor.yml", "drift"),
    }


def test_self_hosted_jobs_are_guarded_by_event_and_repository() -> None:
    for workflow, name, job in _self_hosted_jobs():
        guard = " ".join(str(job.get("if", "")).split())
        assert "github.event_name ==" in guard, f"{workflow}/{name}: no event guard"
        assert "pull_request" not in guard, f"{workflow}/{name}"
        if workflow == "cd.yml":
            assert "github.event.workflow_run.event == 'push'" in guard
            assert "head_repository.full_name == github.repository" in guard
        else:  # monitor: the schedule, or a dispatch on the default branch
            assert "github.event.repository.default_branch" in guard


def test_cd_builds_only_the_tested_push_to_this_repositorys_default_branch() -> None:
    path = REPO_ROOT / ".github/workflows/cd.yml"
    jobs = _load(path)["jobs"]
    guard = " ".join(str(jobs["containerize"]["if"]).split())
    for condition in (
        "github.event.workflow_run.event == 'push'",
        "github.event.workflow_run.conclusion == 'success'",
        "github.event.workflow_run.head_repository.full_name == github.repository",
        "github.event.workflow_run.head_branch == github.event.repository.default_branch",
    ):
        assert condition in guard
    tested = "${{ github.event.workflow_run.head_sha || github.sha }}"
    for name in ("containerize", "rollout-local", "rollout-kubernetes"):
        [checkout] = [
            step
            for step in jobs[name]["steps"]
            if str(step.get("uses", "")).startswith("actions/checkout@")
        ]
        assert checkout["with"]["ref"] == tested, name
    assert "github.repository }}" not in path.read_text()  # image names come from `make image-name`


def test_image_names_are_lower_case() -> None:
    result = subprocess.run(
        ["make", "--no-print-directory", "image-name"],
        cwd=REPO_ROOT,
        env={"PATH": "/usr/bin:/bin", "GITHUB_REPOSITORY": "Some-Owner/Repo", "IMAGE_SHA": "abc1"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout == "image=ghcr.io/some-owner/repo/classifier:abc1\n"


def test_the_pr_comment_runs_only_the_standard_library_poster() -> None:
    path = REPO_ROOT / ".github/workflows/pr-comment.yml"
    document = _load(path)
    steps = document["jobs"]["comment"]["steps"]
    assert not [step for step in steps if str(step.get("uses", "")).startswith("./")]
    assert [step["run"] for step in steps if "run" in step] == [
        "make post-report REPORTS=pr-artifact/reports"
    ]
    post = next(step for step in steps if "run" in step)
    assert post["env"]["RUN_ID"] == "${{ github.event.workflow_run.id }}"
    group = document["concurrency"]["group"]
    assert "head_repository.full_name" in group


def test_zizmor_reports_no_finding() -> None:
    """zizmor (offline, default persona) finds nothing; exceptions are justified inline."""
    zizmor = shutil.which("zizmor")
    if zizmor is None:
        pytest.skip("zizmor is not installed")
    result = subprocess.run(
        [zizmor, "--offline", "--no-progress", ".github/"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_untrusted_event_fields_reach_commands_only_through_env() -> None:
    for path in WORKFLOWS:
        for step in _steps(_load(path)):
            assert "${{" not in step.get("run", ""), f"{path.name}: expression inside run"


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
    assert tune["env"]["APPLY"] == "1"
    assert runs.index("make tune") < runs.index("make retrain")


def _ci_steps() -> list[tuple[str, dict[str, Any]]]:
    jobs = _load(REPO_ROOT / ".github/workflows/ci.yml")["jobs"]
    return [(name, step) for name, job in jobs.items() for step in job.get("steps", [])]


def test_pull_request_jobs_get_no_secrets() -> None:
    """In ci.yml a secret reaches only a step that runs for a push (the default branch)."""
    document = _load(REPO_ROOT / ".github/workflows/ci.yml")
    assert "secrets." not in str(document.get("env"))
    for name, job in document["jobs"].items():
        assert "secrets." not in str(job.get("env")), name
    for name, step in _ci_steps():
        if "secrets." in str(step.get("env")) + str(step.get("with")):
            assert step.get("if") == "github.event_name == 'push'", f"{name}: {step['name']}"


def test_the_default_branch_keeps_its_state_between_runs() -> None:
    """A push pulls from and pushes to the DVC remote, uses the MLflow server, and uploads the
    gated model for pull requests; every pipeline run first fetches the last such upload."""
    steps = [step for name, step in _ci_steps() if name == "pipeline"]
    runs = [str(step.get("run") or step.get("uses")) for step in steps]
    [pr_repro, push_repro] = [s for s in steps if s.get("run") == "make repro"]
    assert pr_repro["if"] == "github.event_name != 'push'"
    assert push_repro["if"] == "github.event_name == 'push'"
    assert "MLFLOW_TRACKING_URI" in push_repro["env"]
    assert (
        runs.index("make dvc-pull") < runs.index("make fetch-baseline") < runs.index("make repro")
    )
    assert runs.index("make repro") < runs.index("make dvc-push")
    assert steps.index(push_repro) < runs.index("make dvc-push")
    upload = next(s for s in steps if s.get("with", {}).get("name") == "baseline-model")
    assert upload["if"] == "github.event_name == 'push'"
    assert steps.index(upload) > steps.index(push_repro)  # only a model that passed its gates
    assert upload["with"]["path"].split() == list(MEMBERS)
    assert "--artifact baseline-model" in (REPO_ROOT / "Makefile").read_text()


def test_an_unset_mlflow_secret_falls_back_to_the_tracking_default() -> None:
    """An empty secret would be an empty URI; the fallback is model/tracking.py's default."""
    uses = [
        str(step["env"]["MLFLOW_TRACKING_URI"])
        for path in WORKFLOWS
        for step in _steps(_load(path))
        if "MLFLOW_TRACKING_URI" in step.get("env", {})
    ]
    assert uses
    expected = f"${{{{ secrets.MLFLOW_TRACKING_URI || '{DEFAULT_TRACKING_URI}' }}}}"
    assert set(uses) == {expected}


def test_github_runs_every_test_directory_with_the_ci_hypothesis_profile() -> None:
    document = _load(REPO_ROOT / ".github/workflows/ci.yml")
    jobs = document["jobs"]
    matrix = jobs["test"]["strategy"]["matrix"]["include"]
    [suite_step] = [step for step in jobs["test"]["steps"] if "run" in step]
    assert suite_step["run"] == "make test"
    assert suite_step["env"]["PYTEST_ARGS"] == "${{ matrix.paths }}"
    covered = {path for entry in matrix for path in entry["paths"].split()}
    assert any(step.get("run") == "make test-unit" for step in jobs["unit"]["steps"])
    assert any(step.get("run") == "make render-test" for step in jobs["pipeline"]["steps"])
    covered |= {"tests/unit", "tests/render"}  # `make test-unit`, `make render-test`
    with_tests = {
        path.parent.relative_to(REPO_ROOT).as_posix()
        for path in (REPO_ROOT / "tests").glob("*/test_*.py")
    }
    assert with_tests <= covered, f"not run on GitHub: {sorted(with_tests - covered)}"
    assert document["env"]["HYPOTHESIS_PROFILE"] == "ci"


def test_github_combines_every_suites_coverage_into_one_report() -> None:
    jobs = _load(REPO_ROOT / ".github/workflows/ci.yml")["jobs"]
    kept = {
        step["with"]["name"]
        for job in ("unit", "test")
        for step in jobs[job]["steps"]
        if "upload-artifact" in step.get("uses", "")
    }
    assert kept == {"coverage-unit", "coverage-${{ matrix.id }}"}
    assert set(jobs["coverage"]["needs"]) == {"unit", "test"}
    assert any(step.get("run") == "make coverage-report" for step in jobs["coverage"]["steps"])
    assert 'os.environ.get("HYPOTHESIS_PROFILE"' in (REPO_ROOT / "tests/conftest.py").read_text()


def test_monitor_runs_nothing_on_its_schedule_without_a_rollout_target() -> None:
    jobs = _load(REPO_ROOT / ".github/workflows/monitor.yml")["jobs"]
    for name, job in jobs.items():
        guard = " ".join(str(job.get("if", "")).split())
        assert guard.startswith("vars.ROLLOUT_TARGET"), name
        if "vars.ROLLOUT_TARGET == 'local'" not in guard:  # runs only for a person who asked
            assert "github.event_name == 'workflow_dispatch'" in guard, name
    assert "ROLLOUT_TARGET variable" in jobs["drift"]["name"]  # what a skipped run shows


def test_the_rollout_target_is_a_variable_the_jobs_guard_on() -> None:
    for path in WORKFLOWS:
        assert "secrets.ROLLOUT_TARGET" not in path.read_text(), path.name
    jobs = _load(REPO_ROOT / ".github/workflows/cd.yml")["jobs"]
    assert "vars.ROLLOUT_TARGET == 'local'" in jobs["rollout-local"]["if"]
    assert jobs["rollout-kubernetes"]["if"] == "vars.ROLLOUT_TARGET == 'kubernetes'"


def test_the_retrain_reason_names_the_run() -> None:
    """The reason is shown where people look (the run's name), not set as an unread variable."""
    path = REPO_ROOT / ".github/workflows/retrain.yml"
    for workflow in WORKFLOWS:
        assert "RETRAIN_REASON" not in workflow.read_text(), workflow.name
    assert _load(path)["run-name"] == "Retrain: ${{ inputs.reason || github.event.action }}"
    assert "--input reason=" in (REPO_ROOT / "Makefile").read_text()  # monitor's dispatch


def test_dvc_push_without_a_remote_says_why_and_passes() -> None:
    result = subprocess.run(
        ["make", "--no-print-directory", "-o", "install", "dvc-push"],
        cwd=REPO_ROOT,
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.startswith("dvc-push: no DVC_REMOTE_URL: nothing pushed")
