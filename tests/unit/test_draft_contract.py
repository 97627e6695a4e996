"""`make contract` drafts a contract that its own CSV passes, for tables of every shape, edits
dvc.yaml and params.yaml in two places only, and writes nothing for a CSV it cannot use."""

from __future__ import annotations

import difflib
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from model.contract import Contract
from model.draft_contract import (
    main,
    model_name,
    point_dvc_yaml,
    update_params,
    widen,
)
from model.params import Params
from model.validate import find_violations, read_raw
from tests.tables import REPO_ROOT, mixed_frame

LABEL = "Outcome Class"  # mixed_frame's label


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project root with copies of the real dvc.yaml and params.yaml, and data/raw/."""
    root = tmp_path / "project"
    (root / "data" / "raw").mkdir(parents=True)
    for name in ("dvc.yaml", "params.yaml"):
        shutil.copyfile(REPO_ROOT / name, root / name)
    return root


def _draft(root: Path, frame: pd.DataFrame, label: str, name: str = "table.csv") -> Contract:
    """Write the frame as data/raw/<name>, run the command, and load the contract it wrote."""
    csv = root / "data" / "raw" / name
    frame.to_csv(csv, index=False)
    assert main([str(csv), f"--label={label}", "--root", str(root)]) == 0
    return Contract.load(root / "data" / "contract.yaml")


def _violations(root: Path, contract: Contract, name: str = "table.csv") -> list[Any]:
    frame = read_raw(root / "data" / "raw" / name, contract)
    assert isinstance(frame, pd.DataFrame)
    return find_violations(frame, contract)


def _kinds(contract: Contract) -> dict[str, str]:
    return {feature.name: feature.kind for feature in contract.features}


# --- drafts of real and generated tables ---------------------------------------------------


def test_mixed_table_gets_a_kind_per_column(project: Path) -> None:
    """Numbers, strings and True/False become numeric, categorical and boolean features."""
    contract = _draft(project, mixed_frame(), LABEL)
    assert _kinds(contract) == {
        "Size (cm)": "numeric",
        "weight.kg": "numeric",
        "count": "numeric",
        "Région": "categorical",
        "shape/type": "categorical",
        "Is Active": "boolean",
    }
    count = contract.feature("count")
    assert count.kind == "numeric"
    assert count.dtype == "int64"


def test_mixed_table_nulls_are_nullable_with_the_default_filling_written_out(
    project: Path,
) -> None:
    contract = _draft(project, mixed_frame(), LABEL)
    impute = {f.name: f.impute for f in contract.features if f.nullable}
    assert impute == {
        "weight.kg": "median",
        "Région": "missing",
        "shape/type": "missing",
        "Is Active": "most_frequent",
    }


def test_mixed_table_id_column_is_ignored_and_categories_listed(project: Path) -> None:
    contract = _draft(project, mixed_frame(), LABEL)
    assert contract.ignore == ("row id",)
    region = contract.feature("Région")
    assert region.kind == "categorical"
    assert region.values == ("east", "north", "south")
    assert region.unseen == "reject"


def test_three_classes_are_sorted_and_have_no_positive(project: Path) -> None:
    contract = _draft(project, mixed_frame(), LABEL)
    assert contract.label.values == ("blue/green", "red.0", "ämber")
    assert contract.label.positive is None


def test_mixed_table_passes_its_own_draft(project: Path) -> None:
    contract = _draft(project, mixed_frame(), LABEL)
    assert _violations(project, contract) == []


def test_numeric_ranges_contain_the_data_with_a_margin(project: Path) -> None:
    frame = mixed_frame()
    contract = _draft(project, frame, LABEL)
    size = contract.feature("Size (cm)")
    assert size.kind == "numeric"
    assert size.min is not None
    assert size.max is not None
    width = frame["Size (cm)"].max() - frame["Size (cm)"].min()
    assert size.min <= frame["Size (cm)"].min() - 0.1 * width
    assert size.max >= frame["Size (cm)"].max() + 0.1 * width


@pytest.mark.parametrize(
    ("low", "high", "integer", "expected"),
    [
        (32.1, 59.6, False, (29.0, 63.0)),  # margin 2.75: rounded out to whole units
        (2700.0, 6300.0, False, (2300.0, 6700.0)),
        (-27.01854, -23.78767, False, (-27.4, -23.4)),
        (1.0, 152.0, True, (0.0, 170.0)),  # no negatives in the data: none in the range
        (0.0, 3.0, True, (0.0, 4.0)),
    ],
)
def test_ranges_widen_by_a_tenth_and_round_outwards(
    low: float, high: float, integer: bool, expected: tuple[float, float]
) -> None:
    assert widen(low, high, integer) == expected


@pytest.fixture
def penguins() -> Any:
    return pytest.importorskip("palmerpenguins")


def test_penguins_pass_their_own_draft(project: Path, penguins: Any) -> None:
    """Strings with nulls, numbers with nulls, an integer year, three classes."""
    frame = penguins.load_penguins()
    contract = _draft(project, frame, "species", "penguins.csv")
    assert _kinds(contract)["island"] == "categorical"
    sex = contract.feature("sex")
    assert sex.nullable
    assert sex.impute == "missing"
    assert contract.label.values == tuple(sorted(frame["species"].unique()))
    assert _violations(project, contract, "penguins.csv") == []


def test_raw_penguins_ignore_ids_dates_free_text_and_constants(
    project: Path, penguins: Any
) -> None:
    """Odd column names, an id, a date, comments, constant columns and a Yes/No column."""
    contract = _draft(project, penguins.load_penguins_raw(), "Species", "penguins_raw.csv")
    assert set(contract.ignore) == {"Region", "Stage", "Individual ID", "Date Egg", "Comments"}
    assert _kinds(contract)["Clutch Completion"] == "boolean"
    assert _kinds(contract)["Delta 15 N (o/oo)"] == "numeric"
    assert _violations(project, contract, "penguins_raw.csv") == []


def test_ignored_columns_carry_their_reason_in_the_file(project: Path, penguins: Any) -> None:
    _draft(project, penguins.load_penguins_raw(), "Species", "penguins_raw.csv")
    lines = (project / "data" / "contract.yaml").read_text().splitlines()
    [date] = [line for line in lines if line.strip().startswith("- Date Egg")]
    assert "# dates or times" in date


def test_wine_passes_its_own_draft(project: Path) -> None:
    from sklearn.datasets import load_wine

    frame = load_wine(as_frame=True).frame
    contract = _draft(project, frame, "target", "wine.csv")
    assert set(_kinds(contract).values()) == {"numeric"}
    assert len(contract.features) == 13
    assert contract.label.values == ("0", "1", "2")
    assert _violations(project, contract, "wine.csv") == []


def test_binary_label_names_the_second_class_positive_and_proposes_directions(
    project: Path, penguins: Any
) -> None:
    frame = penguins.load_penguins().dropna(subset=["sex"])
    contract = _draft(project, frame, "sex", "penguins_sex.csv")
    assert contract.label.values == ("female", "male")
    assert contract.label.positive == "male"
    params = Params.load(project / "params.yaml")
    directional = params.gate.behavior.directional
    assert 1 <= len(directional) <= 2
    for name, effect in directional.items():
        assert contract.feature(name).kind == "numeric"
        r = frame[name].corr((frame["sex"] == "male").astype(float))
        assert effect == ("increases" if r > 0 else "decreases")
        assert abs(r) > 0.3
    assert _violations(project, contract, "penguins_sex.csv") == []


def test_multiclass_label_empties_the_directional_checks(project: Path) -> None:
    _draft(project, mixed_frame(), LABEL)
    assert Params.load(project / "params.yaml").gate.behavior.directional == {}


def test_model_name_is_a_slug_of_the_file_name(project: Path) -> None:
    _draft(project, mixed_frame(), LABEL, "Région_2024-sales.csv")
    assert Params.load(project / "params.yaml").registry.model_name == (
        "region-2024-sales-classifier"
    )
    assert model_name("!!!") == "table-classifier"


def test_names_and_values_yaml_would_misread_are_quoted(project: Path) -> None:
    """Column names and categories like `yes`, `null`, `1.0`, `a: b` or `#x` survive the file."""
    rng = np.random.default_rng(1)
    rows = 60
    odd = ["yes", "null", "1.0", "a: b", "#x", "- dash", "on", "2007-11-11 note"]
    frame = pd.DataFrame({name: rng.normal(size=rows) for name in odd})
    frame["Ünïcode / spaces.and dots"] = rng.choice(["yes", "no", "maybe", "~"], rows)
    frame["label: y"] = rng.choice(["true", "false", "NO"], rows)
    contract = _draft(project, frame, "label: y")
    assert set(contract.feature_names) == {*odd, "Ünïcode / spaces.and dots"}
    assert contract.feature("Ünïcode / spaces.and dots").kind == "categorical"
    assert set(contract.label.values) == {"true", "false", "NO"}
    assert _violations(project, contract) == []


def test_zero_one_and_yes_no_columns_are_boolean(project: Path) -> None:
    rng = np.random.default_rng(2)
    frame = mixed_frame()
    frame["flag"] = rng.integers(0, 2, len(frame))
    frame["answer"] = rng.choice(["Yes", "No"], len(frame))
    contract = _draft(project, frame, LABEL)
    assert _kinds(contract)["flag"] == _kinds(contract)["answer"] == "boolean"
    assert _violations(project, contract) == []


_NAME = st.text(
    st.characters(exclude_categories=("Cs", "Cc", "Zl", "Zp")), min_size=1, max_size=16
).filter(
    lambda name: (
        name == name.strip()
        and not name.startswith("Unnamed")  # pandas' name for a blank header
        and not any(word in name.lower() for word in ("id", "key"))
    )  # named like an id: ignored
)


_KINDS = ["int", "text", "yes/no", "float", "0/1", "True/False", "date", "id", "prose", "constant"]


def _column(kind: str, rows: int, rng: np.random.Generator, words: list[str]) -> pd.Series:
    if kind == "int":
        return pd.Series(rng.integers(-50, 50, rows), dtype=object)
    if kind == "text":
        return pd.Series(rng.choice([f"v {word}" for word in words], rows), dtype=object)
    if kind in ("yes/no", "0/1", "True/False"):
        return pd.Series(rng.choice(kind.split("/"), rows), dtype=object)
    if kind == "date":
        days = rng.integers(0, 3000, rows)
        return pd.Series(pd.Timestamp("2001-02-03") + pd.to_timedelta(days, unit="D"))
    if kind == "id":
        return pd.Series([f"{words[0]}-{i:05d}" for i in rng.permutation(rows)], dtype=object)
    if kind == "prose":
        return pd.Series([" ".join(rng.choice(words, 6)) for _ in range(rows)], dtype=object)
    if kind == "constant":
        return pd.Series([words[0]] * rows, dtype=object)
    return pd.Series(rng.uniform(-1, 1, rows), dtype=object)


@st.composite
def tables(draw: st.DrawFn) -> tuple[pd.DataFrame, str, dict[str, str]]:
    """Any mix of column kinds (numbers, categories, booleans, dates, ids, prose, constants),
    nulls anywhere, odd names, and a label of 2 to 4 classes of at least 5 rows each; with the
    kind each column was made as."""
    classes = draw(st.integers(2, 4))
    rows = draw(st.integers(5 * classes, 80).filter(lambda n: n >= 20))
    kinds = draw(st.lists(st.sampled_from(_KINDS), max_size=6))
    names = draw(st.lists(_NAME, min_size=len(kinds) + 2, max_size=len(kinds) + 2, unique=True))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    columns: dict[str, Any] = {names[0]: rng.normal(size=rows) * draw(st.floats(1e-3, 1e6))}
    made = {names[0]: "float"} | dict(zip(names[1:], kinds, strict=False))
    for name, kind in zip(names[1:], kinds, strict=False):
        words = draw(st.lists(_NAME, min_size=2, max_size=6, unique=True))
        column = _column(kind, rows, rng, words)
        if draw(st.booleans()):
            column[rng.random(rows) < 0.2] = None
        columns[name] = column
    label = names[-1]
    numbered = draw(st.booleans())  # classes 1, 2, 10 or words
    labels = [str(10**i) if numbered else f"c{i} {'abcd'[i]}" for i in range(classes)]
    columns[label] = ([*labels] * rows)[:rows]
    return pd.DataFrame(columns), label, made


_EXPECTED = {"int": "numeric", "float": "numeric", "text": "categorical"} | dict.fromkeys(
    ["yes/no", "0/1", "True/False"], "boolean"
)


@given(table=tables())
def test_any_table_passes_its_own_draft(table: tuple[pd.DataFrame, str, dict[str, str]]) -> None:
    """Every column gets the kind it was made as (dates, ids, prose, constants ignored), and the
    CSV passes the contract drafted from it."""
    frame, label, made = table
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "data" / "raw").mkdir(parents=True)
        for name in ("dvc.yaml", "params.yaml"):
            shutil.copyfile(REPO_ROOT / name, root / name)
        contract = _draft(root, frame, label)
        assert set(contract.label.values) == set(frame[label])
        kinds = _kinds(contract) | dict.fromkeys(contract.ignore, "ignore")
        assert kinds == {name: _EXPECTED.get(kind, "ignore") for name, kind in made.items()}
        assert _violations(root, contract) == []


# --- dvc.yaml and params.yaml --------------------------------------------------------------


def _changed_lines(before: str, after: str) -> list[str]:
    return [
        line
        for line in difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="")
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]


def test_dvc_yaml_changes_only_the_raw_data_line(project: Path) -> None:
    before = (project / "dvc.yaml").read_text()
    _draft(project, mixed_frame(), LABEL)
    after = (project / "dvc.yaml").read_text()
    [removed, added] = _changed_lines(before, after)
    assert removed.startswith("-")
    assert "raw_data:" in removed
    assert added == "+  - raw_data: data/raw/table.csv"
    assert yaml.safe_load(after)["vars"] == [{"raw_data": "data/raw/table.csv"}]


def test_raw_data_edit_keeps_a_trailing_comment() -> None:
    text = "vars:\n  - raw_data: old.csv   # the table\nstages: {}\n"
    assert point_dvc_yaml(text, "data/raw/new.csv") == (
        "vars:\n  - raw_data: data/raw/new.csv   # the table\nstages: {}\n"
    )


def test_params_yaml_changes_only_the_directional_checks_and_model_name(project: Path) -> None:
    before = (project / "params.yaml").read_text()
    old = Params.load(project / "params.yaml")
    _draft(project, mixed_frame(), LABEL)
    after = (project / "params.yaml").read_text()
    changed = [line[1:].strip() for line in _changed_lines(before, after)]
    old_entries = {f"{name}: {value}" for name, value in old.gate.behavior.directional.items()}
    assert set(changed) - old_entries == {
        f"model_name: {old.registry.model_name}",
        "model_name: table-classifier",
        *(line.strip() for line in before.splitlines() if line.strip().startswith("directional:")),
        *(line.strip() for line in after.splitlines() if line.strip().startswith("directional:")),
    }
    assert "directional: {}" in after


def test_params_edit_keeps_the_comment_of_the_directional_key(project: Path) -> None:
    text = (project / "params.yaml").read_text()
    [line] = [line for line in text.splitlines() if line.strip().startswith("directional:")]
    comment = line[line.index("#") :]
    edited = update_params(text, {"x y": "increases"}, "x-classifier")
    [new_line] = [line for line in edited.splitlines() if line.strip().startswith("directional:")]
    assert new_line.endswith(comment)
    assert "      x y: increases" in edited.splitlines()


# --- CSVs it refuses -----------------------------------------------------------------------


def _rows(count: int, label: Callable[[int], str] = lambda i: "ab"[i % 2]) -> str:
    return "x,z,y\n" + "".join(f"{i},{i % 7},{label(i)}\n" for i in range(count))


REFUSALS: dict[str, tuple[bytes | None, str, str]] = {
    # case: (CSV bytes, or None for no file; label; words the message must contain)
    "no_such_file": (None, "y", "no such file"),
    "empty_file": (b"", "y", "empty"),
    "header_only": (b"x,z,y\n", "y", "no data rows"),
    "no_label_column": (_rows(40).encode(), "Y", "the columns are: ['x', 'z', 'y']"),
    "single_class": (_rows(40, lambda i: "a").encode(), "y", "one class"),
    "label_with_nulls": (
        _rows(40, lambda i: "" if i < 3 else "ab"[i % 2]).encode(),
        "y",
        "3 of 40",
    ),
    "ragged_rows": (_rows(40).encode() + b"1,2,a,9\n", "y", "ragged"),
    "binary_file": (b"PK\x03\x04\x00\x00" + bytes(range(256)) * 4, "y", "binary"),
    "not_utf8": (_rows(40).replace(",", ",é", 1).encode("latin-1"), "y", "UTF-8"),
    "too_few_rows": (_rows(12).encode(), "y", "12 rows"),
    "rare_class": (_rows(40, lambda i: "c" if i == 0 else "ab"[i % 2]).encode(), "y", "fewer than"),
    "repeated_column_names": (b"x,x,y\n" + b"".join(b"1,2,a\n" for _ in range(40)), "y", "twice"),
    "no_usable_feature": (
        ("x,y\n" + "".join(f"{i},{'ab'[i % 2]}\n" for i in range(40))).encode(),
        "y",
        "no column is usable",
    ),
}


def _snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and not path.name.endswith(".csv")
    }


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_an_unusable_csv_is_refused_and_nothing_is_written(
    project: Path, case: str, capsys: pytest.CaptureFixture[str]
) -> None:
    content, label, words = REFUSALS[case]
    (project / "data" / "contract.yaml").write_text("the previous contract\n")
    csv = project / "data" / "raw" / "table.csv"
    if content is not None:
        csv.write_bytes(content)
    before = _snapshot(project)
    assert main([str(csv), f"--label={label}", "--root", str(project)]) != 0
    assert _snapshot(project) == before
    error = capsys.readouterr().err
    assert words in error
    assert "Nothing was written" in error


def test_a_csv_outside_the_project_is_refused(project: Path, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere.csv"
    mixed_frame().to_csv(outside, index=False)
    before = _snapshot(project)
    assert main([str(outside), f"--label={LABEL}", "--root", str(project)]) != 0
    assert _snapshot(project) == before


def test_a_path_the_stage_commands_would_split_is_refused(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv = project / "data" / "raw" / "my table.csv"
    mixed_frame().to_csv(csv, index=False)
    before = _snapshot(project)
    assert main([str(csv), f"--label={LABEL}", "--root", str(project)]) != 0
    assert _snapshot(project) == before
    assert "rename" in capsys.readouterr().err
