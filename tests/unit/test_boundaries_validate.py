"""The table limits of the data contract (`table:` in data/contract.yaml, the source of truth for
them) decide at their exact value: a table exactly at a limit passes, the nearest table past it
fails. Run on the project's contract and on the generated mixed one; columns are read from the
contract, never named."""

from __future__ import annotations

import pandas as pd
import pytest

from model.contract import Contract
from model.validate import table_violations
from tests.conftest import CONTRACT
from tests.tables import mixed_contract

CONTRACTS = {"project": Contract.load(CONTRACT), "mixed": mixed_contract()}


@pytest.fixture(params=sorted(CONTRACTS))
def contract(request: pytest.FixtureRequest) -> Contract:
    return CONTRACTS[str(request.param)]


def _table(contract: Contract, labels: list[str], duplicates: int = 0) -> pd.DataFrame:
    """Distinct rows (every model column numbered), the label column as given; the last
    `duplicates` rows repeat the first row exactly."""
    rows = len(labels)
    frame = pd.DataFrame(
        {name: [f"{name}-{index}" for index in range(rows)] for name in contract.feature_names}
    )
    frame[contract.label.name] = labels
    if duplicates:
        frame.iloc[rows - duplicates :] = frame.iloc[[0] * duplicates].to_numpy()
    return frame


def _balanced(contract: Contract, rows: int) -> list[str]:
    values = list(contract.label.values)
    return [values[index % len(values)] for index in range(rows)]


def _rules(frame: pd.DataFrame, contract: Contract) -> set[str]:
    return {violation.rule for violation in table_violations(frame, contract)}


def test_exactly_min_rows_passes_and_one_row_fewer_fails(contract: Contract) -> None:
    minimum = contract.table.min_rows
    assert _rules(_table(contract, _balanced(contract, minimum)), contract) == set()
    assert _rules(_table(contract, _balanced(contract, minimum - 1)), contract) == {"min_rows"}
    [violation] = table_violations(_table(contract, _balanced(contract, minimum - 1)), contract)
    assert violation.message == f"{minimum - 1} rows, the contract asks for at least {minimum}"


def _exact_fraction(limit: float, at_least: int) -> tuple[int, int]:
    """(count, rows) with count / rows == limit exactly, rows >= at_least: a table can sit on
    the limit itself."""
    for rows in range(max(at_least, 1), 100_000):
        count = round(limit * rows)
        if count >= 1 and count / rows == limit:
            return count, rows
    raise AssertionError(f"no table of fewer than 100000 rows has a share of exactly {limit}")


def test_a_duplicate_share_exactly_at_the_limit_passes_and_one_more_duplicate_fails(
    contract: Contract,
) -> None:
    limit = contract.table.max_duplicate_fraction
    count, rows = _exact_fraction(limit, contract.table.min_rows)
    labels = _balanced(contract, rows)
    at_limit = _table(contract, labels, duplicates=count)
    assert at_limit.duplicated().mean() == limit  # the table sits on the limit
    assert _rules(at_limit, contract) == set()
    assert _rules(_table(contract, labels, duplicates=count - 1), contract) == set()
    over = table_violations(_table(contract, labels, duplicates=count + 1), contract)
    assert [violation.rule for violation in over] == ["max_duplicate_fraction"]
    assert over[0].failing_rows == count + 1


def test_duplicates_are_judged_on_the_contracts_columns_only(contract: Contract) -> None:
    """A column outside the contract (an id, say) does not make a repeated row unique."""
    limit = contract.table.max_duplicate_fraction
    count, rows = _exact_fraction(limit, contract.table.min_rows)
    frame = _table(contract, _balanced(contract, rows), duplicates=count + 1)
    frame["an id outside the contract"] = range(rows)
    assert "max_duplicate_fraction" in _rules(frame, contract)


def test_a_class_share_exactly_at_the_minimum_passes_and_one_row_fewer_fails(
    contract: Contract,
) -> None:
    minimum = contract.table.min_class_fraction
    rare, *others = contract.label.values
    count, rows = _exact_fraction(minimum, contract.table.min_rows + 1)

    def labels(rare_rows: int) -> list[str]:
        rest = [others[index % len(others)] for index in range(rows - rare_rows)]
        return [rare] * rare_rows + rest

    at_minimum = _table(contract, labels(count))
    assert (at_minimum[contract.label.name] == rare).mean() == minimum
    assert _rules(at_minimum, contract) == set()
    assert _rules(_table(contract, labels(count + 1)), contract) == set()
    under = table_violations(_table(contract, labels(count - 1)), contract)
    assert [violation.rule for violation in under] == ["min_class_fraction"]
    assert under[0].examples == [rare]
    assert under[0].column == contract.label.name


def test_a_class_absent_from_the_table_is_below_any_minimum(contract: Contract) -> None:
    rows = max(contract.table.min_rows, 10)
    present = contract.label.values[0]
    [violation] = table_violations(_table(contract, [present] * rows), contract)
    assert violation.rule == "min_class_fraction"
    assert set(violation.examples) == set(contract.label.values[1:])


def test_an_empty_table_fails_on_rows_only(contract: Contract) -> None:
    empty = _table(contract, [])
    assert _rules(empty, contract) == {"min_rows"}
