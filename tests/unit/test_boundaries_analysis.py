"""Every canary-analysis limit in params.yaml (rollout.analysis) decides at its exact value, and
every reason a step fails is named on its own. Limits are read from params.yaml."""

from __future__ import annotations

import math

import numpy as np
import pytest

from model.params import Params
from rollout.analysis import (
    ONE_SIDED_95_Z,
    Attempt,
    Disagreement,
    LogEntry,
    VariantStats,
    client_error_increase,
    judge,
    variant_stats,
    wilson_bounds,
)
from tests.conftest import REPO_ROOT

LIMITS = Params.load(REPO_ROOT / "params.yaml").rollout.analysis
ROWS = 400  # a sample size for the sampled checks: large enough for the bound to cross any limit


def _healthy(requests: int = 1000, **changes: float) -> VariantStats:
    """A canary that passes every check unless `changes` says otherwise."""
    values: dict[str, float] = {
        "requests": requests,
        "failures": 0,
        "success_rate": 1.0,
        "p99_ms": LIMITS.max_p99_ms / 2,
        "client_errors": 0,
    } | changes
    return VariantStats(**values)  # type: ignore[arg-type]


def _reasons(canary: VariantStats, disagreement: Disagreement | None = None) -> list[str]:
    return judge(canary, disagreement, LIMITS, _healthy()).reasons


# --- min_requests -----------------------------------------------------------------------------


def test_exactly_min_requests_is_conclusive_and_one_fewer_is_not() -> None:
    assert _reasons(_healthy(LIMITS.min_requests)) == []
    [reason] = _reasons(_healthy(LIMITS.min_requests - 1))
    assert reason.startswith("inconclusive:")
    assert f"fewer than {LIMITS.min_requests}" in reason
    assert _reasons(_healthy(LIMITS.min_requests + 1)) == []


def test_no_traffic_at_all_is_inconclusive_not_a_failed_success_rate() -> None:
    [reason] = _reasons(_healthy(0, success_rate=0.0))
    assert reason.startswith("inconclusive:")


# --- min_success_rate -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("where", "step", "passes"),
    [("at the limit", 0, True), ("just under", -1, False), ("just over", 1, True)],
)
def test_a_success_rate_exactly_at_the_minimum_passes(where: str, step: int, passes: bool) -> None:
    rate = LIMITS.min_success_rate
    if step:
        rate = math.nextafter(rate, math.inf * step)
    reasons = _reasons(_healthy(success_rate=rate, failures=1))
    assert (reasons == []) is passes, f"success rate {where}: {reasons}"
    if not passes:
        assert reasons[0].startswith("success rate ")
        assert "(1 failed of 1000)" in reasons[0]


# --- max_p99_ms -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("where", "step", "passes"),
    [("at the limit", 0, True), ("just over", 1, False), ("just under", -1, True)],
)
def test_a_p99_exactly_at_the_maximum_passes(where: str, step: int, passes: bool) -> None:
    p99 = LIMITS.max_p99_ms
    if step:
        p99 = math.nextafter(p99, math.inf * step)
    reasons = _reasons(_healthy(p99_ms=p99))
    assert (reasons == []) is passes, f"p99 {where}: {reasons}"
    if not passes:
        assert reasons == [f"p99 {p99:.1f} ms above {LIMITS.max_p99_ms:g} ms"]


def test_p99_is_the_99th_percentile_of_the_answered_attempts_not_the_median() -> None:
    """1..100 ms: the 99th percentile is 99.01 ms (numpy's linear rule), the median 50.5."""
    entries = [
        LogEntry(
            msec=1.0, status=200, uri="/predict", attempts=(Attempt(9, 200, ms / 1000),), body=""
        )
        for ms in range(1, 101)
    ]
    assert variant_stats(entries, 9).p99_ms == pytest.approx(99.01)


def test_unanswered_and_5xx_attempts_do_not_enter_the_latency() -> None:
    """A timed-out attempt's time is nginx's wait, not the server's answer."""
    attempts = [Attempt(9, 200, 0.001), Attempt(9, 0, 30.0), Attempt(9, 504, 30.0)]
    entries = [LogEntry(1.0, 200, "/predict", (attempt,), "") for attempt in attempts]
    stats = variant_stats(entries, 9)
    assert (stats.requests, stats.failures) == (3, 2)
    assert stats.p99_ms == pytest.approx(1.0)


def test_a_4xx_is_a_client_error_and_not_a_failure_while_a_5xx_and_no_answer_are_failures() -> None:
    statuses = [200, 399, 400, 499, 500, 0]
    entries = [LogEntry(1.0, 200, "/predict", (Attempt(9, s, 0.001),), "") for s in statuses]
    stats = variant_stats(entries, 9)
    assert (stats.requests, stats.failures, stats.client_errors) == (6, 2, 2)
    assert stats.success_rate == pytest.approx(4 / 6)


# --- the sampled checks: the Wilson bound and its limits --------------------------------------


@pytest.mark.parametrize(("hits", "total"), [(1, 10), (5, 60), (30, 400), (0, 50), (50, 50)])
def test_the_wilson_bounds_are_the_score_interval_at_one_sided_95_percent(
    hits: int, total: int
) -> None:
    """Each bound b solves (p - b)^2 = z^2 b (1 - b) / n with z = 1.645: the score test's edge."""
    share = hits / total
    for bound in wilson_bounds(hits, total):
        if 0.0 < bound < 1.0 and abs(share - bound) > 1e-9:
            implied_z = abs(share - bound) / math.sqrt(bound * (1 - bound) / total)
            assert implied_z == pytest.approx(ONE_SIDED_95_Z, rel=1e-9)
    low, high = wilson_bounds(hits, total)
    assert low - 1e-12 <= share <= high + 1e-12  # rounding at a share of 0 or 1
    assert ONE_SIDED_95_Z == 1.645


def test_wilson_bounds_of_nothing_say_nothing() -> None:
    assert wilson_bounds(0, 0) == (0.0, 1.0)


def _first_failing(limit: float, fails: object) -> int:
    """The fewest of ROWS that fail a sampled check whose limit is `limit`."""
    assert callable(fails)
    return next(k for k in range(ROWS + 1) if fails(k))


def test_label_disagreement_fails_from_the_first_count_whose_bound_is_above_the_limit() -> None:
    limit = LIMITS.max_label_disagreement
    first = _first_failing(limit, lambda k: Disagreement(k, ROWS).exceeds(limit))
    assert (
        Disagreement(first, ROWS).lower_bound()
        > limit
        >= Disagreement(first - 1, ROWS).lower_bound()
    )
    assert _reasons(_healthy(), Disagreement(first - 1, ROWS)) == []
    [reason] = _reasons(_healthy(), Disagreement(first, ROWS))
    assert reason.startswith("labels differ from stable on ")
    assert f"above {limit:.1%} with 95% confidence" in reason


def test_a_disagreement_bound_exactly_at_the_limit_passes() -> None:
    disagreement = Disagreement(30, ROWS)
    bound = disagreement.lower_bound()
    assert not disagreement.exceeds(bound)
    assert disagreement.exceeds(math.nextafter(bound, -math.inf))


def test_no_replayed_rows_never_exceed_a_limit() -> None:
    assert not Disagreement(0, 0).exceeds(0.0)
    assert Disagreement(0, 0).lower_bound() == 0.0
    assert Disagreement(0, 0).share == 0.0


def test_client_errors_fail_from_the_first_count_whose_bound_is_above_stables_plus_the_limit() -> (
    None
):
    limit = LIMITS.max_client_error_increase
    nobody = _healthy(0)
    first = _first_failing(
        limit, lambda k: client_error_increase(_healthy(ROWS, client_errors=k), nobody, limit)
    )
    assert wilson_bounds(first, ROWS)[0] > limit >= wilson_bounds(first - 1, ROWS)[0]
    stable = _healthy(0)
    canary_ok, canary_bad = (
        _healthy(ROWS, client_errors=first - 1),
        _healthy(ROWS, client_errors=first),
    )
    assert judge(canary_ok, None, LIMITS, stable).reasons == []
    [reason] = judge(canary_bad, None, LIMITS, stable).reasons
    assert reason.startswith("client errors (4xx): canary ")
    assert f"more than {limit:.1%} above with 95% confidence" in reason


def test_a_canary_bound_exactly_at_stables_bound_plus_the_limit_passes() -> None:
    """With no stable traffic stable's bound is 0, so the limit itself is the canary's bound."""
    canary = _healthy(ROWS, client_errors=60)
    bound = wilson_bounds(60, ROWS)[0]
    assert client_error_increase(canary, _healthy(0), bound) is None
    assert client_error_increase(canary, _healthy(0), math.nextafter(bound, -math.inf)) is not None


def test_stables_own_client_errors_raise_the_bar() -> None:
    """The canary refusing as much as stable does is the traffic, not the canary."""
    limit = LIMITS.max_client_error_increase
    canary = _healthy(ROWS, client_errors=ROWS // 4)
    assert client_error_increase(canary, _healthy(0), limit) is not None
    assert client_error_increase(canary, _healthy(ROWS, client_errors=ROWS // 4), limit) is None


def test_a_canary_without_requests_is_never_blamed_for_client_errors() -> None:
    assert client_error_increase(_healthy(0), _healthy(ROWS, client_errors=ROWS), 0.0) is None


# --- every reason alone -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("canary", "disagreement", "opening"),
    [
        (_healthy(LIMITS.min_requests - 1), None, "inconclusive: canary saw "),
        (_healthy(failures=500, success_rate=0.5), None, "success rate 50.00% below "),
        (_healthy(client_errors=500), None, "client errors (4xx): canary 50.0% of 1000"),
        (_healthy(p99_ms=LIMITS.max_p99_ms * 2), None, "p99 "),
        (_healthy(), Disagreement(ROWS, ROWS), "labels differ from stable on 100.0% of 400"),
    ],
    ids=["inconclusive", "success-rate", "client-errors", "p99", "labels-differ"],
)
def test_each_failing_check_fails_the_step_with_its_own_reason_only(
    canary: VariantStats, disagreement: Disagreement | None, opening: str
) -> None:
    verdict = judge(canary, disagreement, LIMITS, _healthy())
    assert not verdict.passed
    [reason] = verdict.reasons
    assert reason.startswith(opening), reason


def test_a_passing_step_records_the_canary_and_agreement_figures() -> None:
    verdict = judge(_healthy(), Disagreement(2, 100), LIMITS, _healthy())
    assert verdict.passed
    assert verdict.reasons == []
    assert verdict.checks["canary"]["requests"] == 1000
    assert verdict.checks["label_disagreement"] == 0.02
    assert verdict.checks["label_disagreement_rows"] == 100


def test_stats_of_an_idle_variant_are_zeros_not_errors() -> None:
    stats = variant_stats([], 9)
    assert (stats.requests, stats.success_rate, stats.p99_ms, stats.client_error_rate) == (
        0,
        0.0,
        0.0,
        0.0,
    )
    assert np.isfinite(list(stats.describe().values())).all()
