"""The report's sections on running the model: in-process latency, the edge copy, the load
test through HTTP, the rollout, and the link to the run."""

from __future__ import annotations

from model.artifacts import GateReport, LoadTestSummary
from reporting.charts import MODELS
from reporting.inputs import Json
from reporting.markdown import NONE, count, fixed, mark, markdown_table, ms, percent, sig, signed

SLO_UNITS = {"failure_ratio": "%", "requests_per_s": " req/s"}  # the rest are milliseconds
ROLLOUT_HEADER = (
    "step",
    "canary weight",
    "requests",
    "failures",
    "success rate",
    "p99 through HTTP",
    "label disagreement",
    "analysis",
)


def latency_section(gate: GateReport | None) -> list[str]:
    lines = ["### Model latency (in-process: ONNX Runtime, no HTTP)", ""]
    latency = gate.latency if gate is not None else {}
    if not latency:
        return [*lines, "No latency measured."]
    profiles = [(name, latency[name]) for name in MODELS if name in latency]
    sizes = sorted({size for _, profile in profiles for size in profile.rows_per_second})
    header = ["model", "single-row p50", "single-row p99", *(f"rows/s, batch {s}" for s in sizes)]
    rows = [
        [
            name,
            ms(profile.p50_ms),
            ms(profile.p99_ms),
            *(count(round(profile.rows_per_second.get(size, 0))) for size in sizes),
        ]
        for name, profile in profiles
    ]
    lines += markdown_table(header, rows)
    baseline = latency.get("baseline")
    if baseline and baseline.p99_ms:
        ratio = latency["candidate"].p99_ms / baseline.p99_ms
        lines += [
            "",
            f"Single-row p99, candidate / baseline, measured side by side: **{ratio:.2f}x**",
        ]
    return lines


def edge_section(gate: GateReport | None) -> list[str]:
    lines = ["### Edge model (int8)", ""]
    edge = gate.edge if gate is not None else None
    if edge is None:
        return [*lines, "No edge model."]
    rows = [
        ["fp32", f"{edge.fp32_bytes / 1024:.1f} KiB", fixed(edge.fp32_accuracy)],
        ["int8", f"{edge.int8_bytes / 1024:.1f} KiB", fixed(edge.int8_accuracy)],
    ]
    drop = edge.fp32_accuracy - edge.int8_accuracy
    smaller = 1 - edge.int8_bytes / edge.fp32_bytes  # negative for a tiny model: quantizing adds
    size = f"{percent(abs(smaller), 1)} {'smaller' if smaller >= 0 else 'larger'}"
    summary = f"int8 is {size}; accuracy drop {signed(drop)}."
    return [*lines, *markdown_table(["model", "size", "accuracy"], rows), "", summary]


def _slo_value(name: str, value: float | None) -> str:
    if value is None:
        return NONE
    if SLO_UNITS.get(name) == "%":
        return percent(value)
    if name in SLO_UNITS:
        return f"{value:,.1f}{SLO_UNITS[name]}"
    return f"{value:,.0f} ms" if name.endswith("_ms") else sig(value)


def load_test_section(load_test: LoadTestSummary | None) -> list[str]:
    if load_test is None:
        return []
    lines = ["### Load test SLO (through HTTP, under load)", ""]
    lines.append(
        f"{mark(load_test.passed)} {count(load_test.requests)} requests, "
        f"{count(load_test.failures)} failures, "
        f"median {_slo_value('median_ms', load_test.median_ms)} per request."
    )
    named = sorted(load_test.checks.items(), key=lambda item: item[1].passed)
    rows = [
        [
            mark(check.passed),
            f"`{name}`",
            _slo_value(name, check.value),
            ("≥ " if check.kind == "min" else "≤ ") + _slo_value(name, check.budget),
        ]
        for name, check in named
    ]
    return [*lines, "", *markdown_table(["", "check", "value", "budget"], rows)]


def _rollout_row(step: Json) -> list[object]:
    canary = step.get("canary", {})
    reasons = "; ".join(step.get("reasons", []))
    return [
        step.get("step"),
        f"{step.get('weight')}%",
        count(canary.get("requests")),
        count(canary.get("failures")),
        percent(canary.get("success_rate")),
        NONE if canary.get("p99_ms") is None else f"{canary['p99_ms']:.1f} ms",
        percent(step.get("label_disagreement"), 1),
        f"{mark(step.get('passed'))} {reasons}".strip(),
    ]


def rollout_section(rollout: Json | None) -> list[str]:
    if rollout is None:
        return []
    lines = ["### Rollout", ""]
    line = f"Strategy **{rollout.get('strategy')}**, phase **{rollout.get('phase')}**"
    decision = rollout.get("decision")
    if decision:
        line += f": {decision.get('action')} ({decision.get('reason')})"
    lines.append(line + ".")
    steps = rollout.get("steps") or []
    if steps:
        lines += ["", *markdown_table(ROLLOUT_HEADER, [_rollout_row(step) for step in steps])]
    if "client_requests" in rollout:
        lines += [
            "",
            f"Clients: {count(rollout.get('client_requests'))} requests, "
            f"{count(rollout.get('client_failures'))} failures.",
        ]
    return lines


def links_section(run_url: str | None) -> list[str]:
    return [] if not run_url else ["### Links", "", f"[Artifacts of this run]({run_url})"]
