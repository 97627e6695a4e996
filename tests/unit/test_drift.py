"""Drift detection: quiet on traffic like the training data, loud and specific on drift, for any
table. The reference and the live windows come from the generated mixed table (tests/tables.py);
features are picked by kind from its fitted schema, never by name."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from model.features import fit_schema
from model.inputs import RawInput
from model.params import DriftParams, Params
from monitoring.columns import feature_drift
from monitoring.drift import Reference, judge
from monitoring.measures import count_psi, psi
from monitoring.report import (
    DriftReport,
    FeatureDrift,
    as_json,
    markdown,
    quoted,
    terminal_lines,
)
from monitoring.window import Window, read_log, window_of
from tests.conftest import REPO_ROOT
from tests.tables import mixed_contract, mixed_frame

PARAMS = Params.load(REPO_ROOT / "params.yaml").monitoring.drift
CONTRACT = mixed_contract()
SCHEMA = fit_schema(mixed_frame(1000, seed=0), CONTRACT)
FEATURES = list(SCHEMA.feature_names)
LABELS = SCHEMA.labels
EVALUATION_ACCURACY = 0.9


def _feature(kind: str, nullable: bool | None = None) -> str:
    """The first feature of a kind (and nullability): tests know kinds, not names."""
    return next(
        item.name
        for item in SCHEMA.inputs
        if item.kind == kind and (nullable is None or item.nullable == nullable)
    )


def _probabilities(labels: Sequence[str], all_labels: Sequence[str] = LABELS) -> np.ndarray:
    """(rows, n_classes): 0.8 on each row's label, the rest spread evenly."""
    rest = 0.2 / (len(all_labels) - 1)
    codes = np.array([list(all_labels).index(label) for label in labels])
    probabilities = np.full((len(codes), len(all_labels)), rest)
    probabilities[np.arange(len(codes)), codes] = 0.8
    return probabilities


def _reference(rows: int = 1000, seed: int = 0) -> Reference:
    frame = mixed_frame(rows, seed)
    return Reference(
        inputs=SCHEMA.inputs,
        features=frame[FEATURES],
        probabilities=_probabilities(frame[SCHEMA.label_name]),
        labels=LABELS,
        positive_label=SCHEMA.positive_label,
    )


def _plain(value: Any) -> Any:
    """A frame cell as the JSON log has it: NaN is null, numpy scalars are plain."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    return value.item() if isinstance(value, np.generic) else value


def _records(
    frame: pd.DataFrame,
    probabilities: np.ndarray,
    labels: Sequence[str] = LABELS,
    features: Sequence[str] = FEATURES,
) -> list[dict[str, Any]]:
    """Prediction records as serving/prediction_log.py writes them, through JSON and back."""
    records = []
    for index, (row, probs) in enumerate(
        zip(frame[list(features)].itertuples(index=False), probabilities, strict=True)
    ):
        record = {
            "kind": "prediction",
            "request_id": f"request-{index}",
            "row": 0,
            "features": {name: _plain(value) for name, value in zip(features, row, strict=True)},
            "probabilities": probs.tolist(),
            "label": labels[int(np.argmax(probs))],
        }
        records.append(json.loads(json.dumps(record)))
    return records


def _traffic(rows: int = 2000, seed: int = 1) -> pd.DataFrame:
    """Live rows from the same distribution as the training rows (another draw)."""
    return mixed_frame(rows, seed)


def _window(frame: pd.DataFrame, feedback: Sequence[dict[str, Any]] = ()) -> Window:
    records = _records(frame, _probabilities(frame[SCHEMA.label_name]))
    return window_of([*records, *feedback], FEATURES, PARAMS.window_rows)


def _judge(
    frame: pd.DataFrame,
    feedback: Sequence[dict[str, Any]] = (),
    params: DriftParams = PARAMS,
) -> DriftReport:
    return judge(_reference(), _window(frame, feedback), EVALUATION_ACCURACY, params)


def _verdict(report: DriftReport, name: str) -> FeatureDrift:
    return next(item for item in report.features if item.feature == name)


# --- the measures ---------------------------------------------------------------------------


@given(seed=st.integers(0, 10_000))
def test_psi_is_never_negative(seed: int) -> None:
    rng = np.random.default_rng(seed)
    assert psi(rng.normal(size=300), rng.normal(rng.uniform(-1, 1), size=200), 10) >= 0


def test_psi_of_a_sample_against_itself_is_near_zero() -> None:
    values = np.random.default_rng(1).normal(size=2000)
    assert psi(values, values, 10) < 1e-6


def test_psi_against_a_constant_reference_is_finite() -> None:
    assert np.isfinite(psi(np.zeros(100), np.random.default_rng(2).normal(size=100), 10))


counts = st.lists(st.integers(0, 1000), min_size=2, max_size=8)


@given(data=st.data(), reference=counts)
def test_category_psi_is_never_negative(data: st.DataObject, reference: list[int]) -> None:
    size = len(reference)
    current = data.draw(st.lists(st.integers(0, 1000), min_size=size, max_size=size))
    assert count_psi(np.array(reference), np.array(current)) >= 0


@given(reference=counts)
def test_category_psi_of_counts_against_themselves_is_zero(reference: list[int]) -> None:
    assert count_psi(np.array(reference), np.array(reference)) == pytest.approx(0, abs=1e-12)


def test_an_empty_category_gives_a_finite_psi() -> None:
    assert np.isfinite(count_psi(np.array([500, 500, 0]), np.array([0, 100, 100])))


# --- features, by kind ----------------------------------------------------------------------


def test_traffic_like_the_training_data_shows_no_drift() -> None:
    report = _judge(_traffic())
    assert report.drifted_features == []
    assert report.prediction.drifted is False
    assert report.retrain is False


def test_every_feature_is_judged_with_the_test_of_its_kind() -> None:
    report = _judge(_traffic())
    assert [item.feature for item in report.features] == FEATURES
    tests = {item.kind: item.test for item in report.features}
    assert tests == {"numeric": "ks", "categorical": "chi_square", "boolean": "chi_square"}


def test_a_shifted_numeric_feature_is_detected_and_named() -> None:
    name = _feature("numeric", nullable=False)
    live = _traffic()
    live[name] += live[name].std()
    report = _judge(live)
    assert report.drifted_features == [name]
    assert {"psi", "ks"} <= set(_verdict(report, name).fired)
    assert report.retrain is True


def test_a_shifted_category_share_is_detected_and_named() -> None:
    name = _feature("categorical")
    category = next(item.categories for item in SCHEMA.inputs if item.name == name)[0]
    live = _traffic()
    live.loc[live.index % 2 == 0, name] = category
    report = _judge(live)
    assert report.drifted_features == [name]
    verdict = _verdict(report, name)
    assert "chi_square" in verdict.fired
    assert verdict.current_shares[category] > verdict.reference_shares[category] + 0.2


def test_a_shifted_boolean_share_is_detected_and_named() -> None:
    name = _feature("boolean")
    live = _traffic()
    live.loc[live.index % 10 != 0, name] = True
    report = _judge(live)
    assert report.drifted_features == [name]
    assert _verdict(report, name).current_shares["true"] > 0.85


def test_a_jump_in_missing_values_is_drift_of_that_feature_alone() -> None:
    name = _feature("numeric", nullable=True)
    live = _traffic()
    live.loc[np.random.default_rng(3).random(len(live)) < 0.4, name] = np.nan
    report = _judge(live)
    assert report.drifted_features == [name]
    verdict = _verdict(report, name)
    assert verdict.fired == ["missing_rate"]
    assert verdict.current_missing > verdict.reference_missing + 0.25


def test_a_small_change_in_missing_values_is_not_drift() -> None:
    """Within `max_missing_change` of the training share: imputation copes, no alarm."""
    name = _feature("numeric", nullable=True)
    live = _traffic()
    extra = PARAMS.max_missing_change / 2
    live.loc[np.random.default_rng(4).random(len(live)) < extra, name] = np.nan
    assert name not in _judge(live).drifted_features


def test_unseen_categories_are_counted_and_named() -> None:
    name = _feature("categorical")
    live = _traffic()
    unseen = live.index % 10 == 0
    live.loc[unseen, name] = "never seen in training"
    verdict = _verdict(_judge(live), name)
    assert verdict.unseen == int(unseen.sum())
    assert verdict.unseen_examples == ["never seen in training"]
    assert verdict.drifted is True
    assert "never seen in training" in verdict.why


def test_a_feature_absent_from_the_log_counts_as_null() -> None:
    name = _feature("categorical")
    live = _traffic()
    records = _records(live, _probabilities(live[SCHEMA.label_name]))
    for record in records:
        del record["features"][name]
    report = judge(_reference(), window_of(records, FEATURES, PARAMS.window_rows), 0.9, PARAMS)
    assert report.drifted_features == [name]
    assert _verdict(report, name).current_missing == 1.0


# --- the model's output -----------------------------------------------------------------------


def test_prediction_drift_on_many_classes_compares_predicted_label_shares() -> None:
    live = _traffic()
    records = _records(live, _probabilities([LABELS[0]] * len(live)))
    report = judge(_reference(), window_of(records, FEATURES, PARAMS.window_rows), 0.9, PARAMS)
    assert report.prediction.measure == "predicted_labels"
    assert report.prediction.drifted is True
    assert report.prediction.current_shares[LABELS[0]] == 1.0
    assert report.retrain is True


def _binary(scores: np.ndarray, as_mapping: bool) -> list[dict[str, Any]]:
    labels = LABELS[:2]
    live = _traffic(len(scores))
    records = _records(live, np.column_stack([1 - scores, scores]), labels)
    if as_mapping:  # the log may carry probabilities per label rather than in label order
        for record in records:
            record["probabilities"] = dict(zip(labels, record["probabilities"], strict=True))
    return records


@pytest.mark.parametrize("as_mapping", [False, True])
def test_prediction_drift_on_two_classes_compares_the_positive_probability(
    as_mapping: bool,
) -> None:
    rng = np.random.default_rng(5)
    scores = rng.uniform(size=1000)
    reference = Reference(
        inputs=SCHEMA.inputs,
        features=mixed_frame(1000, 0)[FEATURES],
        probabilities=np.column_stack([1 - scores, scores]),
        labels=LABELS[:2],
        positive_label=LABELS[1],
    )
    same = window_of(_binary(rng.uniform(size=2000), as_mapping), FEATURES, PARAMS.window_rows)
    shifted = window_of(_binary(rng.uniform(size=2000) ** 4, as_mapping), FEATURES, 5000)
    assert judge(reference, same, 0.9, PARAMS).prediction.drifted is False
    prediction = judge(reference, shifted, 0.9, PARAMS).prediction
    assert prediction.measure == "positive_probability"
    assert prediction.drifted is True


# --- concept drift, volume and params ----------------------------------------------------------


def test_wrong_feedback_labels_are_concept_drift() -> None:
    live = _traffic(500)
    predicted = live[SCHEMA.label_name].tolist()
    wrong = {label: LABELS[(index + 1) % len(LABELS)] for index, label in enumerate(LABELS)}
    feedback = [
        {"kind": "feedback", "request_id": f"request-{index}", "row": 0, "true_label": wrong[label]}
        for index, label in enumerate(predicted)
    ]
    report = _judge(live, feedback)
    assert report.concept.judged is True
    assert report.concept.drifted is True
    assert report.retrain is True


def test_right_feedback_labels_are_not_concept_drift() -> None:
    live = _traffic(500)
    feedback = [
        {"kind": "feedback", "request_id": f"request-{index}", "row": 0, "true_label": label}
        for index, label in enumerate(live[SCHEMA.label_name])
    ]
    concept = _judge(live, feedback).concept
    assert concept.judged is True
    assert concept.accuracy == 1.0
    assert concept.drifted is False


def test_too_little_traffic_gives_no_verdict() -> None:
    report = _judge(_traffic(PARAMS.min_rows - 1))
    assert report.retrain is False
    assert "no verdict" in report.summary


def test_thresholds_come_from_params() -> None:
    """The same shift passes once params.yaml tolerates it."""
    name = _feature("numeric", nullable=False)
    live = _traffic()
    live[name] += live[name].std()
    lenient = PARAMS.model_copy(update={"max_psi": 10.0, "ks_alpha": 1e-300})
    assert _judge(live, params=lenient).drifted_features == []


# --- the report --------------------------------------------------------------------------------


def test_the_report_names_drifted_features_as_written_and_says_why() -> None:
    name = _feature("numeric", nullable=False)
    live = _traffic()
    live[name] += live[name].std()
    report = _judge(live)
    lines = terminal_lines(report)
    [line] = [line for line in lines if quoted(name) in line]
    assert "PSI" in line
    assert "KS p" in line
    assert lines[-1] == "RETRAINING DUE"
    assert json.loads(json.dumps(as_json(report)))["drifted_features"] == [name]


def test_the_json_report_is_strict_json() -> None:
    live = _traffic()
    live[_feature("numeric", nullable=True)] = np.nan  # nothing to compare: no NaN in the JSON
    json.dumps(as_json(_judge(live)), allow_nan=False)


def test_a_name_with_markdown_characters_stays_in_its_table_cell() -> None:
    odd = "a|b *c* `d`"
    inputs = (RawInput(name=odd, kind="numeric"),)
    reference = pd.DataFrame({odd: np.random.default_rng(6).normal(size=500)})
    live = reference.sample(300, replace=True, random_state=7).reset_index(drop=True) + 3.0
    window = Window(
        features=live,
        predictions=pd.DataFrame(
            {"request_id": "r", "row": range(300), "label": LABELS[0], "probabilities": None}
        ),
        feedback=pd.DataFrame(columns=["request_id", "row", "true_label"]),
    )
    probabilities = _probabilities([LABELS[0]] * 500)
    report = judge(Reference(inputs, reference, probabilities, LABELS), window, 0.9, PARAMS)
    [row] = [line for line in markdown(report).splitlines() if line.startswith("| a")]
    unescaped = row.replace("\\|", "")
    assert unescaped.count("|") == 9  # eight cells


@given(name=st.text(min_size=1, max_size=30))
def test_any_feature_name_is_reported_verbatim(name: str) -> None:
    inputs = [RawInput(name=name, kind="categorical", categories=("x", "y"))]
    reference = pd.DataFrame({name: ["x", "y"] * 100})
    current = pd.DataFrame({name: ["x"] * 200})
    [verdict] = feature_drift(inputs, reference, current, PARAMS)
    assert verdict.feature == name
    assert verdict.drifted is True


# --- the log --------------------------------------------------------------------------------


def test_the_log_reader_keeps_the_latest_rows_and_skips_a_torn_line(tmp_path: Path) -> None:
    live = _traffic(30)
    records = _records(live, _probabilities(live[SCHEMA.label_name]))
    lines = [json.dumps(record, ensure_ascii=False) for record in records]
    (tmp_path / "predictions.jsonl").write_text("\n".join(lines) + '\n{"kind": "predi')
    window = read_log(tmp_path, FEATURES, window_rows=10)
    assert len(window) == 10
    assert list(window.features.columns) == FEATURES
    assert window.predictions["request_id"].tolist() == [f"request-{i}" for i in range(20, 30)]
