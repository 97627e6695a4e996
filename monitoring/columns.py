"""Per-feature drift: each feature of the live window against the training split, by its kind.

Two checks per feature, both calibrated on the reference (monitoring/calibration.py):
- its distribution: numeric features by the Kolmogorov-Smirnov distance of their non-null values;
  categorical and boolean ones by the chi-square distance of their shares over the known
  categories plus an
  `unseen` bucket (values the training set never had, counted and named in the report);
- its share of nulls.
The PSI beside them is for the reader; the verdict is the calibrated thresholds'.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from model.inputs import RawInput, boolean_value
from monitoring.calibration import Calibration, Check, counts_check, numbers_check, share_check
from monitoring.measures import chi_square_distance, count_psi, ks_distance, psi
from monitoring.report import FeatureDrift, quoted

BOOLEAN_CATEGORIES = ("false", "true")
UNSEEN_EXAMPLES = 5  # most common unseen values named in the report


@dataclass(frozen=True)
class Observed:
    """One feature's values, split the way drift compares them."""

    rows: int
    missing: int
    numbers: np.ndarray  # numeric: the non-null values, float64
    counts: np.ndarray  # categorical and boolean: count per known category, then unseen
    unseen: Counter[str] = field(default_factory=Counter)  # values outside the known ones

    @property
    def present(self) -> int:
        return self.rows - self.missing

    @property
    def missing_share(self) -> float:
        return self.missing / self.rows if self.rows else 0.0


def categories_of(item: RawInput) -> tuple[str, ...]:
    return BOOLEAN_CATEGORIES if item.kind == "boolean" else item.categories


def _is_null(value: Any) -> bool:
    return value is None or value == "" or (not isinstance(value, str) and bool(pd.isna(value)))


def observe(values: Iterable[Any], item: RawInput) -> Observed:
    """Split raw values (a CSV column or logged JSON values) into nulls, numbers or category
    counts, and unseen values. A category is matched as text, so '01' stays '01'."""
    array = np.asarray(values if isinstance(values, pd.Series) else list(values))
    if item.kind == "numeric" and array.dtype.kind in "biuf":  # the fast path: a numeric column
        numbers = array.astype(np.float64)
        present = numbers[~np.isnan(numbers)]
        return Observed(len(numbers), len(numbers) - len(present), present, np.zeros(0))
    categories = categories_of(item)
    index = {category: position for position, category in enumerate(categories)}
    counts = np.zeros(len(categories) + 1, dtype=np.int64)  # the last bucket: unseen
    numbers_list: list[float] = []
    unseen: Counter[str] = Counter()
    missing = 0
    for value in array.tolist():
        if _is_null(value):
            missing += 1
            continue
        if item.kind == "numeric":
            try:
                numbers_list.append(float(value))
            except (TypeError, ValueError):
                unseen[str(value)] += 1  # not a number: the service should have refused it
            continue
        key = _category(value, item)
        position = index.get(key)
        if position is None:
            unseen[key] += 1
            counts[-1] += 1
        else:
            counts[position] += 1
    return Observed(len(array), missing, np.array(numbers_list, dtype=np.float64), counts, unseen)


def _category(value: Any, item: RawInput) -> str:
    if item.kind != "boolean":
        return str(value)
    try:
        return BOOLEAN_CATEGORIES[int(boolean_value(value))]
    except ValueError:
        return str(value)


def bucket_codes(values: Iterable[Any], item: RawInput) -> np.ndarray:
    """Each categorical or boolean value's bucket: its category's position, len(categories) for
    an unseen value, -1 for null."""
    categories = categories_of(item)
    index = {category: position for position, category in enumerate(categories)}
    return np.array(
        [
            -1 if _is_null(value) else index.get(_category(value, item), len(categories))
            for value in (values.tolist() if isinstance(values, pd.Series) else list(values))
        ],
        dtype=np.int64,
    )


def reference_checks(item: RawInput, values: pd.Series) -> tuple[Check, Check]:
    """The feature's distribution check and null-share check, on the reference rows."""
    if item.kind == "numeric":
        numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64)
        return numbers_check(numbers), share_check(np.isnan(numbers))
    codes = bucket_codes(values, item)
    return counts_check(codes, len(categories_of(item)) + 1), share_check(codes < 0)


def feature_drift(
    inputs: Sequence[RawInput],
    reference: pd.DataFrame,
    current: pd.DataFrame,
    calibration: Calibration,
) -> list[FeatureDrift]:
    """Every feature, in contract order; feature i's checks are calibration columns 2i and
    2i + 1. `current` may lack a column: all its values are null."""
    results = []
    for position, item in enumerate(inputs):
        live = current[item.name] if item.name in current.columns else [None] * len(current)
        old, new = observe(reference[item.name], item), observe(live, item)
        results.append(judge_feature(item, old, new, calibration, 2 * position))
    return results


def judge_feature(
    item: RawInput, old: Observed, new: Observed, calibration: Calibration, column: int
) -> FeatureDrift:
    """One feature against its reference: its distribution check is calibration column
    `column`, its null-share check the next one."""
    fired: list[str] = []
    reasons: list[str] = []
    numeric = item.kind == "numeric"
    test, statistic, index = _distance(numeric, old, new)
    threshold = calibration.threshold(column)
    pvalue = calibration.pvalue(column, statistic)
    if statistic > threshold:
        fired.append(test)
        name = "KS distance" if numeric else "chi-square distance"
        reasons.append(f"{name} {statistic:.3g} > {threshold:.3g} (p {pvalue:.2g})")
    change = new.missing_share - old.missing_share
    missing_threshold = calibration.threshold(column + 1)
    missing_pvalue = calibration.pvalue(column + 1, abs(change))
    if abs(change) > missing_threshold:
        fired.append("missing_rate")
        reasons.append(
            f"nulls {old.missing_share:.1%} → {new.missing_share:.1%} ({change * 100:+.1f} "
            f"points, limit ±{missing_threshold * 100:.1f}, p {missing_pvalue:.2g})"
        )
    categories = categories_of(item)
    reference_shares = _shares(old, categories)
    current_shares = _shares(new, categories)
    unseen_share = sum(new.unseen.values()) / new.present if new.present else 0.0
    examples = [value for value, _ in new.unseen.most_common(UNSEEN_EXAMPLES)]
    notes = _notes(old, new, reference_shares, current_shares, numeric)
    if new.unseen:
        what = "values that are not numbers" if numeric else "unseen values"
        shown = ", ".join(quoted(value) for value in examples)
        notes.append(f"{sum(new.unseen.values())} {what} ({unseen_share:.1%}), e.g. {shown}")
    why = "; ".join(reasons) if fired else "stable"
    return FeatureDrift(
        feature=item.name,
        kind=item.kind,
        drifted=bool(fired),
        fired=fired,
        why=why + (f" ({'; '.join(notes)})" if notes else ""),
        test=test,
        statistic=statistic,
        threshold=threshold,
        pvalue=pvalue,
        psi=index,
        reference_missing=old.missing_share,
        current_missing=new.missing_share,
        missing_threshold=missing_threshold,
        missing_pvalue=missing_pvalue,
        unseen=sum(new.unseen.values()),
        unseen_share=unseen_share,
        unseen_examples=examples,
        reference_mean=float(old.numbers.mean()) if numeric and old.numbers.size else None,
        current_mean=float(new.numbers.mean()) if numeric and new.numbers.size else None,
        reference_shares=reference_shares,
        current_shares=current_shares,
    )


def _distance(numeric: bool, old: Observed, new: Observed) -> tuple[str, float, float | None]:
    """(test, its statistic, PSI): KS for numbers, chi-square for categories; PSI when both
    sides have values."""
    if numeric:
        index = psi(old.numbers, new.numbers) if old.numbers.size and new.numbers.size else None
        return "ks", ks_distance(old.numbers, new.numbers), index
    index = count_psi(old.counts, new.counts) if old.present and new.present else None
    return "chi_square", float(chi_square_distance(old.counts, new.counts)), index


def _shares(observed: Observed, categories: tuple[str, ...]) -> dict[str, float]:
    """Share of each known category among the non-null values (unseen ones not listed)."""
    if not categories or not observed.present:
        return {}
    return {
        category: float(count / observed.present)
        for category, count in zip(categories, observed.counts, strict=False)
    }


def _notes(
    old: Observed,
    new: Observed,
    reference_shares: dict[str, float],
    current_shares: dict[str, float],
    numeric: bool,
) -> list[str]:
    """What moved, in the feature's own terms: the mean, or the category that moved most."""
    if numeric:
        if old.numbers.size and new.numbers.size:
            return [f"mean {old.numbers.mean():.4g} → {new.numbers.mean():.4g}"]
        return ["no non-null values to compare"]
    if not reference_shares or not current_shares:
        return ["no non-null values to compare"]
    moved = max(reference_shares, key=lambda c: abs(current_shares[c] - reference_shares[c]))
    return [f"{quoted(moved)} {reference_shares[moved]:.1%} → {current_shares[moved]:.1%}"]
