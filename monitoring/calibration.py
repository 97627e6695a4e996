"""Drift thresholds calibrated on the reference itself, so the false-alarm rate is chosen.

Under "no drift" the reference (R rows) and a live window (n rows) are two samples of one
distribution. The two-sample bootstrap imitates that: draw a pseudo-reference of R rows and a
pseudo-window of n rows from the reference, with replacement, and compute every check's
statistic between them. A draw is a vector of counts per reference row (multinomial), so one
(resamples, R) matrix per side serves every check, and the checks stay as dependent as they are
in real windows.

Each statistic is put on a common scale (its null median at 0, its null 99th percentile at 1),
so checks with different units and tails compete fairly; the family-wise threshold is the
(1 - false_alarm_rate) quantile of the largest scaled statistic of each clean draw (max-T,
Westfall and Young). A clean window then raises any alarm with probability false_alarm_rate,
however many features, bins or rows there are.

A window is calibrated at its effective size: rows repeated verbatim more often than rows repeat
in the reference (replays, retries, a fixed set of rows sent again and again) carry no new
information, and a window of n draws from h distinct rows varies like 1 / (1/n + 1/h) rows
(Kish's effective sample size). Without that, a replayed test set would look like drift.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from monitoring.measures import chi_square_distance, weighted_ks_distance

SCALE_QUANTILE = 0.99  # the null quantile that every scaled statistic puts at 1
CHUNK_CELLS = 2_000_000  # resamples x reference rows per batch: bounds memory for big references
TINY = 1e-9


class Check(Protocol):
    """A statistic between any two weightings of the reference rows."""

    def statistics(self, reference: np.ndarray, current: np.ndarray) -> np.ndarray:
        """(resamples, rows) weights on each side -> (resamples,) statistics."""
        ...

    def floor(self, reference_rows: int, window_rows: int) -> float:
        """The smallest null spread: a statistic that never varies still needs a scale."""
        ...


@dataclass(frozen=True)
class NumbersCheck:
    """Kolmogorov-Smirnov distance of the non-null values."""

    order: np.ndarray  # rows with a value, sorted by it
    ends: np.ndarray  # last position of each run of equal values in `order`

    def statistics(self, reference: np.ndarray, current: np.ndarray) -> np.ndarray:
        if not self.order.size:
            return np.zeros(len(reference))
        return weighted_ks_distance(reference, current, self.order, self.ends)

    def floor(self, reference_rows: int, window_rows: int) -> float:
        return 1 / max(window_rows, 1)  # one row's step: a constant feature alarms on any change


@dataclass(frozen=True)
class CountsCheck:
    """Chi-square distance of bucket shares (categories, predicted labels)."""

    indicator: np.ndarray  # (rows, buckets): 1 where the row falls in the bucket; nulls in none

    def statistics(self, reference: np.ndarray, current: np.ndarray) -> np.ndarray:
        return chi_square_distance(reference @ self.indicator, current @ self.indicator)

    def floor(self, reference_rows: int, window_rows: int) -> float:
        return TINY


@dataclass(frozen=True)
class ShareCheck:
    """Absolute change in the share of rows that are null."""

    mask: np.ndarray  # (rows,) True where the reference value is null

    def statistics(self, reference: np.ndarray, current: np.ndarray) -> np.ndarray:
        shares_reference = reference[:, self.mask].sum(axis=1) / reference.sum(axis=1)
        shares_current = current[:, self.mask].sum(axis=1) / current.sum(axis=1)
        changes: np.ndarray = np.abs(shares_current - shares_reference)
        return changes

    def floor(self, reference_rows: int, window_rows: int) -> float:
        """The standard error of a share change if the reference had half a null row (Jeffreys):
        a feature never null in training does not alarm on one null."""
        share = 0.5 / (reference_rows + 1)
        return float(np.sqrt(share * (1 - share) * (1 / reference_rows + 1 / window_rows)))


def numbers_check(values: np.ndarray) -> NumbersCheck:
    """From the reference's values (NaN for null)."""
    present = np.flatnonzero(~np.isnan(values))
    order = present[np.argsort(values[present], kind="stable")]
    ordered = values[order]
    ends = np.flatnonzero(np.append(ordered[1:] != ordered[:-1], True))
    return NumbersCheck(order, ends)


def counts_check(codes: np.ndarray, buckets: int) -> CountsCheck:
    """From the reference's bucket per row (-1 for null)."""
    indicator = np.zeros((len(codes), buckets))
    present = codes >= 0
    indicator[np.flatnonzero(present), codes[present]] = 1.0
    return CountsCheck(indicator)


def share_check(mask: np.ndarray) -> ShareCheck:
    return ShareCheck(np.asarray(mask, dtype=bool))


@dataclass(frozen=True)
class Calibration:
    """Every check's threshold at one window size and family-wise false-alarm rate."""

    false_alarm_rate: float
    window_rows: int
    centre: np.ndarray  # (checks,) null median of each statistic
    spread: np.ndarray  # (checks,) null 99th percentile minus the median (or the check's floor)
    maxima: np.ndarray  # (resamples,) sorted: the largest scaled statistic of each clean draw
    critical: float  # scaled statistics above this alarm

    def threshold(self, check: int) -> float:
        """The check's statistic above which it alarms."""
        return float(self.centre[check] + self.critical * self.spread[check])

    def pvalue(self, check: int, statistic: float) -> float:
        """Family-wise adjusted p-value: the share of clean draws whose largest scaled
        statistic, over all checks, reaches this one's."""
        scaled = (statistic - self.centre[check]) / self.spread[check]
        reached = len(self.maxima) - np.searchsorted(self.maxima, scaled, side="left")
        return float((1 + reached) / (1 + len(self.maxima)))


def collision_rate(keys: np.ndarray) -> float:
    """The chance that two different rows of a sample are identical (keys: one hash per row)."""
    _, counts = np.unique(keys, return_counts=True)
    rows = int(counts.sum())
    if rows < 2:
        return 0.0
    return float((counts * (counts - 1)).sum() / (rows * (rows - 1)))


def effective_rows(rows: int, collisions: float, reference_collisions: float) -> int:
    """The window's effective size (Kish), counting only repeats beyond the reference's own,
    rounded down to two significant digits so that windows of about one size share a
    calibration."""
    excess = max(collisions - reference_collisions, 0.0)
    effective = max(1, min(rows, int(1 / (1 / max(rows, 1) + excess))))
    step = 10 ** max(len(str(effective)) - 2, 0)
    return int(effective // step * step)


def null_statistics(
    checks: Sequence[Check], reference_rows: int, window_rows: int, resamples: int, seed: int
) -> np.ndarray:
    """(resamples, checks): every statistic between a pseudo-reference of `reference_rows` and
    a pseudo-window of `window_rows`, both drawn from the reference with replacement."""
    rng = np.random.default_rng(seed)
    uniform = np.full(reference_rows, 1 / reference_rows)
    chunk = max(1, CHUNK_CELLS // reference_rows)
    null = np.empty((resamples, len(checks)))
    for start in range(0, resamples, chunk):
        size = min(chunk, resamples - start)
        reference = rng.multinomial(reference_rows, uniform, size=size).astype(np.float64)
        current = rng.multinomial(window_rows, uniform, size=size).astype(np.float64)
        for column, check in enumerate(checks):
            null[start : start + size, column] = check.statistics(reference, current)
    return null


def calibrate(
    checks: Sequence[Check],
    reference_rows: int,
    window_rows: int,
    false_alarm_rate: float,
    resamples: int,
    seed: int,
) -> Calibration:
    """Thresholds for a window of `window_rows` rows: together, the checks alarm on a clean
    window with probability `false_alarm_rate`."""
    null = null_statistics(checks, reference_rows, window_rows, resamples, seed)
    centre = np.median(null, axis=0)
    floors = np.array([check.floor(reference_rows, window_rows) for check in checks])
    spread = np.maximum(np.quantile(null, SCALE_QUANTILE, axis=0) - centre, floors)
    maxima = np.sort(((null - centre) / spread).max(axis=1))
    critical = float(np.quantile(maxima, 1 - false_alarm_rate, method="higher"))
    return Calibration(false_alarm_rate, window_rows, centre, spread, maxima, critical)
