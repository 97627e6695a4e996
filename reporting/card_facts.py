"""What the model card says by hand (model/card.yaml): intended use, users, owners, what is out
of scope, known limitations. A `TODO:` hint left in it renders as a visible gap, not a claim."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from reporting.inputs import read_yaml
from reporting.markdown import NONE

Json = dict[str, Any]
PLACEHOLDER = "TODO:"  # a card.yaml value starting with this is a hint for the team, not a fact


class CardFacts(BaseModel):
    """model/card.yaml: a typo in a key fails the stage instead of leaving a section empty."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    owners: str = Field(min_length=1)
    intended_use: str = Field(min_length=1)
    users: str = Field(min_length=1)
    out_of_scope: tuple[str, ...] = ()
    limitations: tuple[str, ...] = ()


def placeholders(facts: Mapping[str, Any]) -> list[str]:
    """The card.yaml keys still holding a `TODO:` hint."""
    found = []
    for key, value in facts.items():
        values = [value] if isinstance(value, str) else list(value or [])
        if any(str(item).strip().startswith(PLACEHOLDER) for item in values):
            found.append(key)
    return found


def fact(text: object) -> str:
    """A card.yaml value on one line; a `TODO:` hint shows as a visible gap, not as a claim."""
    words = " ".join(str(text).split())
    if words.startswith(PLACEHOLDER):
        return f"_Not written yet: {words.removeprefix(PLACEHOLDER).strip()}_"
    return words


def bullets(items: Sequence[object] | str | None) -> list[str]:
    if not items:
        return []
    if isinstance(items, str):
        return [f"- {fact(items)}"]
    return [f"- {fact(item)}" for item in items]


def intended_use(facts: Json) -> list[str]:
    lines = ["## Intended use", "", fact(facts.get("intended_use", NONE)), ""]
    lines += [
        f"- **Users**: {fact(facts.get('users', NONE))}",
        f"- **Owners**: {fact(facts.get('owners', NONE))}",
    ]
    out_of_scope = bullets(facts.get("out_of_scope"))
    return [*lines, "", "**Out of scope**:", "", *out_of_scope] if out_of_scope else lines


def read_facts(path: Path) -> Json:
    """model/card.yaml, checked; a `TODO:` hint left in it is said, not hidden."""
    facts = CardFacts.model_validate(read_yaml(path)).model_dump()
    unwritten = placeholders(facts)
    if unwritten:
        print(
            f"card: {path} still has `{PLACEHOLDER}` hints in {', '.join(unwritten)}; "
            "the card shows them as not written yet",
            file=sys.stderr,
        )
    return facts
