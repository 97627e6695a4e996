"""Batch scoring: any input format or chunk size stores the model's predictions exactly once."""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, create_engine, inspect, text

from model.inference import predict_proba
from serving.batch import (
    BatchError,
    BatchModel,
    Progress,
    load_model_dir,
    main,
    open_database,
    open_input,
    score_file,
)
from tests.batch_fixtures import FEATURES, LABELS, export_tiny_model, input_frame

ROWS = 250
CHUNK = 40


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


def _score_until_interrupted(
    path: Path, model: BatchModel, engine: Engine, after_chunks: int
) -> None:
    def stop(progress: Progress) -> None:
        if progress.stored >= after_chunks * CHUNK:
            raise SimulatedKillError

    with pytest.raises(SimulatedKillError):
        score_file(open_input(path), model, engine, chunk_rows=CHUNK, on_chunk=stop)


def test_stored_predictions_match_the_onnx_model(
    csv_file: Path, frame: pd.DataFrame, model: BatchModel, engine: Engine
) -> None:
    score_file(open_input(csv_file), model, engine, chunk_rows=CHUNK)
    stored = _stored(engine)
    expected = predict_proba(model.session, frame[list(FEATURES)].to_numpy(np.float32))
    got = stored[[f"p_{label}" for label in LABELS]].to_numpy()
    assert stored["row_index"].tolist() == list(range(ROWS))
    assert np.array_equal(got, expected.astype(np.float64))
    assert stored["label"].tolist() == [LABELS[i] for i in expected.argmax(axis=1)]


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
    columns = ["row_index", "label", *(f"p_{label}" for label in LABELS)]
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
    other = BatchModel(model.session, model.feature_names, model.labels, "v2-test")
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


def test_a_missing_feature_column_fails_before_anything_is_written(
    tmp_path: Path, frame: pd.DataFrame, model: BatchModel, engine: Engine
) -> None:
    path = tmp_path / "partial.csv"
    frame.drop(columns="f2").to_csv(path, index=False)
    with pytest.raises(BatchError, match=r"missing feature columns \['f2'\]"):
        score_file(open_input(path), model, engine, chunk_rows=CHUNK)
    assert inspect(engine).get_table_names() == []


def test_a_missing_value_is_reported_with_its_row(
    tmp_path: Path, frame: pd.DataFrame, model: BatchModel, engine: Engine
) -> None:
    path = tmp_path / "gap.csv"
    gap = frame.copy()
    gap.loc[57, "f1"] = np.nan
    gap.to_csv(path, index=False)
    with pytest.raises(BatchError, match="row 57: no value for f1"):
        score_file(open_input(path), model, engine, chunk_rows=CHUNK)


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
    expected = predict_proba(model.session, frame[list(FEATURES)].to_numpy(np.float32))
    assert np.array_equal(stored[[f"p_{label}" for label in LABELS]].to_numpy(), expected)


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
    assert [line.split(" rows")[0] for line in lines[1:4]] == [
        "batch: 100/~250",
        "batch: 200/~250",
        "batch: 250/~250",
    ]
    assert lines[-1].startswith("batch: done: 250 rows, 250 scored now")
    assert "0 already stored" in lines[-1]


def test_the_command_exits_nonzero_with_the_reason_on_a_missing_file(
    model_dir: Path, tmp_path: Path
) -> None:
    with pytest.raises(SystemExit, match=r"batch: error: .*absent\.csv: no such file"):
        main([str(tmp_path / "absent.csv"), "--model-dir", str(model_dir)])
