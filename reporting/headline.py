"""The report's first lines: the verdict over every expected stage, then one line per stage.

A stage that failed or left no output leads the page, and files from different runs are said to
be so before anything else (reporting/provenance.py decides both).
"""

from __future__ import annotations

from model.artifacts import GateReport
from reporting.gate_view import schema_change
from reporting.inputs import ReportInputs, run_files
from reporting.markdown import FAIL, PASS, WARN, mark
from reporting.provenance import ALL_STAGES, OUTPUTS, StageStatus, mismatches, stage_statuses

Line = tuple[str, bool]  # (text, passed)


def baseline_text(gate: GateReport) -> str:
    baseline = gate.baseline
    if baseline.kind == "none":
        # the note already says why, in the baseline resolver's words; say it once
        return baseline.note or "none (first run): only absolute floors apply"
    kind, source = baseline.kind, baseline.source
    # "git origin/main (3f2a1c0)" names its kind already; "models:/x@champion" does not
    text = f"`{source}`" if source.startswith(f"{kind} ") else f"{kind} `{source}`"
    if gate.same_model:
        digest = str(baseline.onnx_sha256)[:12]
        text += f" is this very model (same ONNX sha256 `{digest}`): nothing to compare"
    notes = "; ".join(note for note in (baseline.note, baseline.measured) if note)
    return f"{text} ({notes})" if notes else text


def schema_line(gate: GateReport | None) -> str | None:
    """One line for the headline when the inputs changed; a breaking change is said loudly."""
    change = schema_change(gate)
    if gate is None or change is None:
        return None
    if gate.breaks_clients:
        return (
            f"{WARN} **Breaking input change**: {change}. Clients of the baseline would be "
            "refused; the gate does not block on this, so agree on it before merging."
        )
    return f"Input schema changed, compatibly: {change}. Clients of the baseline keep working."


def _gate_line(gate: GateReport) -> Line:
    failed = [check.name for check in gate.checks if not check.passed]
    line = f"Gate: {len(gate.checks) - len(failed)} of {len(gate.checks)} checks passed"
    if failed:
        line += ": failing " + ", ".join(f"`{name}`" for name in failed)
    return line, gate.passed and not failed


def _stage_line(stage: str, inputs: ReportInputs) -> Line | None:
    """The headline's line for a stage whose output is there; None when it is not."""
    if stage == "validate" and inputs.validation is not None:
        broken = len(inputs.validation.get("violations", []))
        passed = bool(inputs.validation.get("passed"))
        return "Data validation: " + ("passed" if passed else f"{broken} rule(s) broken"), passed
    if stage == "gate" and inputs.gate is not None:
        return _gate_line(inputs.gate)
    if stage == "card" and inputs.card is not None:
        return "Model card: written", True
    if stage == "package" and inputs.bento is not None:
        return f"Package: Bento `{inputs.bento.get('bento_tag')}`", True
    if stage == "load_test" and inputs.load_test is not None:
        checks = inputs.load_test.checks.values()
        held = sum(1 for check in checks if check.passed)
        line = f"Load test (HTTP, under load): {held} of {len(checks)} SLO checks held"
        return line, inputs.load_test.passed
    if stage == "rollout" and inputs.rollout is not None:
        return f"Rollout: phase {inputs.rollout.get('phase')}", True
    return None


def _stage_lines(inputs: ReportInputs, bad: list[StageStatus]) -> list[Line]:
    """Failed or missing stages first, then every stage that passed, in pipeline order."""
    lines: list[Line] = []
    for status in bad:
        present = _stage_line(status.stage, inputs)
        if present is None:
            output = OUTPUTS[status.stage]
            lines.append((f"**{status.words}**: no `{output}` (it stopped before it)", False))
        else:
            lines.append((f"**{status.words}**: {present[0]}", False))
    shown = {status.stage for status in bad}
    for stage in ALL_STAGES:
        present = None if stage in shown else _stage_line(stage, inputs)
        if present is not None:
            lines.append(present)
    return lines


def _title(mixed: bool, bad: list[StageStatus], blocked: bool, gate: GateReport | None) -> str:
    if mixed:
        title = f"## {FAIL} Model report: inputs from different pipeline runs"
    elif bad:
        title = f"## {FAIL} Model report: " + ", ".join(status.words for status in bad)
    elif blocked:
        title = f"## {FAIL} Model report: blocked"
    else:
        title = f"## {PASS} Model report: every check passed"
    if gate is not None and gate.breaks_clients:
        title += f" ({WARN} breaking input change)"
    return title


def headline(inputs: ReportInputs) -> list[str]:
    """The verdict first, computed from every expected stage: a stage that failed or left no
    output leads the page, and files from different runs are said to be so before anything."""
    statuses = stage_statuses(run_files(inputs), inputs.expected)
    mixed = mismatches(run_files(inputs))
    bad = [status for status in statuses if status.state != "passed"]
    parts = _stage_lines(inputs, bad)
    blocked = any(not passed for _, passed in parts)
    lines = [_title(bool(mixed), bad, blocked, inputs.gate), ""]
    if mixed:
        lines += [
            f"> {FAIL} **Stale or mixed report**: " + "; ".join(mixed) + ". "
            "Run the pipeline again (`make repro`), then `make report`.",
            "",
        ]
    lines += [f"- {mark(passed)} {line}" for line, passed in parts]
    schema = schema_line(inputs.gate)
    if schema:
        at = next((i for i, line in enumerate(lines) if "Gate: " in line), len(lines) - 1)
        lines.insert(at + 1, f"- {schema}")  # right under the gate's line
    if inputs.gate is not None:
        lines.append(f"- Baseline: {baseline_text(inputs.gate)}")
    return lines
