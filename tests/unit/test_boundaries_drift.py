"""The drift judge's limits (params.yaml monitoring.drift) decide at their exact value: the
window size that earns a verdict, the feedback that earns a concept-drift judgement, the tolerated
accuracy drop and the false-alarm rate. Labels come from the mixed table's schema."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from model.features import fit_schema
from model.params import Params
from monitoring.drift import Reference, concept_drift, judge, split_false_alarm_rate
from monitoring.window import Window
from tests.conftest import REPO_ROOT
from tests.tables import mixed_contract, mixed_frame

DRIFT = Params.load(REPO_ROOT / "params.yaml").monitoring.drift
SCHEMA = fit_schema(mixed_frame(300, seed=0), mixed_contract())
FEATURES = list(SCHEMA.feature_names)
RIGHT, WRONG = SCHEMA.labels[0], SCHEMA.labels[1]


def _window(rows: int, labelled: int = 0, correct: int = 0) -> Window:
    """`rows` logged predictions (all `RIGHT`), the first `labelled` of them with feedback, the
    first `correct` of those labelled `RIGHT`, the rest `WRONG`."""
    frame = mixed_frame(rows, seed=1)
    predictions = pd.DataFrame(
        {
            "request_id": [f"request-{index}" for index in range(rows)],
            "row": [0] * rows,
            "label": [RIGHT] * rows,
            "probabilities": [[1.0] + [0.0] * (len(SCHEMA.labels) - 1)] * rows,
        }
    )
    feedback = pd.DataFrame(
        {
            "request_id": [f"request-{index}" for index in range(labelled)],
            "row": [0] * labelled,
            "true_label": [RIGHT if index < correct else WRONG for index in range(labelled)],
        }
    )
    return Window(
        features=frame[FEATURES].reset_index(drop=True), predictions=predictions, feedback=feedback
    )


def _reference() -> Reference:
    frame = mixed_frame(400, seed=0)
    codes = np.array([list(SCHEMA.labels).index(label) for label in frame[SCHEMA.label_name]])
    return Reference(
        inputs=SCHEMA.inputs,
        features=frame[FEATURES],
        probabilities=np.eye(len(SCHEMA.labels))[codes],
        labels=SCHEMA.labels,
        positive_label=SCHEMA.positive_label,
    )


# --- min_rows ---------------------------------------------------------------------------------


def test_a_window_of_exactly_min_rows_gets_a_verdict_and_one_row_fewer_does_not() -> None:
    quick = DRIFT.model_copy(update={"resamples": 100})  # the limit under test is unchanged
    short = judge(_reference(), _window(DRIFT.min_rows - 1), 0.9, quick)
    assert short.summary == (
        f"only {DRIFT.min_rows - 1} logged rows, fewer than {DRIFT.min_rows}: no verdict"
    )
    assert (short.retrain, short.effective_rows, short.features) == (False, 0, [])
    enough = judge(_reference(), _window(DRIFT.min_rows), 0.9, quick)
    assert "no verdict" not in enough.summary
    assert enough.effective_rows > 0
    assert {item.feature for item in enough.features} == set(FEATURES)


# --- min_feedback_rows ------------------------------------------------------------------------


def test_exactly_min_feedback_rows_is_judged_and_one_fewer_is_not() -> None:
    needed = DRIFT.min_feedback_rows
    few = concept_drift(_window(needed + 5, needed - 1, needed - 1), 0.9, DRIFT, 0.01)
    assert (few.judged, few.rows) == (False, needed - 1)
    assert few.why == f"{needed - 1} labelled rows, fewer than {needed}"
    enough = concept_drift(_window(needed + 5, needed, needed), 0.9, DRIFT, 0.01)
    assert (enough.judged, enough.rows, enough.accuracy) == (True, needed, 1.0)


def test_no_feedback_at_all_is_said_so() -> None:
    concept = concept_drift(_window(10), 0.9, DRIFT, 0.01)
    assert (concept.judged, concept.rows, concept.why) == (False, 0, "no labelled feedback yet")


def test_the_false_alarm_rate_is_split_only_from_exactly_min_feedback_rows() -> None:
    needed, rate = DRIFT.min_feedback_rows, DRIFT.false_alarm_rate
    assert split_false_alarm_rate(_window(needed + 5, needed - 1), DRIFT) == (rate, 0.0)
    assert split_false_alarm_rate(_window(needed + 5, needed), DRIFT) == (rate / 2, rate / 2)


# --- max_accuracy_drop and the false-alarm rate -----------------------------------------------


@pytest.mark.parametrize("correct_share", [0.6, 0.8, 1.0])
def test_concept_drift_tests_against_evaluation_accuracy_minus_the_tolerated_drop(
    correct_share: float,
) -> None:
    """The p-value is the one-sided binomial test at exactly accuracy - max_accuracy_drop."""
    rows = 4 * DRIFT.min_feedback_rows
    correct = round(correct_share * rows)
    evaluation = 0.95
    floor = evaluation - DRIFT.max_accuracy_drop
    expected = stats.binomtest(correct, rows, floor, alternative="less").pvalue
    concept = concept_drift(_window(rows, rows, correct), evaluation, DRIFT, DRIFT.false_alarm_rate)
    assert concept.pvalue == pytest.approx(expected, rel=1e-12)
    assert concept.accuracy == correct / rows


def test_a_tolerated_drop_past_the_evaluation_accuracy_tests_against_zero() -> None:
    rows = DRIFT.min_feedback_rows
    concept = concept_drift(_window(rows, rows, 0), DRIFT.max_accuracy_drop / 2, DRIFT, 0.01)
    assert concept.pvalue == pytest.approx(1.0)
    assert concept.drifted is False


def test_a_pvalue_exactly_at_the_false_alarm_rate_is_no_drift_and_just_above_it_is() -> None:
    rows = 4 * DRIFT.min_feedback_rows
    window = _window(rows, rows, round(0.7 * rows))
    pvalue = concept_drift(window, 0.95, DRIFT, DRIFT.false_alarm_rate).pvalue
    assert pvalue is not None
    at_rate = concept_drift(window, 0.95, DRIFT, pvalue)
    assert at_rate.drifted is False
    assert f"p {pvalue:.2g} >= " in at_rate.why
    above = concept_drift(window, 0.95, DRIFT, math.nextafter(pvalue, math.inf))
    assert above.drifted is True
    assert f"p {pvalue:.2g} < " in above.why


def test_feedback_much_worse_than_evaluation_is_drift_at_the_projects_rate() -> None:
    rows = 4 * DRIFT.min_feedback_rows
    concept = concept_drift(_window(rows, rows, rows // 2), 0.95, DRIFT, DRIFT.false_alarm_rate)
    assert concept.drifted is True
    assert concept.pvalue is not None
    assert concept.pvalue < DRIFT.false_alarm_rate
