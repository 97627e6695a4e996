"""Markdown pieces the PR report and the model card share: marks, numbers, tables.

Every number is formatted here, so the report and the card print the same value the same way,
and a column of numbers is right-aligned wherever it appears.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from decimal import Decimal

PASS, FAIL, SKIP, WARN = "✅", "❌", "⚪", "⚠️"
NONE = "—"

NUMBER = re.compile(
    r"^(\*\*)?[+\-▲▼=≤≥]? ?[0-9][0-9,.]*(\*\*)?( ?(%|ms|µs|KiB|x|req/s))?"
    r"( ± [0-9.]+| \[[+\-0-9., to]+\])?$"
)


def mark(passed: object) -> str:
    return PASS if passed else FAIL


def cell(value: object) -> str:
    """Table-safe text: a `|` would end the cell, a newline the row."""
    return str(value).replace("|", "\\|").replace("\n", " ")


def fixed(value: float | None, digits: int = 4) -> str:
    return NONE if value is None else f"{value:.{digits}f}"


def signed(value: float | None) -> str:
    return NONE if value is None else f"{value:+.4f}"


def sig(value: float | None) -> str:
    """4 significant digits without exponent notation (Mermaid cannot read `1e-05`)."""
    if value is None:
        return NONE
    return format(Decimal(f"{value:.4g}").normalize(), "f")


def count(value: float | None) -> str:
    """Integers with thousands separators, other numbers to 4 significant digits."""
    if isinstance(value, int):
        return f"{value:,}"
    return sig(value)


def percent(value: float | None, digits: int = 2) -> str:
    return NONE if value is None else f"{value:.{digits}%}"


def ms(value: float | None) -> str:
    """In-process latencies: milliseconds with 4 decimals, the same in every row."""
    return NONE if value is None else f"{value:.4f} ms"


def names(items: Iterable[str]) -> str:
    """`a`, `b`, `c`: names as code, comma-separated."""
    return ", ".join(f"`{name}`" for name in items)


def _numeric(cells: Sequence[str]) -> bool:
    """A column of numbers (dashes aside) is right-aligned, so digits line up."""
    filled = [text for text in cells if text not in ("", NONE)]
    return bool(filled) and all(NUMBER.match(text) for text in filled)


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    """A GFM table: every cell escaped, numeric columns right-aligned."""
    cells = [[cell(value) for value in row] for row in rows]
    columns = [[row[i] for row in cells if i < len(row)] for i in range(len(header))]
    rule = "|" + "".join("---:|" if _numeric(column) else "---|" for column in columns)
    lines = ["| " + " | ".join(cell(name) for name in header) + " |", rule]
    return lines + ["| " + " | ".join(row) + " |" for row in cells]


def collapsible(summary: str, blocks: Sequence[Sequence[str]], is_open: bool) -> list[str]:
    """A <details> element holding `blocks`, each after a blank line."""
    lines = ["<details open>" if is_open else "<details>", f"<summary>{summary}</summary>"]
    for block in blocks:
        lines += ["", *block]
    return [*lines, "", "</details>"]
