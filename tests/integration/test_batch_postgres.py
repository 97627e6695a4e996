"""Batch scoring against a real PostgreSQL server: re-runs add nothing, interrupted runs resume,
and each probability column's comment holds its class label.

The server is started for the session in a temporary directory (trust auth, loopback, a free
port) and stopped at the end whatever happens. As root it runs as the `postgres` (or `nobody`)
user, because initdb refuses to run as root.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import BigInteger, Engine, column, create_engine, inspect, select, table

from batch.score import (
    BatchModel,
    Progress,
    load_model_dir,
    open_database,
    open_input,
    probability_columns,
)
from batch.score import score_file as score
from rollout.ports import free_port
from tests.batch_fixtures import export_tiny_model, input_frame

pytestmark = pytest.mark.slow

ROWS = 300
CHUNK = 50
SERVER_TOOLS = ("initdb", "pg_ctl", "postgres")
SEARCH_GLOBS = (
    "/usr/lib/postgresql/*/bin",
    "/usr/local/pgsql/bin",
    "/opt/homebrew/opt/postgresql*/bin",
)


class SimulatedKillError(Exception):
    """Stands for the process being killed between two chunks."""


def _server_bin_dir() -> Path:
    """The directory holding initdb, pg_ctl and postgres: PATH first, then the usual places."""
    on_path = shutil.which("initdb")
    candidates = [Path(on_path).resolve().parent] if on_path else []
    for pattern in SEARCH_GLOBS:
        candidates += [Path(found) for found in sorted(glob.glob(pattern), reverse=True)]
    for directory in candidates:
        if all((directory / tool).is_file() for tool in SERVER_TOOLS):
            return directory
    pytest.fail(
        "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found on PATH or in "
        f"{', '.join(SEARCH_GLOBS)}: run `make system-deps`"
    )


def _unprivileged_user() -> str | None:
    """Who runs the server when we are root (initdb refuses root); None when we are not."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    pytest.fail("running as root and neither a `postgres` nor a `nobody` user exists")


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    bin_dir, user = _server_bin_dir(), _unprivileged_user()
    # Not under pytest's tmp dir: as root that is mode 0700, which the server's user cannot enter.
    root = Path(tempfile.mkdtemp(prefix="batch-pg-"))
    data, port = root / "data", free_port()
    as_user = ["runuser", "-u", user, "--"] if user else []
    if user:
        entry = pwd.getpwnam(user)
        os.chown(root, entry.pw_uid, entry.pw_gid)

    def run(*command: str, check: bool = True) -> None:
        subprocess.run([*as_user, *command], check=check, capture_output=True, text=True)

    pg_ctl, log = str(bin_dir / "pg_ctl"), root / "log"
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c fsync=off"
    try:
        run(str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8")
        run(pg_ctl, "start", "-w", "-D", str(data), "-l", str(log), "-o", options)
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    except subprocess.CalledProcessError as error:
        server_log = log.read_text() if log.exists() else ""
        pytest.fail(f"PostgreSQL did not start: {error.cmd}: {error.stderr}\n{server_log}")
    finally:
        # Also after a failed start: a server that came up too late must not outlive the tests.
        if (data / "postmaster.pid").exists():
            run(pg_ctl, "stop", "-m", "fast", "-w", "-D", str(data), check=False)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> BatchModel:
    return load_model_dir(export_tiny_model(tmp_path_factory.mktemp("model")))


@pytest.fixture
def engine(postgres_url: str) -> Iterator[Engine]:
    engine = open_database(postgres_url)
    yield engine
    engine.dispose()


@pytest.fixture
def table_name() -> str:
    """A table of its own per test: the server is shared by the session."""
    return f"predictions_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def csv_file(tmp_path: Path) -> Path:
    path = tmp_path / "input.csv"
    input_frame(ROWS).to_csv(path, index=False)
    return path


def _row_indexes(engine: Engine, name: str) -> list[int]:
    query = select(column("row_index", BigInteger)).select_from(table(name)).order_by("row_index")
    with engine.connect() as connection:
        return [int(index) for index in connection.scalars(query)]


def test_rerunning_against_postgres_adds_no_rows(
    csv_file: Path, model: BatchModel, engine: Engine, table_name: str
) -> None:
    score(open_input(csv_file), model, engine, table_name, chunk_rows=CHUNK)
    again = score(open_input(csv_file), model, engine, table_name, chunk_rows=CHUNK)
    assert again.scored == 0
    assert _row_indexes(engine, table_name) == list(range(ROWS))


def test_an_interrupted_run_against_postgres_resumes_to_one_row_per_input_row(
    csv_file: Path, model: BatchModel, engine: Engine, table_name: str
) -> None:
    def stop(progress: Progress) -> None:
        if progress.stored >= 2 * CHUNK:
            raise SimulatedKillError

    with pytest.raises(SimulatedKillError):
        score(open_input(csv_file), model, engine, table_name, chunk_rows=CHUNK, on_chunk=stop)
    assert len(_row_indexes(engine, table_name)) == 2 * CHUNK
    resumed = score(open_input(csv_file), model, engine, table_name, chunk_rows=CHUNK)
    assert (resumed.already_stored, resumed.scored) == (2 * CHUNK, ROWS - 2 * CHUNK)
    assert _row_indexes(engine, table_name) == list(range(ROWS))


def test_postgres_stores_the_same_predictions_as_sqlite(
    csv_file: Path, model: BatchModel, engine: Engine, table_name: str, tmp_path: Path
) -> None:
    sqlite = create_engine(f"sqlite:///{tmp_path / 'predictions.db'}")
    for target in (engine, sqlite):
        score(open_input(csv_file), model, target, table_name, chunk_rows=CHUNK)
    query = f"SELECT * FROM {table_name} ORDER BY row_index"
    frames = [pd.read_sql(query, target).drop(columns="scored_at") for target in (engine, sqlite)]
    pd.testing.assert_frame_equal(*frames)


def test_postgres_column_comments_give_each_probability_column_its_label(
    csv_file: Path, model: BatchModel, engine: Engine, table_name: str
) -> None:
    score(open_input(csv_file), model, engine, table_name, chunk_rows=CHUNK)
    entries = inspect(engine).get_columns(table_name)
    comments = {entry["name"]: entry["comment"] for entry in entries}
    for label, name in probability_columns(model.labels).items():
        assert comments[name] == f"probability of class {label}"
