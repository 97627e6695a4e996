"""What a batch run cannot take, said so the user can fix it: the error, and the rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

EXAMPLE_ROWS = 5  # rows named per problem in an error
NULL = "null"  # the problem of a null in a column that is not nullable


class BatchError(RuntimeError):
    """A problem the user can fix; the message says what and where."""


@dataclass
class RowProblems:
    """What the model cannot take, per column and problem: how often, and the first rows."""

    found: dict[tuple[str, str], tuple[int, list[tuple[int, Any]]]] = field(default_factory=dict)

    def add(self, name: str, problem: str, mask: np.ndarray, column: pd.Series, start: int) -> None:
        if not mask.any():
            return
        count, examples = self.found.get((name, problem), (0, []))
        positions = np.flatnonzero(mask)[: EXAMPLE_ROWS - len(examples)]
        examples = examples + [(start + int(i), column.iloc[i]) for i in positions]
        self.found[(name, problem)] = (count + int(mask.sum()), examples)

    def __bool__(self) -> bool:
        return bool(self.found)

    def describe(self) -> str:
        """One line per column and problem, with example rows (and values, but for nulls)."""
        lines = []
        for (name, problem), (count, examples) in self.found.items():
            if problem == NULL:
                shown = ", ".join(str(row) for row, _ in examples)
                lines.append(f"  {name!r}: {count} null(s), and it is not nullable; rows {shown}")
            else:
                shown = ", ".join(f"row {row} {value!r}" for row, value in examples)
                lines.append(f"  {name!r}: {count} {problem}; {shown}")
        return "\n".join(lines)
