"""`make contract`, step 3: write the draft as commented YAML, and edit dvc.yaml and params.yaml.

Every scalar is written so that PyYAML (what the stages load with) reads it back as drafted.
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping, Sequence
from typing import Any

import yaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.representer import RoundTripRepresenter

from model.contract import ContractError
from model.draft_columns import Draft
from model.draft_table import DraftError

LINE_WIDTH = 100  # a feature longer than this on one line is written as a block


def _reads_back(text: str) -> bool:
    """Whether PyYAML (YAML 1.1, what the stages load with) reads the plain scalar as this str,
    in a block and in a flow (`{name: ...}`): `yes`, `1.0`, `null`, `2007-11-11`, `a: b` or
    `0?` must be quoted."""
    try:
        return bool(yaml.safe_load(text) == text and yaml.safe_load(f"[{text}]") == [text])
    except yaml.YAMLError:
        return False


class _Representer(RoundTripRepresenter):
    """ruamel's round-trip writer, but with scalars PyYAML reads back as written."""


def _represent_str(representer: RoundTripRepresenter, value: str) -> Any:
    style = None if _reads_back(value) else '"'
    return representer.represent_scalar("tag:yaml.org,2002:str", value, style=style)


def _represent_float(representer: RoundTripRepresenter, value: float) -> Any:
    text = repr(value)  # PyYAML needs a dot in 1.0e-05 to read it as a float
    if "e" in text and "." not in text:
        mantissa, exponent = text.split("e")
        text = f"{mantissa}.0e{exponent}"
    return representer.represent_scalar("tag:yaml.org,2002:float", text)


_Representer.add_representer(str, _represent_str)
_Representer.add_representer(float, _represent_float)


def _yaml() -> YAML:
    writer = YAML()
    writer.Representer = _Representer
    writer.width = 4096  # never wrap: _feature and _sequence choose one line or a block
    writer.indent(mapping=2, sequence=4, offset=2)
    return writer


def _dump(document: Any, writer: YAML) -> str:
    buffer = io.StringIO()
    writer.dump(document, buffer)
    return buffer.getvalue()


def _sequence(key: str, values: Sequence[Any], width: int) -> CommentedSeq:
    """`key: [a, b]` on one line when it fits in `width`, else one item per line."""
    node = CommentedSeq(values)
    node.fa.set_flow_style()
    if len(_dump({key: node}, _yaml()).rstrip("\n")) + 4 > width:
        node = CommentedSeq(values)
    return node


def _feature(spec: Mapping[str, Any], width: int) -> CommentedMap:
    """A feature on one line (`{name: x, kind: numeric, ...}`) when it fits in `width`, else a
    block."""
    flow = CommentedMap(spec)
    flow.fa.set_flow_style()
    if len(_dump(CommentedSeq([flow]), _yaml()).rstrip("\n")) <= width:
        return flow
    block = CommentedMap(spec)
    for key, value in spec.items():
        if isinstance(value, list):
            block[key] = _sequence(key, value, width)
    return block


def _comment(node: CommentedMap | CommentedSeq, comments: Mapping[Any, str], indent: int) -> None:
    """End-of-line comments, two columns after the longest of the lines they go on (an entry's
    first line)."""
    first_lines = [
        _dump({key: node[key]} if isinstance(node, CommentedMap) else [node[key]], _yaml())
        .splitlines()[0]
        .rstrip()
        for key in comments
    ]
    column = indent + 2 + max(len(line) for line in first_lines)
    for key, comment in comments.items():
        node.yaml_add_eol_comment(comment, key, column=column)


def render_contract(draft: Draft, csv_path: str) -> str:
    """The contract as commented YAML; raises ContractError if it does not read back as drafted."""
    data = draft.contract
    document = CommentedMap()
    document.yaml_set_start_comment(
        f"The data contract, drafted by `make contract` from {csv_path} ({draft.rows} rows):\n"
        "everything `validate` checks before anything else runs. Feature order = model input "
        "order.\nREVIEW before `make pipeline`: the dataset's source and licence, the positive "
        "class,\nthe category sets, the ranges (observed, widened by 10%) and the ignored columns."
    )
    document["dataset"] = CommentedMap(data["dataset"])
    document.yaml_add_eol_comment(
        "REVIEW: source and licence (the model card quotes them)", "dataset"
    )
    label = CommentedMap(data["label"])
    label["values"] = _sequence("values", label["values"], LINE_WIDTH - 45)  # room for a comment
    label_comments = {"values": "order = class index in the model's output"}
    if "positive" in label:
        label_comments["positive"] = "REVIEW: the class ROC/PR curves are drawn for"
    _comment(label, label_comments, indent=2)
    document["label"] = label
    features = CommentedSeq(_feature(spec, LINE_WIDTH) for spec in data["features"])
    notes = {
        index: f"REVIEW: {column.why}"
        for index, column in enumerate(c for c in draft.columns if c.kind != "ignore")
        if column.why
    }
    if notes:
        _comment(features, notes, indent=0)
    document["features"] = features
    if "ignore" in data:
        reasons = {column.name: column.why for column in draft.columns}
        ignore = CommentedSeq(data["ignore"])
        _comment(ignore, {i: reasons[name] for i, name in enumerate(data["ignore"])}, indent=0)
        document["ignore"] = ignore
    table = CommentedMap(data["table"])
    rarest = min(draft.class_shares, key=lambda key: draft.class_shares[key])
    _comment(
        table,
        {
            "min_rows": f"half of the {draft.rows} rows drafted from",
            "max_duplicate_fraction": (
                f"share of rows repeating an earlier one ({draft.duplicate_fraction:.1%} here)"
            ),
            "min_class_fraction": (
                f"rarest class here: {rarest} ({draft.class_shares[rarest]:.1%})"
            ),
        },
        indent=2,
    )
    document["table"] = table
    text = _dump(document, _yaml())
    try:
        same = yaml.safe_load(text) == data
    except yaml.YAMLError as error:
        raise ContractError(f"the drafted contract is not valid YAML (a bug): {error}") from None
    if not same:
        raise ContractError("the drafted contract does not read back as drafted (a bug)")
    return text


def point_dvc_yaml(text: str, raw_data: str) -> str:
    """dvc.yaml with its `- raw_data:` var naming the CSV; every other byte as it was."""
    pattern = re.compile(r"^(\s*-\s*raw_data:[ \t]*)([^#\n]*?)([ \t]+#[^\n]*)?$", re.MULTILINE)
    matches = list(pattern.finditer(text))
    if len(matches) != 1:
        raise DraftError(
            "dvc.yaml: expected one `- raw_data: <path>` line under `vars:`, found "
            f"{len(matches)}; add it and write the raw CSV's path in the stages as ${{raw_data}}"
        )
    [match] = matches
    scalar = yaml.safe_dump({"k": raw_data}, width=1000, allow_unicode=True)[3:].rstrip("\n")
    edited = text[: match.start(2)] + scalar + text[match.end(2) :]
    variables = yaml.safe_load(edited).get("vars")
    if variables != [{"raw_data": raw_data}] and {"raw_data": raw_data} not in variables:
        raise DraftError("dvc.yaml: the edited `raw_data` var does not read back (a bug)")
    return edited


def update_params(text: str, directional: Mapping[str, str], name: str) -> str:
    """params.yaml with the directional expectations and the model name replaced; comments and
    layout kept (ruamel round trip), the rest byte for byte."""
    writer = _yaml()
    writer.width = 100  # as `make tune APPLY=1` writes it
    writer.indent(mapping=2, sequence=2, offset=0)
    document = writer.load(text)
    document["gate"]["behavior"]["directional"] = CommentedMap(directional)
    document["registry"]["model_name"] = name
    return _dump(document, writer)


# --- the command ---------------------------------------------------------------------------
