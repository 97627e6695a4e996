"""Per-feature drift: each feature of the live window against the training split, by its kind.

- numeric: PSI over quantile bins of the training values and a two-sample KS test, on the
  non-null values;
- categorical and boolean: PSI over the known categories plus an `unseen` bucket (values the
  training set never had), and a chi-square test on the same counts;
- every feature: its share of nulls, which fires when it moved by more than
  `max_missing_change` and by more than sampling noise explains.

The KS and chi-square tests form one Bonferroni family over the features, the missing-rate tests
another, each at `ks_alpha`: a table with many features does not alarm more often by chance.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from model.inputs import RawInput, boolean_value
from model.params import DriftParams
from monitoring.measures import chi_square_test, count_psi, ks_test, psi
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


def feature_drift(
    inputs: Sequence[RawInput], reference: pd.DataFrame, current: pd.DataFrame, params: DriftParams
) -> list[FeatureDrift]:
    """Every feature, in contract order. `current` may lack a column: all its values are null."""
    alpha = params.ks_alpha / len(inputs)
    results = []
    for item in inputs:
        live = current[item.name] if item.name in current.columns else [None] * len(current)
        old, new = observe(reference[item.name], item), observe(live, item)
        results.append(judge_feature(item, old, new, alpha, params))
    return results


def judge_feature(
    item: RawInput, old: Observed, new: Observed, alpha: float, params: DriftParams
) -> FeatureDrift:
    """One feature against its reference; `alpha` is already corrected for the number of tests."""
    fired: list[str] = []
    reasons: list[str] = []
    numeric = item.kind == "numeric"
    test = "ks" if numeric else "chi_square"
    index = statistic = pvalue = None
    if numeric and old.numbers.size and new.numbers.size:
        index = psi(old.numbers, new.numbers, params.psi_bins)
        statistic, pvalue = ks_test(old.numbers, new.numbers)
    elif not numeric and old.present and new.present:
        index = count_psi(old.counts, new.counts)
        statistic, pvalue = chi_square_test(old.counts, new.counts)
    if index is not None and index > params.max_psi:
        fired.append("psi")
        reasons.append(f"PSI {index:.3f} > {params.max_psi}")
    if pvalue is not None and pvalue < alpha:
        fired.append(test)
        reasons.append(f"{'KS' if numeric else 'chi-square'} p {pvalue:.2g} < {alpha:.2g}")
    missing_pvalue = _missing_pvalue(old, new)
    change = new.missing_share - old.missing_share
    if abs(change) > params.max_missing_change and missing_pvalue < alpha:
        fired.append("missing_rate")
        reasons.append(
            f"nulls {old.missing_share:.1%} → {new.missing_share:.1%} ({change * 100:+.1f} "
            f"points, limit ±{params.max_missing_change * 100:.1f}, p {missing_pvalue:.2g} < "
            f"{alpha:.2g})"
        )
    categories = categories_of(item)
    reference_shares = _shares(old, categories)
    current_shares = _shares(new, categories)
    unseen_share = sum(new.unseen.values()) / new.present if new.present else 0.0
    examples = [value for value, _ in new.unseen.most_common(UNSEEN_EXAMPLES)]
    notes = _notes(old, new, reference_shares, current_shares, numeric)
    if new.unseen:
        what = "values that are not numbers" if numeric else "unseen values"
        notes.append(
            f"{sum(new.unseen.values())} {what} ({unseen_share:.1%}), e.g. "
            + ", ".join(quoted(value) for value in examples)
        )
    why = "; ".join(reasons) if fired else "stable"
    return FeatureDrift(
        feature=item.name,
        kind=item.kind,
        drifted=bool(fired),
        fired=fired,
        why=why + (f" ({'; '.join(notes)})" if notes else ""),
        test=test,
        psi=index,
        statistic=statistic,
        pvalue=pvalue,
        reference_missing=old.missing_share,
        current_missing=new.missing_share,
        missing_pvalue=missing_pvalue,
        unseen=sum(new.unseen.values()),
        unseen_share=unseen_share,
        unseen_examples=examples,
        reference_mean=float(old.numbers.mean()) if numeric and old.numbers.size else None,
        current_mean=float(new.numbers.mean()) if numeric and new.numbers.size else None,
        reference_shares=reference_shares,
        current_shares=current_shares,
    )


def _missing_pvalue(old: Observed, new: Observed) -> float:
    """Chi-square test of the null shares (rows null vs present, training vs live)."""
    _, pvalue = chi_square_test(
        np.array([old.missing, old.present]), np.array([new.missing, new.present])
    )
    return pvalue


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
