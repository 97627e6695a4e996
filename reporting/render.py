"""The pull-request report: one Markdown page from the gate, validation, load-test, rollout files.

`render` is pure and deterministic (no timestamps), so its output is golden-tested; `load_inputs`
does the reading and treats every file but the params as optional, because a pipeline that stops
early (say, at validation) still deserves a report that says where it stopped. Nothing here knows
a dataset: classes come from the plot files and the data contract, features from the reports.
"""

from __future__ import annotations

import csv
import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import pairwise, zip_longest
from pathlib import Path
from typing import Any

import yaml

from model.contract import Contract, ContractError
from model.importance import importance_label, rank_moves
from reporting.github import MARKER as MARKER  # the first line: how the sticky comment is found
from reporting.provenance import (
    ALL_STAGES,
    OUTPUTS,
    PIPELINE_STAGES,
    RunFiles,
    mismatches,
    stage_statuses,
)

PASS, FAIL, SKIP, WARN = "✅", "❌", "⚪", "⚠️"
NONE = "—"
CHART_POINTS = 21  # a curve is resampled on this many evenly spaced x values
OPEN_CLASS_CHARTS = 4  # with more classes than this, the per-class curves start collapsed
METRIC_ORDER = ("accuracy", "f1_macro", "roc_auc", "log_loss", "ece", "brier")
CHECK_SUFFIXES = ("_vs_baseline", "_floor", "_ceiling")
SCHEMA_CHECK = ("interface", "input_schema")  # (gate, name) of the input-schema comparison
TOP_FEATURES = 10  # rows of the feature-importance table

Json = dict[str, Any]
Curve = tuple[tuple[float, float], ...]
Curves = Mapping[str, Curve]  # class -> points, in file order; "" for a file without a class column


@dataclass(frozen=True)
class ReportInputs:
    """Everything the report shows, already read from disk."""

    gate: Json | None
    validation: Json | None = None
    load_test: Json | None = None
    rollout: Json | None = None
    roc: Curves = field(default_factory=dict)  # (false positive rate, true positive rate)
    precision_recall: Curves = field(default_factory=dict)  # (recall, precision)
    params: Json | None = None
    base_params: Json | None = None
    run_url: str | None = None
    importance: Json | None = None  # reports/importance.json; the baseline's is in gate.json
    confusion: tuple[tuple[str, str], ...] = ()  # (actual, predicted) class of each test row
    labels: tuple[str, ...] = ()  # the contract's classes, in the model's output order
    model: Json | None = None  # models/model.json: the hash every other file is checked against
    card: str | None = None  # reports/model_card.md
    bento: Json | None = None  # reports/bento.json
    expected: tuple[str, ...] = ()  # stages whose output must be there (provenance.ALL_STAGES)


# --- loading ---------------------------------------------------------------------------------


def _read_json(path: Path) -> Json | None:
    if not path.is_file():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object")
    return data


def _read_yaml(path: Path | None) -> Json | None:
    """None for a missing or empty file: an empty base would show every key as added."""
    if path is None or not path.is_file():
        return None
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if data is None:
        return None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a YAML mapping")
    return data


def _read_text(path: Path) -> str | None:
    return path.read_text(encoding="utf-8") if path.is_file() else None


def _read_rows(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _read_curves(path: Path, x: str, y: str) -> dict[str, Curve]:
    """Points per class, in file order (binary: the positive class; else one per class)."""
    curves: dict[str, list[tuple[float, float]]] = {}
    for row in _read_rows(path):
        curves.setdefault(row.get("class") or "", []).append((float(row[x]), float(row[y])))
    return {name: tuple(points) for name, points in curves.items()}


def _read_labels(contract: Path | None) -> tuple[str, ...]:
    """The contract's classes; none when it is missing or broken (validation reports that)."""
    if contract is None or not contract.is_file():
        return ()
    try:
        return Contract.load(contract).label.values
    except ContractError:
        return ()


def load_inputs(
    reports: Path,
    base_params: Path | None,
    run_url: str | None,
    *,
    params: Path | None = None,
    contract: Path | None = None,
    model: Path | None = None,
    expected: Sequence[str] = PIPELINE_STAGES,
) -> ReportInputs:
    """Read the report files under `reports`; `params`, `contract` and `model` default to the
    project's files beside it (params.yaml, data/contract.yaml, models/model.json)."""
    plots = reports / "plots"
    return ReportInputs(
        gate=_read_json(reports / "gate.json"),
        validation=_read_json(reports / "validation.json"),
        load_test=_read_json(reports / "load_test.json"),
        rollout=_read_json(reports / "rollout" / "summary.json"),
        roc=_read_curves(plots / "roc.csv", "fpr", "tpr"),
        precision_recall=_read_curves(plots / "precision_recall.csv", "recall", "precision"),
        params=_read_yaml(params if params is not None else reports.parent / "params.yaml"),
        base_params=_read_yaml(base_params),
        run_url=run_url,
        importance=_read_json(reports / "importance.json"),
        confusion=tuple(
            (row["actual"], row["predicted"]) for row in _read_rows(plots / "confusion.csv")
        ),
        labels=_read_labels(
            contract if contract is not None else reports.parent / "data" / "contract.yaml"
        ),
        model=_read_json(model if model is not None else reports.parent / "models" / "model.json"),
        card=_read_text(reports / "model_card.md"),
        bento=_read_json(reports / "bento.json"),
        expected=tuple(expected),
    )


def run_files(inputs: ReportInputs) -> RunFiles:
    return RunFiles(
        model=inputs.model,
        validation=inputs.validation,
        gate=inputs.gate,
        card=inputs.card,
        bento=inputs.bento,
        load_test=inputs.load_test,
        rollout=inputs.rollout,
    )


# --- formatting ------------------------------------------------------------------------------


def _mark(passed: object) -> str:
    return PASS if passed else FAIL


def _cell(value: object) -> str:
    """Table-safe text: a `|` would end the cell, a newline the row."""
    return str(value).replace("|", "\\|").replace("\n", " ")


def _fixed(value: float | None, digits: int = 4) -> str:
    return NONE if value is None else f"{value:.{digits}f}"


def _signed(value: float | None) -> str:
    return NONE if value is None else f"{value:+.4f}"


def _sig(value: float | None) -> str:
    """4 significant digits without exponent notation (Mermaid cannot read `1e-05`)."""
    if value is None:
        return NONE
    return format(Decimal(f"{value:.4g}").normalize(), "f")


def _count(value: float | None) -> str:
    """Integers with thousands separators, other numbers to 4 significant digits."""
    if isinstance(value, int):
        return f"{value:,}"
    return _sig(value)


def _percent(value: float | None, digits: int = 2) -> str:
    return NONE if value is None else f"{value:.{digits}%}"


NUMBER = re.compile(
    r"^(\*\*)?[+\-▲▼=≤≥]? ?[0-9][0-9,.]*(\*\*)?( ?(%|ms|µs|KiB|x|req/s))?"
    r"( ± [0-9.]+| \[[+\-0-9., to]+\])?$"
)


def _numeric(cells: Sequence[str]) -> bool:
    """A column of numbers (dashes aside) is right-aligned, so digits line up."""
    filled = [cell for cell in cells if cell not in ("", NONE)]
    return bool(filled) and all(NUMBER.match(cell) for cell in filled)


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    """A GFM table: every cell escaped, numeric columns right-aligned."""
    cells = [[_cell(value) for value in row] for row in rows]
    columns = [[row[i] for row in cells if i < len(row)] for i in range(len(header))]
    rule = "|" + "".join("---:|" if _numeric(column) else "---|" for column in columns)
    lines = ["| " + " | ".join(_cell(name) for name in header) + " |", rule]
    return lines + ["| " + " | ".join(row) + " |" for row in cells]


def _check_mark(check: Json) -> str:
    """A breaking input change passes the gate, yet must not look like every other pass."""
    if check.get("passed") and check.get("value") == "breaking":
        return WARN
    return _mark(check.get("passed"))


def _failing_first(checks: Iterable[Json]) -> list[Json]:
    return sorted(checks, key=lambda check: bool(check.get("passed")))


# --- sections --------------------------------------------------------------------------------


def identical_to_baseline(gate: Json | None) -> bool:
    """The candidate is the baseline itself (same ONNX bytes): a comparison would say nothing."""
    candidate = ((gate or {}).get("candidate") or {}).get("onnx_sha256")
    baseline = ((gate or {}).get("baseline") or {}).get("onnx_sha256")
    return bool(candidate) and candidate == baseline


def _baseline_text(gate: Json) -> str:
    baseline = gate.get("baseline") or {}
    if baseline.get("kind", "none") == "none":
        # the note already says why, in the baseline resolver's words; say it once
        return str(baseline.get("note") or "none (first run): only absolute floors apply")
    kind, source = str(baseline.get("kind")), str(baseline.get("source"))
    # "git origin/main (3f2a1c0)" names its kind already; "models:/x@champion" does not
    text = f"`{source}`" if source.startswith(f"{kind} ") else f"{kind} `{source}`"
    if identical_to_baseline(gate):
        digest = str(baseline.get("onnx_sha256"))[:12]
        text += f" is this very model (same ONNX sha256 `{digest}`): nothing to compare"
    notes = "; ".join(str(n) for n in (baseline.get("note"), baseline.get("measured")) if n)
    return f"{text} ({notes})" if notes else text


def input_schema(gate: Json | None) -> Json | None:
    """The interface gate's comparison of the candidate's inputs with the baseline's."""
    checks = (gate or {}).get("checks", [])
    return next((c for c in checks if (c.get("gate"), c.get("name")) == SCHEMA_CHECK), None)


def is_breaking(gate: Json | None) -> bool:
    """Clients of the baseline would be refused: the gate records it but does not block on it."""
    check = input_schema(gate) or {}
    return bool((gate or {}).get("breaking")) or check.get("value") == "breaking"


def schema_change(gate: Json | None) -> str | None:
    """What was added, removed or retyped, as the gate wrote it (without its own warning)."""
    check = input_schema(gate) or {}
    if check.get("value") not in ("changed", "breaking") and not is_breaking(gate):
        return None
    return str(check.get("why") or "").split(" (BREAKING")[0] or "the inputs changed"


def schema_line(gate: Json | None) -> str | None:
    """One line for the headline when the inputs changed; a breaking change is said loudly."""
    change = schema_change(gate)
    if change is None:
        return None
    if is_breaking(gate):
        return (
            f"{WARN} **Breaking input change**: {change}. Clients of the baseline would be "
            "refused; the gate does not block on this, so agree on it before merging."
        )
    return f"Input schema changed, compatibly: {change}. Clients of the baseline keep working."


def _gate_line(gate: Json) -> tuple[str, bool]:
    checks = gate.get("checks", [])
    failed = [check["name"] for check in checks if not check.get("passed")]
    line = f"Gate: {len(checks) - len(failed)} of {len(checks)} checks passed"
    if failed:
        line += ": failing " + ", ".join(f"`{name}`" for name in failed)
    return line, bool(gate.get("passed")) and not failed


def _stage_line(stage: str, inputs: ReportInputs) -> tuple[str, bool] | None:
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
        checks = list(inputs.load_test.get("checks", {}).values())
        held = sum(1 for check in checks if check.get("passed"))
        line = f"Load test (HTTP, under load): {held} of {len(checks)} SLO checks held"
        return line, bool(inputs.load_test.get("passed"))
    if stage == "rollout" and inputs.rollout is not None:
        return f"Rollout: phase {inputs.rollout.get('phase')}", True
    return None


def headline(inputs: ReportInputs) -> list[str]:
    """The verdict first, computed from every expected stage: a stage that failed or left no
    output leads the page, and files from different runs are said to be so before anything."""
    statuses = stage_statuses(run_files(inputs), inputs.expected)
    mixed = mismatches(run_files(inputs))
    parts: list[tuple[str, bool]] = []  # (line, passed), failures first
    bad = [status for status in statuses if status.state != "passed"]
    for status in bad:
        present = _stage_line(status.stage, inputs)
        if present is None:
            output = OUTPUTS[status.stage]
            parts.append((f"**{status.words}**: no `{output}` (it stopped before it)", False))
        else:
            parts.append((f"**{status.words}**: {present[0]}", False))
    shown = {status.stage for status in bad}
    for stage in ALL_STAGES:  # then every stage that passed, in pipeline order
        present = None if stage in shown else _stage_line(stage, inputs)
        if present is not None:
            parts.append(present)
    failing = [line for line, passed in parts if not passed]
    if mixed:
        title = f"## {FAIL} Model report: inputs from different pipeline runs"
    elif bad:
        title = f"## {FAIL} Model report: " + ", ".join(status.words for status in bad)
    elif failing:
        title = f"## {FAIL} Model report: blocked"
    else:
        title = f"## {PASS} Model report: every check passed"
    if is_breaking(inputs.gate):
        title += f" ({WARN} breaking input change)"
    lines = [title, ""]
    if mixed:
        lines += [
            f"> {FAIL} **Stale or mixed report**: " + "; ".join(mixed) + ". "
            "Run the pipeline again (`make repro`), then `make report`.",
            "",
        ]
    lines += [f"- {_mark(passed)} {line}" for line, passed in parts]
    schema = schema_line(inputs.gate)
    if schema:
        at = next((i for i, line in enumerate(lines) if "Gate: " in line), len(lines) - 1)
        lines.insert(at + 1, f"- {schema}")  # right under the gate's line
    if inputs.gate is not None:
        lines.append(f"- Baseline: {_baseline_text(inputs.gate)}")
    return lines


def _example(value: object, line: int | None) -> str:
    """An offending value and its CSV line; table-level rules may have only one of the two."""
    if value is None:
        return f"line {line}"
    return f"`{value}`" if line is None else f"`{value}` (line {line})"


def validation_section(validation: Json | None) -> list[str]:
    lines = ["### Data validation", ""]
    if validation is None:
        return [*lines, "No validation report."]
    summary = (
        f"`{validation.get('data')}`: {_count(validation.get('rows'))} rows, "
        f"{_count(validation.get('columns'))} columns, md5 `{validation.get('md5')}`"
    )
    violations = validation.get("violations", [])
    if validation.get("passed"):
        return [*lines, f"{PASS} {summary}: no contract violations."]
    lines.append(f"{FAIL} {summary}: {len(violations)} rule(s) broken.")
    rows = []
    for violation in violations:
        examples = [
            _example(value, line)
            for value, line in zip_longest(
                violation.get("examples", []), violation.get("example_lines", [])
            )
        ]
        rows.append(
            [
                f"`{violation.get('rule')}`",
                f"`{violation['column']}`" if violation.get("column") else "(table)",
                _count(violation.get("failing_rows")),
                violation.get("message", ""),
                ", ".join(examples) or NONE,
            ]
        )
    return [
        *lines,
        "",
        *markdown_table(["rule", "column", "failing rows", "message", "examples"], rows),
    ]


def metric_of(check_name: str) -> str:
    """`roc_auc_vs_baseline` -> `roc_auc`: the metric a metric-gate check is about."""
    for suffix in CHECK_SUFFIXES:
        if check_name.endswith(suffix):
            return check_name.removesuffix(suffix)
    return check_name


def _kind(check: Json, metric: str) -> str:
    """`roc_auc_vs_baseline` -> `vs baseline`: what the check bounds."""
    return str(check["name"]).removeprefix(f"{metric}_").replace("_", " ")


def noise_word(comparison: Json) -> str:
    """Plain words for a paired interval: does it exclude a zero change?"""
    return "**beyond noise**" if comparison.get("beyond_noise") else "within noise"


def _interval(comparison: Json) -> str:
    return f"{comparison['low']:+.4f} to {comparison['high']:+.4f}"


def metrics_section(gate: Json | None) -> list[str]:
    """Candidate against baseline; with the gate's paired bootstrap, every delta has its
    interval on the same test rows and a word for whether it is beyond noise."""
    lines = ["### Metrics against the base", ""]
    if gate is None:
        return [*lines, "No gate report."]
    metrics: Mapping[str, float] = gate.get("candidate", {}).get("metrics", {})
    paired: Mapping[str, Json] = (gate.get("comparison") or {}).get("metrics") or {}
    identical = identical_to_baseline(gate)
    by_metric: dict[str, list[Json]] = {}
    for check in gate.get("checks", []):
        if check.get("gate") == "metric":
            by_metric.setdefault(metric_of(check["name"]), []).append(check)
    order = [name for name in METRIC_ORDER if name in metrics]
    order += sorted(set(metrics) - set(order))
    rows = []
    for name in order:
        # the absolute bound first, then the one against the baseline, whatever failed
        checks = sorted(
            by_metric.get(name, []), key=lambda c: str(c["name"]).endswith("_vs_baseline")
        )
        marks = ", ".join(f"{_mark(check.get('passed'))} {_kind(check, name)}" for check in checks)
        value = float(metrics[name])
        if identical:
            rows.append([f"`{name}`", _fixed(value), marks or "not gated"])
            continue
        baselines = [check["baseline"] for check in checks if check.get("baseline") is not None]
        base = float(baselines[0]) if baselines else None
        pair = paired.get(name)
        delta: float | None
        if pair is not None:  # both models on the same rows: the delta the interval is about
            base, delta = float(pair["baseline"]), float(pair["delta"])
            extra = [_interval(pair), noise_word(pair)]
        else:
            delta = None if base is None else value - base
            extra = [NONE, NONE] if paired else []
        rows.append(
            [f"`{name}`", _fixed(value), _fixed(base), _signed(delta), *extra, marks or "not gated"]
        )
    if identical:
        note = "The candidate is the baseline itself (same ONNX sha256): not compared."
        return [*lines, note, "", *markdown_table(["metric", "candidate", "checks"], rows)]
    header = ["metric", "candidate", "baseline", "delta"]
    if paired:
        comparison = gate.get("comparison") or {}
        level = float(comparison.get("confidence", 0.95))
        header += [f"{level:.0%} paired interval", "noise"]
        lines += [
            f"Baseline and delta: both models on the same {_count(comparison.get('rows'))} test "
            f"rows; intervals from {_count(comparison.get('resamples'))} paired bootstrap "
            "resamples (both models scored on each resample).",
            "",
        ]
    return [*lines, *markdown_table([*header, "checks"], rows)]


def class_order(labels: Sequence[str], seen: Iterable[str]) -> list[str]:
    """The contract's classes in output order, then any other class the files name, by name."""
    return [*labels, *sorted(set(seen) - set(labels))]


def confusion_section(confusion: Sequence[tuple[str, str]], labels: Sequence[str]) -> list[str]:
    """N x N counts on the test split, with each class's recall (row) and precision (column)."""
    if not confusion:
        return []
    counts = Counter(confusion)
    classes = class_order(labels, {name for pair in confusion for name in pair})

    def count(actual: str, predicted: str) -> str:
        value = f"{counts[(actual, predicted)]:,}"
        return f"**{value}**" if actual == predicted else value  # the diagonal is what is right

    def share(right: int, total: int) -> str:
        return _percent(right / total, 1) if total else NONE

    rows = []
    for actual in classes:
        total = sum(counts[(actual, predicted)] for predicted in classes)
        recall = share(counts[(actual, actual)], total)
        rows.append([f"`{actual}`", *(count(actual, p) for p in classes), f"{total:,}", recall])
    precision = [share(counts[(p, p)], sum(counts[(a, p)] for a in classes)) for p in classes]
    rows.append(["precision", *precision, "", ""])
    header = ["actual ↓ predicted →", *(f"`{name}`" for name in classes), "rows", "recall"]
    intro = (
        f"Test split, {len(confusion):,} rows, {len(classes)} classes: a row per actual class, "
        "a column per predicted one."
    )
    return ["### Confusion matrix", "", intro, "", *markdown_table(header, rows)]


def checks_section(gate: Json | None) -> list[str]:
    """Collapsed when all pass, open when something fails: the failure is what to read."""
    if gate is None:
        return []
    checks = _failing_first(gate.get("checks", []))
    failed = sum(1 for check in checks if not check.get("passed"))
    opening = "<details open>" if failed else "<details>"
    summary = f"<summary>All gate checks: {len(checks)}, {failed} failing</summary>"
    rows = [
        [_check_mark(check), check.get("gate"), f"`{check.get('name')}`", check.get("why")]
        for check in checks
    ]
    return [
        opening,
        summary,
        "",
        *markdown_table(["", "gate", "check", "why"], rows),
        "",
        "</details>",
    ]


def _rank_move(move: int | None) -> str:
    if move is None:
        return "new"
    return "=" if move == 0 else (f"▲ {move}" if move > 0 else f"▼ {-move}")


def baseline_importance(gate: Json | None) -> list[Json] | None:
    """The baseline model's ranking, which the gate measured, if it had a baseline model."""
    features = (((gate or {}).get("importance") or {}).get("baseline") or {}).get("features")
    return list(features) if features else None


def importance_table(importance: Json, gate: Json | None) -> list[str]:
    """Top features with importance ± std and, given a baseline, each one's rank move."""
    features = importance.get("features", [])
    baseline = baseline_importance(gate)
    moves = rank_moves(features, baseline)
    rows = []
    for row in features[:TOP_FEATURES]:
        cells = [row["rank"], f"`{row['feature']}`", f"{row['importance']:.4f} ± {row['std']:.4f}"]
        rows.append(cells + ([_rank_move(moves.get(row["feature"]))] if baseline else []))
    header = ["rank", "feature", importance_label(str(importance.get("metric")))]
    header += ["vs baseline"] if baseline else []
    return markdown_table(header, rows)


def importance_section(importance: Json | None, gate: Json | None) -> list[str]:
    """The top features, and how far each moved in rank against the baseline model."""
    if importance is None:
        return []
    features = importance.get("features", [])
    baseline = baseline_importance(gate)
    lines = ["### Top features", ""]
    shown = f"top {TOP_FEATURES} of {len(features)}" if len(features) > TOP_FEATURES else "all"
    lines.append(
        f"Permutation importance of the ONNX model on the test split, {shown} features."
        + ("" if baseline else " No baseline model to compare ranks with.")
    )
    if baseline:
        top = {row["feature"] for row in features[:TOP_FEATURES]}
        dropped = [row["feature"] for row in baseline[:TOP_FEATURES] if row["feature"] not in top]
        if dropped:
            lines.append("Left the top: " + ", ".join(f"`{name}`" for name in dropped) + ".")
    return [*lines, "", *importance_table(importance, gate)]


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested params as dotted keys: `{"train": {"epochs": 3}}` -> `{"train.epochs": 3}`."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def params_diff(base: Mapping[str, Any], current: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(dotted key, change) for every key added, removed or changed, sorted by key."""
    before, after = flatten(base), flatten(current)
    changes = []
    for key in sorted(before.keys() | after.keys()):
        if key not in before:
            changes.append((key, "added"))
        elif key not in after:
            changes.append((key, "removed"))
        elif before[key] != after[key]:
            changes.append((key, "changed"))
    return changes


def _param(tree: Mapping[str, Any], key: str) -> str:
    flat = flatten(tree)
    if key not in flat:
        return NONE
    value = flat[key]
    return f"`{value if isinstance(value, str) else json.dumps(value)}`"


def params_section(params: Json | None, base: Json | None) -> list[str]:
    lines = ["### Params", ""]
    if params is None:
        return [*lines, "No params file."]
    if base is None:
        return [*lines, "No base params to compare."]
    changes = params_diff(base, params)
    if not changes:
        return [*lines, "No params changed."]
    rows = [[f"`{key}`", change, _param(base, key), _param(params, key)] for key, change in changes]
    return [*lines, *markdown_table(["key", "change", "base", "this PR"], rows)]


def _ms(value: float | None) -> str:
    """In-process latencies: milliseconds with 4 decimals, the same in every row."""
    return NONE if value is None else f"{value:.4f} ms"


def latency_section(gate: Json | None) -> list[str]:
    lines = ["### Model latency (in-process: ONNX Runtime, no HTTP)", ""]
    latency = (gate or {}).get("latency")
    if not latency:
        return [*lines, "No latency measured."]
    profiles = [
        (name, latency[name]) for name in ("candidate", "baseline", "int8") if name in latency
    ]
    sizes = sorted(
        {size for _, profile in profiles for size in profile.get("rows_per_second", {})}, key=int
    )
    header = ["model", "single-row p50", "single-row p99", *(f"rows/s, batch {s}" for s in sizes)]
    rows = [
        [
            name,
            _ms(profile.get("p50_ms")),
            _ms(profile.get("p99_ms")),
            *(_count(round(profile.get("rows_per_second", {}).get(size, 0))) for size in sizes),
        ]
        for name, profile in profiles
    ]
    lines += markdown_table(header, rows)
    baseline = latency.get("baseline")
    if baseline and baseline.get("p99_ms"):
        ratio = latency["candidate"]["p99_ms"] / baseline["p99_ms"]
        lines += [
            "",
            f"Single-row p99, candidate / baseline, measured side by side: **{ratio:.2f}x**",
        ]
    return lines


def edge_section(gate: Json | None) -> list[str]:
    lines = ["### Edge model (int8)", ""]
    edge = (gate or {}).get("edge")
    if not edge:
        return [*lines, "No edge model."]
    fp32_bytes, int8_bytes = edge["fp32_bytes"], edge["int8_bytes"]
    rows = [
        ["fp32", f"{fp32_bytes / 1024:.1f} KiB", _fixed(edge["fp32_accuracy"])],
        ["int8", f"{int8_bytes / 1024:.1f} KiB", _fixed(edge["int8_accuracy"])],
    ]
    drop = edge["fp32_accuracy"] - edge["int8_accuracy"]
    smaller = 1 - int8_bytes / fp32_bytes  # negative for a tiny model: quantizing adds nodes
    size = f"{_percent(abs(smaller), 1)} {'smaller' if smaller >= 0 else 'larger'}"
    summary = f"int8 is {size}; accuracy drop {_signed(drop)}."
    return [*lines, *markdown_table(["model", "size", "accuracy"], rows), "", summary]


SLO_UNITS = {"failure_ratio": "%", "requests_per_s": " req/s"}  # the rest are milliseconds


def _slo_value(name: str, value: float | None) -> str:
    if value is None:
        return NONE
    if SLO_UNITS.get(name) == "%":
        return _percent(value)
    if name in SLO_UNITS:
        return f"{value:,.1f}{SLO_UNITS[name]}"
    return f"{value:,.0f} ms" if name.endswith("_ms") else _sig(value)


def load_test_section(load_test: Json | None) -> list[str]:
    if load_test is None:
        return []
    lines = ["### Load test SLO (through HTTP, under load)", ""]
    lines.append(
        f"{_mark(load_test.get('passed'))} {_count(load_test.get('requests'))} requests, "
        f"{_count(load_test.get('failures'))} failures, "
        f"median {_slo_value('median_ms', load_test.get('median_ms'))} per request."
    )
    named = sorted(
        load_test.get("checks", {}).items(), key=lambda item: bool(item[1].get("passed"))
    )
    rows = [
        [
            _mark(check.get("passed")),
            f"`{name}`",
            _slo_value(name, check.get("value")),
            ("≥ " if check.get("kind") == "min" else "≤ ") + _slo_value(name, check.get("budget")),
        ]
        for name, check in named
    ]
    return [*lines, "", *markdown_table(["", "check", "value", "budget"], rows)]


def resample(curve: Curve, best: Callable[[Curve, float], float]) -> list[tuple[float, float]]:
    """The curve at CHART_POINTS evenly spaced x values from its first x to its last.

    Evenly spaced points keep a categorical Mermaid x-axis proportional and its labels unique.
    """
    low, high = min(x for x, _ in curve), max(x for x, _ in curve)
    step = (high - low) / (CHART_POINTS - 1)
    return [(low + step * i, best(curve, low + step * i)) for i in range(CHART_POINTS)]


def roc_at(curve: Curve, fpr: float) -> float:
    """Best true positive rate reachable without exceeding `fpr`."""
    return max((tpr for x, tpr in curve if x <= fpr + 1e-9), default=0.0)


def precision_at(curve: Curve, recall: float) -> float:
    """Interpolated precision: the best precision at this recall or more."""
    return max((precision for x, precision in curve if x >= recall - 1e-9), default=0.0)


def _chart_text(text: str) -> str:
    """A Mermaid string is double-quoted and on one line."""
    return " ".join(text.replace('"', "'").split())


# Series colours, in plot order (candidate, baseline, chance): clear on GitHub's light (#ffffff)
# and dark (#0d1117) backgrounds alike; Mermaid's default draws a lone series in pale #ECECFF.
PALETTE = ("#2f81f7", "#f0883e", "#8b949e")
COLOUR_NAMES = ("blue", "orange", "grey")


def _init(roles: Sequence[int]) -> str:
    """The palette for these series, by role (0 candidate, 1 baseline, 2 chance)."""
    colours = ", ".join(PALETTE[role] for role in roles)
    variables = {"xyChart": {"plotColorPalette": colours}}
    return "%%{init: " + json.dumps({"themeVariables": variables}) + "}%%"


def _axis(low: float, high: float) -> str:
    return f"{_sig(low)} --> {_sig(high)}"


def _line_chart(
    title: str,
    x_title: str,
    y_title: str,
    series: Sequence[Sequence[tuple[float, float]]],
    roles: Sequence[int],
) -> list[str]:
    """Lines on a numeric x axis: every series shares the evenly spaced x of the first."""
    xs = [x for x, _ in series[0]]
    lines = [f"    line [{', '.join(f'{y:.3f}' for _, y in points)}]" for points in series]
    return [
        "```mermaid",
        _init(roles),
        "xychart-beta",
        f'    title "{_chart_text(title)}"',
        f'    x-axis "{x_title}" {_axis(xs[0], xs[-1])}',
        f'    y-axis "{y_title}" 0 --> 1',
        *lines,
        "```",
    ]


def _bar_chart(title: str, y_title: str, bars: list[tuple[str, float]]) -> list[str]:
    labels = ", ".join(f'"{name}"' for name, _ in bars)
    values = ", ".join(_sig(value) for _, value in bars)
    top = _sig(max(value for _, value in bars) * 1.2)  # from zero, so bar heights compare
    return [
        "```mermaid",
        _init([0]),
        "xychart-beta",
        f'    title "{_chart_text(title)}"',
        f"    x-axis [{labels}]",
        f'    y-axis "{y_title}" 0 --> {top}',
        f"    bar [{values}]",
        "```",
    ]


def _whose(name: str, one_vs_rest: bool) -> str:
    """What a curve is drawn for, for its title."""
    if not name:
        return ""
    return f", {name} against the rest" if one_vs_rest else f", positive class {name}"


def curve_classes(inputs: ReportInputs) -> list[str]:
    """The classes with a curve (binary: the positive one), in the contract's order."""
    drawn = {*inputs.roc, *inputs.precision_recall}
    return [name for name in class_order(inputs.labels, drawn) if name in drawn]


def area_under_roc(curve: Curve) -> float:
    """Trapezoids under the ROC points, sorted by false positive rate."""
    points = sorted(curve)
    return sum((x1 - x0) * (y0 + y1) / 2 for (x0, y0), (x1, y1) in pairwise(points))


def average_precision(curve: Curve) -> float:
    """Sum of precision times each recall step (scikit-learn's definition, no interpolation)."""
    points = sorted(curve, key=lambda point: (point[0], -point[1]))
    total, previous = 0.0, 0.0
    for recall, precision in points:
        total += (recall - previous) * precision
        previous = recall
    return total


def baseline_curves(gate: Json | None, kind: str) -> dict[str, Curve]:
    """The baseline model's curves on the same test rows, as the gate measured them."""
    curves = (((gate or {}).get("curves") or {}).get("baseline") or {}).get(kind) or {}
    return {name: tuple((float(x), float(y)) for x, y in points) for name, points in curves.items()}


def _curve_chart(
    kind: str,
    whose: str,
    candidate: Curve,
    baseline: Curve | None,
) -> list[str]:
    """One ROC or precision-recall chart: candidate, baseline if any, and the chance line."""
    is_roc = kind == "roc"
    best = roc_at if is_roc else precision_at
    score, name = (area_under_roc, "AUC") if is_roc else (average_precision, "AP")
    points = resample(candidate, best)
    series, roles = [points], [0]
    legend = [f"{COLOUR_NAMES[0]}: candidate, {name} {score(candidate):.3f}"]
    title = f"{'ROC' if is_roc else 'Precision-recall'}{whose}: {name} {score(candidate):.3f}"
    if baseline:
        series.append([(x, best(baseline, x)) for x, _ in points])
        roles.append(1)
        legend.append(f"{COLOUR_NAMES[1]}: baseline, {name} {score(baseline):.3f}")
        title += f" vs {score(baseline):.3f}"
    if is_roc:
        series.append([(x, x) for x, _ in points])
        roles.append(2)
        legend.append(f"{COLOUR_NAMES[2]}: chance")
    axes = ("false positive rate", "true positive rate") if is_roc else ("recall", "precision")
    # Mermaid's xychart has no legend and clips a long title: the colours are named in text
    return ["Lines: " + "; ".join(legend) + ".", *_line_chart(title, *axes, series, roles)]


def curve_charts(
    inputs: ReportInputs, classes: Sequence[str], one_vs_rest: bool
) -> list[list[str]]:
    """A ROC and a precision-recall chart per class, the baseline model's curve beside the
    candidate's. With several classes, one chart per class: a Mermaid xychart has no legend, so
    the title names each line by its colour."""
    charts = []
    base_roc = baseline_curves(inputs.gate, "roc")
    base_pr = baseline_curves(inputs.gate, "precision_recall")
    for name in classes:
        whose = _whose(name, one_vs_rest)
        if name in inputs.roc:
            charts.append(_curve_chart("roc", whose, inputs.roc[name], base_roc.get(name)))
        if name in inputs.precision_recall:
            pr = inputs.precision_recall[name]
            charts.append(_curve_chart("precision_recall", whose, pr, base_pr.get(name)))
    return charts


def _collapsible(summary: str, charts: list[list[str]], is_open: bool) -> list[str]:
    lines = ["<details open>" if is_open else "<details>", f"<summary>{summary}</summary>"]
    for chart in charts:
        lines += ["", *chart]
    return [*lines, "", "</details>"]


def charts_section(inputs: ReportInputs) -> list[str]:
    classes = curve_classes(inputs)
    one_vs_rest = len(inputs.labels) > 2 if inputs.labels else len(classes) > 1
    curves = curve_charts(inputs, classes, one_vs_rest)
    latency = (inputs.gate or {}).get("latency") or {}
    bars = [
        (name, float(latency[name]["p99_ms"]))
        for name in ("candidate", "baseline", "int8")
        if latency.get(name, {}).get("p99_ms") is not None
    ]
    title = "Single-row p99 latency, in-process model (ms)"
    latency_chart = [_bar_chart(title, "p99 (ms)", bars)] if bars else []
    if not curves and not latency_chart:
        return []
    lines = ["### Charts"]
    if one_vs_rest and curves:
        summary = f"ROC and precision-recall, each of {len(classes)} classes against the rest"
        lines += ["", *_collapsible(summary, curves, len(classes) <= OPEN_CLASS_CHARTS)]
        curves = []
    for chart in [*curves, *latency_chart]:
        lines += ["", *chart]
    return lines


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
        rows = []
        for step in steps:
            canary = step.get("canary", {})
            reasons = "; ".join(step.get("reasons", []))
            rows.append(
                [
                    step.get("step"),
                    f"{step.get('weight')}%",
                    _count(canary.get("requests")),
                    _count(canary.get("failures")),
                    _percent(canary.get("success_rate")),
                    NONE if canary.get("p99_ms") is None else f"{canary['p99_ms']:.1f} ms",
                    _percent(step.get("label_disagreement"), 1),
                    f"{_mark(step.get('passed'))} {reasons}".strip(),
                ]
            )
        header = [
            "step",
            "canary weight",
            "requests",
            "failures",
            "success rate",
            "p99 through HTTP",
            "label disagreement",
            "analysis",
        ]
        lines += ["", *markdown_table(header, rows)]
    if "client_requests" in rollout:
        lines += [
            "",
            f"Clients: {_count(rollout.get('client_requests'))} requests, "
            f"{_count(rollout.get('client_failures'))} failures.",
        ]
    return lines


def links_section(run_url: str | None) -> list[str]:
    return [] if not run_url else ["### Links", "", f"[Artifacts of this run]({run_url})"]


def render(inputs: ReportInputs) -> str:
    """The whole report as GitHub-flavoured Markdown; the marker is its first line."""
    sections = [
        [MARKER],
        headline(inputs),
        validation_section(inputs.validation),
        metrics_section(inputs.gate),
        confusion_section(inputs.confusion, inputs.labels),
        checks_section(inputs.gate),
        importance_section(inputs.importance, inputs.gate),
        params_section(inputs.params, inputs.base_params),
        latency_section(inputs.gate),
        edge_section(inputs.gate),
        load_test_section(inputs.load_test),
        charts_section(inputs),
        rollout_section(inputs.rollout),
        links_section(inputs.run_url),
    ]
    return "\n\n".join("\n".join(section) for section in sections if section) + "\n"
