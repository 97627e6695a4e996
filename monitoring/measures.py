"""The drift measures on plain arrays: population stability index and two-sample tests.

Numbers are compared on quantile bins of the reference (PSI) and with the Kolmogorov-Smirnov
test; categories on their counts (PSI with smoothing, and a chi-square test). Empty bins must not
make an index infinite: numeric bins are clipped to a small share, as they always were, and
category counts get a half-count each (so a sample against itself scores exactly 0).
"""

from __future__ import annotations

import numpy as np
from scipy import stats

EPSILON = 1e-4  # keeps empty quantile bins from making the index infinite
SMOOTHING = 0.5  # added to every category count (Jeffreys): an empty bucket stays finite


def psi(reference: np.ndarray, current: np.ndarray, bins: int) -> float:
    """Population stability index of `current` against `reference`, on reference quantiles."""
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)))
    if len(edges) < 2:  # a constant reference: below, at and above its one value
        value = edges[0]
        expected = _sides(reference, value)
        actual = _sides(current, value)
    else:
        inner = edges[1:-1]  # outer bins are open, so values beyond the training range count
        bins = len(edges) - 1
        expected = np.bincount(np.searchsorted(inner, reference, side="right"), minlength=bins)
        actual = np.bincount(np.searchsorted(inner, current, side="right"), minlength=bins)
    expected_share = np.clip(expected / expected.sum(), EPSILON, None)
    actual_share = np.clip(actual / actual.sum(), EPSILON, None)
    return float(np.sum((actual_share - expected_share) * np.log(actual_share / expected_share)))


def _sides(values: np.ndarray, value: float) -> np.ndarray:
    return np.array([np.sum(values < value), np.sum(values == value), np.sum(values > value)])


def smoothed_shares(counts: np.ndarray) -> np.ndarray:
    """Shares of each bucket, every count raised by SMOOTHING: never 0, still summing to 1."""
    counts = np.asarray(counts, dtype=np.float64)
    shares: np.ndarray = (counts + SMOOTHING) / (counts.sum() + SMOOTHING * len(counts))
    return shares


def count_psi(reference: np.ndarray, current: np.ndarray) -> float:
    """Population stability index of two count vectors over the same buckets (categories)."""
    expected, actual = smoothed_shares(reference), smoothed_shares(current)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def ks_test(reference: np.ndarray, current: np.ndarray) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov statistic and p-value."""
    test = stats.ks_2samp(reference, current)
    return float(test.statistic), float(test.pvalue)


def chi_square_test(reference: np.ndarray, current: np.ndarray) -> tuple[float, float]:
    """Chi-square test of homogeneity of two count vectors; buckets empty in both are left out
    (they carry no evidence and would make the expected counts zero)."""
    table = np.vstack([reference, current]).astype(np.float64)
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return 0.0, 1.0  # one bucket in all, or an empty side: nothing to tell apart
    result = stats.chi2_contingency(table)
    return float(result.statistic), float(result.pvalue)
