"""The predictions table: its SQL-safe columns, created or checked, and idempotent inserts."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Double,
    Engine,
    Insert,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    func,
    inspect,
    make_url,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from batch.problems import BatchError

DEFAULT_DB = "sqlite:///predictions.db"
DEFAULT_TABLE = "predictions"
# The primary key. Version before row index, so "rows stored for this input and model" is an
# index range scan.
KEY = ("input_sha256", "model_version", "row_index")
# Dialects whose INSERT ... ON CONFLICT DO NOTHING SQLAlchemy writes for us.
DIALECTS = ("sqlite", "postgresql")
PROBABILITY_PREFIX = "p_"
MAX_COLUMN_NAME = 63  # PostgreSQL cuts longer identifiers


def open_database(url: str) -> Engine:
    """An engine whose URL parses, whose driver is installed and which accepts a connection."""
    try:
        shown = make_url(url).render_as_string(hide_password=True)
    except SQLAlchemyError as error:
        raise BatchError(f"--db {url!r}: not a database URL ({error})") from error
    try:
        engine = create_engine(url)
    except ImportError as error:
        raise BatchError(f"{shown}: the database driver is not installed: {error}") from error
    except SQLAlchemyError as error:
        raise BatchError(f"{shown}: not a usable database URL: {error}") from error
    if engine.dialect.name not in DIALECTS:
        raise BatchError(f"{shown}: only {' and '.join(DIALECTS)} databases are supported")
    try:
        with engine.connect():
            pass
    except SQLAlchemyError as error:
        raise BatchError(f"{shown}: cannot connect: {error}") from error
    return engine


def probability_columns(labels: Sequence[str]) -> dict[str, str]:
    """label -> its SQL-safe probability column (the rule is in the module docstring)."""
    columns: dict[str, str] = {}
    for index, label in enumerate(labels):
        ascii_text = unicodedata.normalize("NFKD", label).encode("ascii", "ignore").decode()
        slug = re.sub(r"[^a-z0-9]+", "_", ascii_text.lower()).strip("_")
        base = PROBABILITY_PREFIX + slug if slug else PROBABILITY_PREFIX.rstrip("_")
        name, tries = (base[:MAX_COLUMN_NAME] if slug else ""), 0
        while not name or name in columns.values():
            tail = f"_{index}" + (f"_{tries}" if tries else "")
            name, tries = base[: MAX_COLUMN_NAME - len(tail)] + tail, tries + 1
        columns[label] = name
    return columns


def predictions_table(name: str, labels: Sequence[str]) -> Table:
    """One row per input row and model: the label, a probability column per class, and when."""
    return Table(
        name,
        MetaData(),
        Column("input_sha256", String(64), primary_key=True),
        Column("model_version", String(128), primary_key=True),
        Column("row_index", BigInteger, primary_key=True, autoincrement=False),
        Column("label", Text, nullable=False),
        *(
            Column(column, Double, nullable=False, comment=f"probability of class {label}")
            for label, column in probability_columns(labels).items()
        ),
        Column("scored_at", DateTime(timezone=True), nullable=False),
    )


def ensure_table(engine: Engine, table: Table) -> None:
    """Create the table if missing; refuse one that lacks a column we write (other labels)."""
    table.create(engine, checkfirst=True)
    present = {column["name"] for column in inspect(engine).get_columns(table.name)}
    if missing := [column.name for column in table.columns if column.name not in present]:
        raise BatchError(
            f"table {table.name} exists without columns {missing}: "
            "it holds another model's labels; pass --table with a new name"
        )


def stored_prefix(engine: Engine, table: Table, input_sha256: str, version: str) -> int:
    """How many leading rows are stored: chunks commit in order, so stored rows are a prefix."""
    query = select(func.count(), func.max(table.c.row_index)).where(
        table.c.input_sha256 == input_sha256, table.c.model_version == version
    )
    with engine.connect() as connection:
        count, highest = connection.execute(query).one()
    # A gap (rows deleted by hand) means we cannot trust the count: score it all again and let
    # ON CONFLICT DO NOTHING drop what is already there.
    return int(count) if highest is not None and highest == count - 1 else 0


def insert_ignoring_duplicates(dialect: str, table: Table) -> Insert:
    """INSERT ... ON CONFLICT DO NOTHING, stamped with the database's clock."""
    if dialect == "sqlite":
        insert: Insert = sqlite.insert(table).on_conflict_do_nothing(index_elements=list(KEY))
    elif dialect == "postgresql":
        insert = postgresql.insert(table).on_conflict_do_nothing(index_elements=list(KEY))
    else:
        raise BatchError(f"{dialect}: only {' and '.join(DIALECTS)} databases are supported")
    # In SQL rather than one bound datetime per row: converting 50,000 identical datetimes costs
    # more than the model. PostgreSQL's now() is the start of the chunk's transaction.
    return insert.values(scored_at=func.current_timestamp())
