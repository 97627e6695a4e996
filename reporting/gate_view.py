"""What the gate found, in the words and tables both the PR report and the model card use."""

from __future__ import annotations

from collections.abc import Iterable

from model.artifacts import Check, FeatureRank, GateReport, Importance
from model.importance import importance_label, rank_moves
from reporting.markdown import WARN, mark, markdown_table

METRIC_ORDER = ("accuracy", "f1_macro", "roc_auc", "log_loss", "ece", "brier")
CHECK_SUFFIXES = ("_vs_baseline", "_floor", "_ceiling")
TOP_FEATURES = 10  # rows of the feature-importance table


def metric_position(name: str) -> tuple[int, str]:
    """The usual metrics first, in METRIC_ORDER, then any other by name."""
    return (METRIC_ORDER.index(name) if name in METRIC_ORDER else len(METRIC_ORDER), name)


def metric_of(check_name: str) -> str:
    """`roc_auc_vs_baseline` -> `roc_auc`: the metric a metric-gate check is about."""
    for suffix in CHECK_SUFFIXES:
        if check_name.endswith(suffix):
            return check_name.removesuffix(suffix)
    return check_name


def check_mark(check: Check) -> str:
    """A breaking input change passes the gate, yet must not look like every other pass."""
    if check.passed and check.value == "breaking":
        return WARN
    return mark(check.passed)


def failing_first(checks: Iterable[Check]) -> list[Check]:
    return sorted(checks, key=lambda check: check.passed)


def schema_change(gate: GateReport | None) -> str | None:
    """What was added, removed or retyped, as the gate wrote it (without its own warning)."""
    if gate is None:
        return None
    check = gate.schema_check
    if (check is None or check.value not in ("changed", "breaking")) and not gate.breaks_clients:
        return None
    why = check.why if check is not None else ""
    return why.split(" (BREAKING")[0] or "the inputs changed"


def baseline_importance(gate: GateReport | None) -> tuple[FeatureRank, ...] | None:
    """The baseline model's ranking, which the gate measured, if it had a baseline model."""
    measured = gate.importance.baseline if gate is not None else None
    return measured.features if measured is not None and measured.features else None


def _rank_move(move: int | None) -> str:
    if move is None:
        return "new"
    return "=" if move == 0 else (f"▲ {move}" if move > 0 else f"▼ {-move}")


def importance_table(importance: Importance, gate: GateReport | None) -> list[str]:
    """Top features with importance ± std and, given a baseline, each one's rank move."""
    baseline = baseline_importance(gate)
    moves = rank_moves(
        [row.model_dump() for row in importance.features],
        None if baseline is None else [row.model_dump() for row in baseline],
    )
    rows = []
    for row in importance.features[:TOP_FEATURES]:
        cells: list[object] = [
            row.rank,
            f"`{row.feature}`",
            f"{row.importance:.4f} ± {row.std:.4f}",
        ]
        rows.append(cells + ([_rank_move(moves.get(row.feature))] if baseline else []))
    header = ["rank", "feature", importance_label(importance.metric)]
    header += ["vs baseline"] if baseline else []
    return markdown_table(header, rows)
