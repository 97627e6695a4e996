"""Request and response types of POST /predict, built from the model's raw inputs.

Validation happens here, per request and before batching, so one bad request gets its own 400
naming the row and the feature by its column name (pydantic's `loc`, e.g. ["rows", 3, "<column>"])
and never spoils a batch shared with other requests.

Each input's kind decides what a value may be: a number must be finite and fit float32 (the
graph's precision: a bigger one would become infinity and a null probability); a boolean is
true/false; a categorical is one of its categories (`unseen: reject`, a JSON schema enum) or any
short non-empty string (`unseen: other`). Nullable features accept null and may be left out;
every other feature is required, and unknown keys are refused. Column names need not be Python
identifiers, so the fields get synthetic names and the column name as alias.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal

import numpy as np
import orjson
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    create_model,
    field_serializer,
)

from model.inputs import InputLayout, RawInput

FLOAT32_MAX = float(np.finfo(np.float32).max)
MAX_CATEGORY_LENGTH = 256  # characters of an open (unseen: other) categorical value

# Strict: "1.5" (a string) and true (a bool) are not numbers; NaN and inf are refused.
Number = Annotated[float, Field(strict=True, allow_inf_nan=False, ge=-FLOAT32_MAX, le=FLOAT32_MAX)]
Boolean = Annotated[bool, Field(strict=True)]  # 1, "true" and "yes" are not booleans
# "" is how the graph spells null: a client sends null for that, never the empty string.
OpenCategory = Annotated[str, Field(strict=True, min_length=1, max_length=MAX_CATEGORY_LENGTH)]


def field_name(index: int) -> str:
    """The Python name of the index-th feature's field (the column name is its alias)."""
    return f"f{index}"


def value_type(item: RawInput) -> Any:
    """What one feature's value may be in a request."""
    kind: Any
    if item.kind == "numeric":
        kind = Number
    elif item.kind == "boolean":
        kind = Boolean
    elif item.unseen == "reject":
        kind = Literal.__getitem__(item.categories)  # an enum in the JSON schema
    else:
        kind = OpenCategory
    return kind | None if item.nullable else kind


def row_model(inputs: Sequence[RawInput]) -> type[BaseModel]:
    """One row: required features, nullable ones defaulting to null, nothing else allowed."""
    fields: dict[str, Any] = {
        field_name(index): (
            value_type(item),
            Field(default=None if item.nullable else ..., alias=item.name, title=item.name),
        )
        for index, item in enumerate(inputs)
    }
    return create_model(
        "Row",
        __config__=ConfigDict(extra="forbid", frozen=True),  # keys are column names only
        **fields,
    )


class RowSchema:
    """The row model for a model's inputs, and how its validated rows become ONNX feeds."""

    def __init__(self, inputs: Sequence[RawInput]) -> None:
        self.inputs = tuple(inputs)
        self.model = row_model(self.inputs)
        # The same layout addressed by field name: a validated row's own `__dict__` (its fields
        # in input order) feeds it as is, with no per-row copy keyed by column name.
        self._layout = InputLayout(
            [item.model_copy(update={"name": field_name(i)}) for i, item in enumerate(inputs)]
        )

    def feeds(self, rows: Sequence[BaseModel]) -> dict[str, np.ndarray]:
        """ONNX feeds for validated rows, as `InputLayout.feeds` lays out their raw values."""
        return self._layout.feeds([row.__dict__ for row in rows])

    @staticmethod
    def raw(rows: Sequence[BaseModel]) -> list[dict[str, Any]]:
        """Validated rows as {column name: value}, null as None (what the prediction log keeps)."""
        return [row.model_dump(by_alias=True) for row in rows]


def placeholder_row(inputs: Sequence[RawInput]) -> dict[str, Any]:
    """A valid row for a model that carries no examples: the API's documented sample."""
    values: dict[str, Any] = {}
    for item in inputs:
        if item.kind == "numeric":
            values[item.name] = 0.0
        elif item.kind == "boolean":
            values[item.name] = False
        else:
            values[item.name] = item.categories[0] if item.categories else None
    return values


def example_rows(metadata: Mapping[str, Any], inputs: Sequence[RawInput]) -> list[dict[str, Any]]:
    """The API's documented sample: the real rows export stored (features in input order), else
    a placeholder."""
    examples = [
        {item.name: row[item.name] for item in inputs if item.name in row}
        for row in metadata.get("examples") or []
    ]
    return examples or [placeholder_row(inputs)]


class Prediction(BaseModel):
    """The answer for one row."""

    model_config = ConfigDict(frozen=True)

    label: str
    probabilities: dict[str, float]
    model_version: str


class ModelInfo(BaseModel):
    """GET /metadata: what a client needs to call the model, and where the model came from."""

    model_version: str
    model_tag: str
    feature_names: list[str]
    inputs: list[RawInput]
    labels: list[str]
    positive_label: str | None  # two classes only
    onnx_sha256: str
    training_commit: str = "unknown"  # stamped by the package stage
    data_md5: str
    max_rows: int

    @field_serializer("inputs")
    def _as_exported(self, inputs: list[RawInput]) -> list[dict[str, Any]]:
        """Each input as models/model.json writes it: only what differs from the defaults."""
        return [item.model_dump(mode="json", exclude_defaults=True) for item in inputs]


# --- what POST /feedback takes, and what every refusal looks like ---------------------------


def feedback_model(labels: Sequence[str], max_rows: int) -> type[BaseModel]:
    """POST /feedback: a label the model knows, for a row a request can have had."""
    label: Any = Literal.__getitem__(tuple(labels))  # an enum in the JSON schema
    return create_model(
        "Feedback",
        __config__=ConfigDict(extra="forbid", frozen=True),
        request_id=(Annotated[str, Field(strict=True, min_length=1, max_length=128)], ...),
        label=(label, ...),
        row=(Annotated[int, Field(strict=True, ge=0, le=max_rows - 1)], 0),
    )


MAX_ISSUES = 20  # problems listed in an error body; `error_count` says how many there were
MAX_LOC_TEXT = 64  # characters of a key a client sent, when an error names it


class Issue(BaseModel):
    """One problem with a request: where it is (`loc`, e.g. ["rows", 3, "<column>"]) and what."""

    type: str
    loc: list[str | int]
    msg: str


class ErrorBody(BaseModel):
    """Every 4xx and 503 the service itself answers. `detail` lists the first `MAX_ISSUES`
    problems, `error_count` how many there were; a client's values are never echoed."""

    error: str
    detail: list[Issue] = []
    error_count: int = 0


def error_body(error: str, issues: Sequence[Mapping[str, Any]], count: int | None = None) -> bytes:
    """An `ErrorBody` as JSON, bounded whatever the request: the first issues, short keys."""
    detail = [
        {
            "type": issue["type"],
            "loc": [
                part[:MAX_LOC_TEXT] if isinstance(part, str) else part for part in issue["loc"]
            ],
            "msg": issue["msg"][:200],
        }
        for issue in issues[:MAX_ISSUES]
    ]
    return orjson.dumps(
        {"error": error, "detail": detail, "error_count": len(issues) if count is None else count}
    )


def validation_error_body(error: ValidationError) -> bytes:
    """A pydantic error as an `ErrorBody`: locations and messages, no inputs, no URLs."""
    count = error.error_count()
    issues = error.errors(include_context=False, include_input=False, include_url=False)
    noun = "error" if count == 1 else "errors"
    return error_body(f"{count} validation {noun} for Input", issues[:MAX_ISSUES], count)


# --- issue 20: which kind of traffic a request is --------------------------------------------

TRAFFIC_SOURCE_HEADER = "x-traffic-source"
TRAFFIC_SOURCES = frozenset({"production", "load-test", "smoke-test", "agreement", "shadow"})


def traffic_source(value: str | bytes | None) -> str:
    """The `X-Traffic-Source` a request declared; absent or unknown is production."""
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    return value if value in TRAFFIC_SOURCES else "production"
