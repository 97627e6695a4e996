"""The split is deterministic, disjoint, complete and stratified, for any table."""

import numpy as np
import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from model.params import PrepareParams
from model.prepare import split
from tests.conftest import Table

PARAMS = PrepareParams(seed=0, test_fraction=0.2, val_fraction=0.15)


@given(seed=st.integers(0, 10_000))
def test_split_is_disjoint_complete_and_stratified(table: Table, seed: int) -> None:
    label = table.contract.label.name
    frame = table.frame
    splits = split(frame, label, PARAMS.model_copy(update={"seed": seed}))
    parts = [splits.train, splits.val, splits.test]
    indices = np.concatenate([part.index.to_numpy() for part in parts])
    assert sorted(indices) == list(frame.index)
    overall = frame[label].value_counts(normalize=True)
    for part in parts:
        shares = part[label].value_counts(normalize=True)
        assert np.allclose(shares[overall.index], overall, atol=0.05)


def test_split_is_deterministic(table: Table) -> None:
    label = table.contract.label.name
    first, second = split(table.frame, label, PARAMS), split(table.frame, label, PARAMS)
    pd.testing.assert_frame_equal(first.test, second.test)


def test_split_sizes_follow_params(table: Table) -> None:
    splits = split(table.frame, table.contract.label.name, PARAMS)
    assert abs(len(splits.test) - 0.2 * len(table.frame)) <= 1
    assert abs(len(splits.val) - 0.15 * len(table.frame)) <= 1
