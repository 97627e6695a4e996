"""Feature arrays follow the schema's order, whatever the file's column order."""

import numpy as np
import pandas as pd
import pytest

from model.features import FeatureSchema, frame_to_arrays

SCHEMA = FeatureSchema(
    feature_names=("a", "b"),
    label_name="y",
    labels=("no", "yes"),
    positive_label="yes",
    mean=(0.0, 0.0),
    std=(1.0, 1.0),
)


def test_columns_are_taken_in_schema_order() -> None:
    frame = pd.DataFrame({"y": ["yes", "no"], "b": [2.0, 4.0], "a": [1.0, 3.0]})
    features, labels = frame_to_arrays(frame, SCHEMA)
    assert features.dtype == np.float32
    assert features.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert labels.tolist() == [1, 0]


def test_unknown_label_is_refused() -> None:
    frame = pd.DataFrame({"a": [1.0], "b": [2.0], "y": ["maybe"]})
    with pytest.raises(ValueError, match="labels outside"):
        frame_to_arrays(frame, SCHEMA)


def test_schema_refuses_non_positive_scale() -> None:
    with pytest.raises(ValueError, match="positive"):
        FeatureSchema.model_validate(SCHEMA.model_dump() | {"std": (1.0, 0.0)})
