"""The drift measures on plain arrays: the statistics the verdict tests, and the population
stability index shown beside them.

The tested statistics are distances between a reference and a window that are defined for any
weighting of the reference rows, so monitoring/calibration.py can compute their null
distributions from reweighted (resampled) references in one vectorised pass:
- the Kolmogorov-Smirnov distance between two empirical distributions of numbers;
- the symmetric chi-square distance of two count vectors' shares (categories, predicted labels).
The PSI is for the reader only (it is familiar); it decides nothing. Empty bins must not make it
infinite: numeric bins are clipped to a small share, category counts get a half-count each.
"""

from __future__ import annotations

import numpy as np

PSI_BINS = 10  # quantile bins of the reference, for the PSI shown in the report
EPSILON = 1e-4  # keeps empty quantile bins from making the index infinite
SMOOTHING = 0.5  # added to every category count (Jeffreys): an empty bucket stays finite


def ks_distance(reference: np.ndarray, current: np.ndarray) -> float:
    """Largest gap between the two empirical distribution functions (0 if either is empty)."""
    if not reference.size or not current.size:
        return 0.0
    reference, current = np.sort(reference), np.sort(current)
    points = np.concatenate([reference, current])
    gaps = (
        np.searchsorted(reference, points, side="right") / reference.size
        - np.searchsorted(current, points, side="right") / current.size
    )
    return float(np.abs(gaps).max())


def weighted_ks_distance(
    reference: np.ndarray, current: np.ndarray, order: np.ndarray, ends: np.ndarray
) -> np.ndarray:
    """`ks_distance` for many weightings of the same sorted values at once.

    Args:
        reference, current: (resamples, rows) weights of each row on either side.
        order: the rows that have a value, sorted by it.
        ends: positions in `order` where a run of equal values ends (ties move together).
    """
    cumulative_reference = np.cumsum(reference[:, order], axis=1)[:, ends]
    cumulative_current = np.cumsum(current[:, order], axis=1)[:, ends]
    totals_reference = cumulative_reference[:, -1:]
    totals_current = cumulative_current[:, -1:]
    with np.errstate(invalid="ignore", divide="ignore"):
        gaps = cumulative_reference / totals_reference - cumulative_current / totals_current
    distances: np.ndarray = np.nan_to_num(np.abs(gaps)).max(axis=1)
    return distances


def chi_square_distance(reference: np.ndarray, current: np.ndarray) -> np.ndarray:
    """Symmetric chi-square distance of two count vectors' shares, along the last axis:
    sum of (p - q)^2 / (p + q) over buckets not empty on both sides; 0 when a side is empty.
    It reads shares, not counts, so rows repeated in a window (monitoring/calibration.py counts
    them once) do not inflate it."""
    reference = np.asarray(reference, dtype=np.float64)
    current = np.asarray(current, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        old = reference / reference.sum(axis=-1, keepdims=True)
        new = current / current.sum(axis=-1, keepdims=True)
        terms = (old - new) ** 2 / (old + new)
    distances: np.ndarray = np.nan_to_num(terms, nan=0.0, posinf=0.0).sum(axis=-1)
    return distances


def psi(reference: np.ndarray, current: np.ndarray, bins: int = PSI_BINS) -> float:
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
