"""Batch scoring: any input format or chunk size stores the model's predictions exactly once,
and rows the model cannot take stop the run, named, before anything is written.

The model is a tiny export of the generated mixed table (categoricals, a boolean, nulls, three
classes, odd names): every column, kind and label is read from its metadata, none named here.
"""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, create_engine, inspect, text

from batch.score import (
    MAX_COLUMN_NAME,
    BatchError,
    BatchModel,
    Progress,
    load_model_dir,
    main,
    open_database,
    open_input,
    probability_columns,
    score_file,
)
from model.inference import predict_proba
from model.inputs import RawInput
from model.model_store import METADATA_FILE
from tests.batch_fixtures import export_tiny_model, input_frame

ROWS = 250
CHUNK = 40
UNSEEN = "\u27c2 not a category \u27c2"
SQL_NAME = re.compile(r"[a-z_][a-z0-9_]*")


class SimulatedKillError(Exception):
    """Stands for the process being killed between two chunks."""


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_tiny_model(tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="module")
def model(model_dir: Path) -> BatchModel:
    return load_model_dir(model_dir)


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return input_frame(ROWS)


@pytest.fixture
def csv_file(tmp_path: Path, frame: pd.DataFrame) -> Path:
    path = tmp_path / "input.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    return create_engine(f"sqlite:///{tmp_path / 'predictions.db'}")


def _stored(engine: Engine, table: str = "predictions") -> pd.DataFrame:
    with engine.connect() as connection:
        return pd.read_sql(text(f"SELECT * FROM {table} ORDER BY row_index"), connection)


def _probability_columns(model: BatchModel) -> list[str]:
    return list(probability_columns(model.labels).values())


def _expected(model: BatchModel, frame: pd.DataFrame) -> np.ndarray:
    return predict_proba(model.session, model.layout.column_feeds(frame))


def _input(model: BatchModel, kind: str, **wanted: object) -> RawInput:
    """The first of the model's inputs of `kind` with the wanted attributes."""
    return next(
        item
        for item in model.layout.inputs
        if item.kind == kind and all(getattr(item, key) == value for key, value in wanted.items())
    )


def _score_until_interrupted(
    path: Path, model: BatchModel, engine: Engine, after_chunks: int
) -> None:
    def stop(progress: Progress) -> None:
        if progress.stored >= after_chunks * CHUNK:
            raise SimulatedKillError

    with pytest.raises(SimulatedKillError):
        score_file(open_input(path), model, engine, chunk_rows=CHUNK, on_chunk=stop)


def _with_values(
    tmp_path: Path, frame: pd.DataFrame, name: str, rows: list[int], value: object
) -> Path:
    """The input with `value` at `rows` of column `name`, as a CSV."""
    changed = frame.astype({name: object})
    changed.loc[rows, name] = value
    path = tmp_path / "changed.csv"
    changed.to_csv(path, index=False)
    return path


def test_stored_predictions_match_the_onnx_model(
    csv_file: Path, frame: pd.DataFrame, model: BatchModel, engine: Engine
) -> None:
    score_file(open_input(csv_file), model, engine, chunk_rows=CHUNK)
    stored = _stored(engine)
    expected = _expected(model, frame)
    assert stored["row_index"].tolist() == list(range(ROWS))
    assert np.array_equal(stored[_probability_columns(model)].to_numpy(), expected)
    assert stored["label"].tolist() == [model.labels[i] for i in expected.argmax(axis=1)]


def test_rows_with_nulls_in_nullable_features_are_scored(
    csv_file: Path, frame: pd.DataFrame, model: BatchModel, engine: Engine
) -> None:
    nullable = [item.name for item in model.layout.inputs if item.nullable]
    with_nulls = frame[nullable].isna().any(axis=1)
    assert with_nulls.sum() > 10  # the claim means something
    score_file(open_input(csv_file), model, engine, chunk_rows=CHUNK)
    assert _stored(engine)["row_index"].tolist() == list(range(ROWS))


def test_rows_are_keyed_by_the_sha256_of_the_file_bytes_and_the_model_version(
    csv_file: Path, model: BatchModel, engine: Engine
) -> None:
    score_file(open_input(csv_file), model, engine, chunk_rows=CHUNK)
    stored = _stored(engine)
    assert set(stored["input_sha256"]) == {hashlib.sha256(csv_file.read_bytes()).hexdigest()}
    assert set(stored["model_version"]) == {model.version}
    assert stored["scored_at"].notna().all()


def test_csv_and_parquet_inputs_store_the_same_predictions(
    tmp_path: Path, csv_file: Path, frame: pd.DataFrame, model: BatchModel, engine: Engine
) -> None:
    parquet_file = tmp_path / "input.parquet"
    pd.read_csv(csv_file).to_parquet(parquet_file, row_group_size=64)
    score_file(open_input(csv_file), model, engine, "from_csv", chunk_rows=CHUNK)
    score_file(open_input(parquet_file), model, engine, "from_parquet", chunk_rows=CHUNK)
    columns = ["row_index", "label", *_probability_columns(model)]
    from_csv, from_parquet = _stored(engine, "from_csv"), _stored(engine, "from_parquet")
    assert len(from_csv) == ROWS
    pd.testing.assert_frame_equal(from_csv[columns], from_parquet[columns])


def test_rerunning_the_same_input_and_model_adds_no_rows(
    csv_file: Path, model: BatchModel, engine: Engine
) -> None:
    score_file(open_input(csv_file), model, engine, chunk_rows=CHUNK)
    again = score_file(open_input(csv_file), model, engine, chunk_rows=CHUNK)
    assert (again.scored, again.already_stored) == (0, ROWS)
    assert len(_stored(engine)) == ROWS


def test_rerunning_with_another_chunk_size_adds_no_rows(
    csv_file: Path, model: BatchModel, engine: Engine
) -> None:
    """The stored prefix is not a multiple of the new chunk size: the overlap is not doubled."""
    _score_until_interrupted(csv_file, model, engine, after_chunks=2)
    score_file(open_input(csv_file), model, engine, chunk_rows=CHUNK + 7)
    assert _stored(engine)["row_index"].tolist() == list(range(ROWS))


def test_another_model_version_scores_the_same_input_again(
    csv_file: Path, model: BatchModel, engine: Engine
) -> None:
    score_file(open_input(csv_file), model, engine, chunk_rows=CHUNK)
    other = BatchModel(model.session, model.layout, model.labels, "v2-test")
    score_file(open_input(csv_file), other, engine, chunk_rows=CHUNK)
    assert _stored(engine)["model_version"].value_counts().to_dict() == {
        model.version: ROWS,
        "v2-test": ROWS,
    }


def test_an_interrupted_run_resumes_to_exactly_one_row_per_input_row(
    csv_file: Path, model: BatchModel, engine: Engine
) -> None:
    _score_until_interrupted(csv_file, model, engine, after_chunks=3)
    assert len(_stored(engine)) == 3 * CHUNK  # each finished chunk was committed
    score_file(open_input(csv_file), model, engine, chunk_rows=CHUNK)
    assert _stored(engine)["row_index"].tolist() == list(range(ROWS))


def test_a_resumed_run_scores_only_the_chunks_not_yet_stored(
    csv_file: Path, model: BatchModel, engine: Engine
) -> None:
    _score_until_interrupted(csv_file, model, engine, after_chunks=3)
    resumed = score_file(open_input(csv_file), model, engine, chunk_rows=CHUNK)
    assert (resumed.already_stored, resumed.scored) == (3 * CHUNK, ROWS - 3 * CHUNK)


def test_a_missing_input_column_fails_before_anything_is_written(
    tmp_path: Path, frame: pd.DataFrame, model: BatchModel, engine: Engine
) -> None:
    absent = model.layout.categorical[0]
    path = tmp_path / "partial.csv"
    frame.drop(columns=absent).to_csv(path, index=False)
    with pytest.raises(BatchError, match=re.escape(f"model's inputs [{absent!r}]")):
        score_file(open_input(path), model, engine, chunk_rows=CHUNK)
    assert inspect(engine).get_table_names() == []


def test_a_null_where_the_model_takes_none_is_reported_with_its_column_and_rows(
    tmp_path: Path, frame: pd.DataFrame, model: BatchModel, engine: Engine
) -> None:
    name = _input(model, "numeric", nullable=False).name
    path = _with_values(tmp_path, frame, name, [57, 201], None)
    with pytest.raises(BatchError, match="not nullable") as error:
        score_file(open_input(path), model, engine, chunk_rows=CHUNK)
    assert f"{name!r}: 2 null(s)" in str(error.value)
    assert "rows 57, 201" in str(error.value)


def test_a_value_outside_a_rejecting_categorical_is_reported_with_value_and_row(
    tmp_path: Path, frame: pd.DataFrame, model: BatchModel, engine: Engine
) -> None:
    item = _input(model, "categorical", unseen="reject")
    path = _with_values(tmp_path, frame, item.name, [3], UNSEEN)
    with pytest.raises(BatchError, match="unseen: reject") as error:
        score_file(open_input(path), model, engine, chunk_rows=CHUNK)
    assert f"{item.name!r}: 1 value(s) outside its categories" in str(error.value)
    assert f"row 3 {UNSEEN!r}" in str(error.value)


def test_a_value_outside_a_categorical_with_an_other_bucket_is_scored(
    tmp_path: Path, frame: pd.DataFrame, model: BatchModel, engine: Engine
) -> None:
    item = _input(model, "categorical", unseen="other")
    path = _with_values(tmp_path, frame, item.name, [3, 4], UNSEEN)
    summary = score_file(open_input(path), model, engine, chunk_rows=CHUNK)
    assert summary.scored == ROWS


def test_text_in_a_numeric_column_is_reported_with_value_and_row(
    tmp_path: Path, frame: pd.DataFrame, model: BatchModel, engine: Engine
) -> None:
    name = _input(model, "numeric").name
    path = _with_values(tmp_path, frame, name, [8], "twelve")
    with pytest.raises(BatchError, match=re.escape(f"{name!r}: 1 value(s) that are not numbers")):
        score_file(open_input(path), model, engine, chunk_rows=CHUNK)


def test_a_value_that_is_not_a_boolean_is_reported_with_value_and_row(
    tmp_path: Path, frame: pd.DataFrame, model: BatchModel, engine: Engine
) -> None:
    name = _input(model, "boolean").name
    path = _with_values(tmp_path, frame, name, [9], "maybe")
    with pytest.raises(BatchError, match=re.escape("row 9 'maybe'")):
        score_file(open_input(path), model, engine, chunk_rows=CHUNK)


def test_a_bad_row_in_the_last_chunk_leaves_nothing_written(
    tmp_path: Path, frame: pd.DataFrame, model: BatchModel, engine: Engine
) -> None:
    item = _input(model, "categorical", unseen="reject")
    path = _with_values(tmp_path, frame, item.name, [ROWS - 1], UNSEEN)
    with pytest.raises(BatchError, match="nothing was written"):
        score_file(open_input(path), model, engine, chunk_rows=CHUNK)
    assert inspect(engine).get_table_names() == []


def test_a_model_json_without_inputs_falls_back_to_the_onnx_files_own_description(
    tmp_path: Path, model_dir: Path, model: BatchModel
) -> None:
    info = json.loads((model_dir / METADATA_FILE).read_text())
    del info["inputs"]
    copy = tmp_path / "model"
    copy.mkdir()
    (copy / METADATA_FILE).write_text(json.dumps(info))
    (copy / "model.onnx").write_bytes((model_dir / "model.onnx").read_bytes())
    assert load_model_dir(copy).layout.inputs == model.layout.inputs


def test_probability_columns_of_the_mixed_labels_read_like_the_labels(model: BatchModel) -> None:
    assert list(probability_columns(model.labels).values()) == [
        "p_amber",
        "p_blue_green",
        "p_red_0",
    ]


@given(labels=st.lists(st.text(max_size=80), min_size=2, max_size=8, unique=True))
def test_probability_columns_are_sql_safe_and_distinct_for_any_labels(labels: list[str]) -> None:
    columns = list(probability_columns(labels).values())
    assert len(set(columns)) == len(labels)
    assert all(SQL_NAME.fullmatch(column) and len(column) <= MAX_COLUMN_NAME for column in columns)


@settings(max_examples=5, deadline=None)
@given(chunk_rows=st.integers(1, ROWS + 10))
def test_chunk_size_does_not_change_the_stored_predictions(
    model: BatchModel, frame: pd.DataFrame, chunk_rows: int
) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "input.csv"
        frame.to_csv(path, index=False)
        engine = create_engine(f"sqlite:///{Path(scratch) / 'predictions.db'}")
        score_file(open_input(path), model, engine, chunk_rows=chunk_rows)
        stored = _stored(engine)
        engine.dispose()
    assert np.array_equal(stored[_probability_columns(model)].to_numpy(), _expected(model, frame))


def test_a_missing_input_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(BatchError, match="no such file"):
        open_input(tmp_path / "absent.csv")


def test_a_corrupt_parquet_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"not parquet at all")
    with pytest.raises(BatchError, match="unreadable as Parquet"):
        open_input(path)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("not a url", "not a database URL"),
        ("nosuchdialect://x", "not a usable database URL"),
        ("oracle://u@localhost/db", "driver is not installed|only sqlite and postgresql"),
        ("sqlite:////nonexistent/directory/predictions.db", "cannot connect"),
        ("postgresql+psycopg://u@127.0.0.1:1/db", "cannot connect"),
    ],
)
def test_a_bad_database_url_is_a_clear_error(url: str, reason: str) -> None:
    with pytest.raises(BatchError, match=reason):
        open_database(url)


def test_the_command_scores_a_file_and_prints_progress_and_a_summary(
    csv_file: Path, model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    database = tmp_path / "out.db"
    argv = [str(csv_file), "--db", f"sqlite:///{database}", "--model-dir", str(model_dir)]
    assert main([*argv, "--chunk-rows", "100"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(" rows")[0] for line in lines[-4:-1]] == [
        "batch: 100/250",
        "batch: 200/250",
        "batch: 250/250",
    ]
    assert lines[-1].startswith("batch: done: 250 rows, 250 scored now")
    assert "0 already stored" in lines[-1]


def test_the_command_exits_nonzero_with_the_reason_on_a_missing_file(
    model_dir: Path, tmp_path: Path
) -> None:
    with pytest.raises(SystemExit, match=r"batch: error: .*absent\.csv: no such file"):
        main([str(tmp_path / "absent.csv"), "--model-dir", str(model_dir)])


def test_the_command_exits_nonzero_naming_the_column_and_rows_of_a_bad_input(
    model_dir: Path, model: BatchModel, frame: pd.DataFrame, tmp_path: Path
) -> None:
    name = _input(model, "numeric", nullable=False).name
    path = _with_values(tmp_path, frame, name, [12], None)
    database = tmp_path / "out.db"
    argv = [str(path), "--db", f"sqlite:///{database}", "--model-dir", str(model_dir)]
    with pytest.raises(SystemExit, match=rf"(?s)batch: error: .*{re.escape(repr(name))}.*rows 12"):
        main(argv)
    assert inspect(create_engine(f"sqlite:///{database}")).get_table_names() == []
