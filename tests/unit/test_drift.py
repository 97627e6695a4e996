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
from scipy import stats

from model.features import fit_schema
from model.inputs import RawInput
from model.params import DriftParams, Params
from monitoring.calibration import calibrate, effective_rows
from monitoring.columns import feature_drift, reference_checks
from monitoring.drift import Reference, calibrate_reference, judge
from monitoring.measures import chi_square_distance, count_psi, ks_distance, psi
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


@given(seed=st.integers(0, 10_000))
def test_ks_distance_is_scipys_two_sample_statistic(seed: int) -> None:
    rng = np.random.default_rng(seed)
    old, new = rng.normal(size=80).round(1), rng.normal(0.3, size=50).round(1)  # with ties
    assert ks_distance(old, new) == pytest.approx(stats.ks_2samp(old, new).statistic)


@given(reference=counts, scale=st.integers(1, 50))
def test_chi_square_distance_reads_shares_not_counts(reference: list[int], scale: int) -> None:
    old = np.array(reference)
    new = np.roll(old, 1)
    assert chi_square_distance(old, new * scale) == pytest.approx(chi_square_distance(old, new))


def test_chi_square_distance_of_proportional_counts_is_zero() -> None:
    assert chi_square_distance(np.array([3, 5, 0]), np.array([30, 50, 0])) == pytest.approx(0)


# --- calibration ------------------------------------------------------------------------------


def _clean_trial(seed: int, rate: float) -> bool:
    """One reference and one window drawn independently from one distribution: alarm or not."""
    frame = mixed_frame(700, seed)
    reference = Reference(
        inputs=SCHEMA.inputs,
        features=frame[FEATURES].iloc[:400].reset_index(drop=True),
        probabilities=_probabilities(frame[SCHEMA.label_name].iloc[:400]),
        labels=LABELS,
        positive_label=SCHEMA.positive_label,
    )
    params = PARAMS.model_copy(update={"false_alarm_rate": rate, "resamples": 500})
    live = frame.iloc[400:].reset_index(drop=True)
    return judge(reference, _window(live), EVALUATION_ACCURACY, params).retrain


def test_clean_windows_alarm_at_about_the_chosen_rate() -> None:
    """60 independent (reference, window) pairs at a 20 % rate: about 12 alarms; the bound is
    generous (a binomial(60, 0.2) falls outside it once in several thousand runs)."""
    alarms = sum(_clean_trial(seed, rate=0.2) for seed in range(60))
    assert 2 <= alarms <= 26


def test_clean_windows_rarely_alarm_at_the_default_rate() -> None:
    alarms = sum(_clean_trial(seed, rate=PARAMS.false_alarm_rate) for seed in range(100, 130))
    assert alarms <= 2


def test_a_window_is_calibrated_at_its_effective_size() -> None:
    """n draws from h distinct rows vary like 1 / (1/n + 1/h) rows (Kish)."""
    keys = np.random.default_rng(8).integers(0, 100, size=1000)
    collisions = float(np.mean(keys[:, None] == keys[None, :]) - 1 / len(keys)) * 1000 / 999
    assert effective_rows(1000, collisions, 0.0) == pytest.approx(
        1 / (1 / 1000 + 1 / 100), rel=0.15
    )
    assert effective_rows(1000, 0.0, 0.0) == 1000


def test_rows_replayed_from_a_small_clean_sample_are_not_drift() -> None:
    """A fixed set of clean rows sent again and again (a load test, a replayed test set)."""
    sample = _traffic(120, seed=9)
    replayed = sample.iloc[np.random.default_rng(10).integers(0, 120, 3000)]
    report = _judge(replayed.reset_index(drop=True))
    assert report.retrain is False
    assert report.effective_rows < 200


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
    assert _verdict(report, name).fired == ["ks"]
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


def test_a_change_in_missing_values_within_sampling_noise_is_not_drift() -> None:
    name = _feature("numeric", nullable=True)
    live = _traffic()
    live.loc[np.random.default_rng(4).random(len(live)) < 0.01, name] = np.nan
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


def test_a_smaller_false_alarm_rate_raises_every_threshold() -> None:
    strict = calibrate_reference(_reference(), 500, 0.001, PARAMS)
    lenient = calibrate_reference(_reference(), 500, 0.2, PARAMS)
    columns = range(len(strict.centre))
    assert all(strict.threshold(column) >= lenient.threshold(column) for column in columns)
    assert strict.critical > lenient.critical


# --- the report --------------------------------------------------------------------------------


def test_the_report_names_drifted_features_as_written_and_says_why() -> None:
    name = _feature("numeric", nullable=False)
    live = _traffic()
    live[name] += live[name].std()
    report = _judge(live)
    lines = terminal_lines(report)
    [line] = [line for line in lines if quoted(name) in line]
    assert "KS distance" in line
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
    assert unescaped.count("|") == 11  # ten cells


@given(name=st.text(min_size=1, max_size=30))
def test_any_feature_name_is_reported_verbatim(name: str) -> None:
    inputs = [RawInput(name=name, kind="categorical", categories=("x", "y"))]
    reference = pd.DataFrame({name: ["x", "y"] * 100})
    current = pd.DataFrame({name: ["x"] * 200})
    checks = reference_checks(inputs[0], reference[name])
    calibration = calibrate(checks, len(reference), len(current), 0.01, 200, seed=0)
    [verdict] = feature_drift(inputs, reference, current, calibration)
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


# --- traffic kept apart ------------------------------------------------------------------------


def _tagged(count: int, version: str, source: str | None, start: int = 0) -> list[dict[str, Any]]:
    live = _traffic(count, seed=start + 11)
    records = _records(live, _probabilities(live[SCHEMA.label_name]))
    for index, record in enumerate(records):
        record.update(request_id=f"{version}-{source}-{start + index}", model_version=version)
        record["ts"] = 1_700_000_000 + start + index
        if source is not None:
            record["source"] = source
    return records


def test_only_production_records_are_judged_and_the_rest_are_counted() -> None:
    records = [
        *_tagged(300, "v1", "production"),
        *_tagged(200, "v1", "load-test", 300),
        *_tagged(50, "v1", "smoke-test", 500),
        *_tagged(40, "v1", "shadow", 550),
    ]
    window = window_of(records, FEATURES, PARAMS.window_rows)
    assert len(window) == 300
    assert window.other_sources == {"load-test": 200, "smoke-test": 50, "shadow": 40}


def test_records_without_a_source_count_as_production() -> None:
    window = window_of(_tagged(30, "v1", None), FEATURES, PARAMS.window_rows)
    assert len(window) == 30
    assert window.other_sources == {}


def test_the_newest_production_version_is_judged_by_default() -> None:
    records = [*_tagged(100, "v1", None), *_tagged(60, "v2", "production", 100)]
    records += _tagged(10, "v3", "load-test", 200)  # newer, but not production
    window = window_of(records, FEATURES, PARAMS.window_rows)
    assert window.version == "v2"
    assert len(window) == 60
    assert window.other_versions == {"v1": 100}


def test_another_version_can_be_asked_for() -> None:
    records = [*_tagged(100, "v1", None), *_tagged(60, "v2", "production", 100)]
    window = window_of(records, FEATURES, PARAMS.window_rows, version="v1")
    assert (window.version, len(window), window.other_versions) == ("v1", 100, {"v2": 60})


def test_a_shifted_load_test_does_not_make_production_drift() -> None:
    name = _feature("numeric", nullable=False)
    load_test = _tagged(2000, "v1", "load-test", 1000)
    for record in load_test:
        record["features"][name] = 1e6
    records = [*_tagged(1000, "v1", "production"), *load_test]
    report = judge(_reference(), window_of(records, FEATURES, PARAMS.window_rows), 0.9, PARAMS)
    assert report.retrain is False


def test_the_report_names_the_version_the_window_and_what_was_left_out() -> None:
    records = [*_tagged(300, "v1", None), *_tagged(300, "v2", None, 300)]
    records += _tagged(20, "v2", "load-test", 600)
    report = judge(_reference(), window_of(records, FEATURES, PARAMS.window_rows), 0.9, PARAMS)
    first = terminal_lines(report)[0]
    assert '"v2": 300 production rows' in first
    assert '20 load-test, 300 of version "v1"' in first
    assert report.window.first_ts == 1_700_000_300
    assert "UTC" in markdown(report)
