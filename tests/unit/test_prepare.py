"""The split is deterministic, disjoint, complete and stratified; scaling uses train rows only."""

import numpy as np
import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from model.contract import Contract
from model.params import PrepareParams
from model.prepare import fit_schema, split

PARAMS = PrepareParams(seed=0, test_fraction=0.2, val_fraction=0.15)


@given(seed=st.integers(0, 10_000))
def test_split_is_disjoint_complete_and_stratified(raw_frame: pd.DataFrame, seed: int) -> None:
    splits = split(raw_frame, "diagnosis", PARAMS.model_copy(update={"seed": seed}))
    parts = [splits.train, splits.val, splits.test]
    indices = np.concatenate([part.index.to_numpy() for part in parts])
    assert sorted(indices) == list(raw_frame.index)
    overall = raw_frame["diagnosis"].value_counts(normalize=True)
    for part in parts:
        shares = part["diagnosis"].value_counts(normalize=True)
        assert np.allclose(shares[overall.index], overall, atol=0.03)


def test_split_is_deterministic(raw_frame: pd.DataFrame) -> None:
    first, second = split(raw_frame, "diagnosis", PARAMS), split(raw_frame, "diagnosis", PARAMS)
    pd.testing.assert_frame_equal(first.test, second.test)


def test_split_sizes_follow_params(raw_frame: pd.DataFrame) -> None:
    splits = split(raw_frame, "diagnosis", PARAMS)
    assert abs(len(splits.test) - 0.2 * len(raw_frame)) <= 1
    assert abs(len(splits.val) - 0.15 * len(raw_frame)) <= 1


def test_scaling_statistics_come_from_train_rows_only(
    raw_frame: pd.DataFrame, contract: Contract
) -> None:
    splits = split(raw_frame, "diagnosis", PARAMS)
    schema = fit_schema(splits.train, contract)
    assert schema.mean[0] == splits.train["mean_radius"].mean()
    assert schema.labels == contract.label.values


def test_constant_feature_gets_unit_scale(raw_frame: pd.DataFrame, contract: Contract) -> None:
    schema = fit_schema(raw_frame.assign(mean_radius=5.0), contract)
    assert schema.std[0] == 1.0
