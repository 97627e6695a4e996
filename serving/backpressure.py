"""A bound on the rows a worker holds at once, so a burst gets fast 503s instead of timeouts.

Without it, every request that arrives is parsed and queued: 2,000 concurrent requests of 256
rows held gigabytes and were answered 504 after the timeout. A request is admitted only if the
worst case it can bring (`max_rows`, since its rows are unknown until its body is parsed) still
fits under the limit; once parsed, it holds only its own rows until answered. A refused request
is answered at once with 503 and `Retry-After`, having cost one body read and nothing more.

One counter per worker process, touched only from its event loop: no lock is needed.
"""

from __future__ import annotations


class RowsInFlight:
    """`admit(n)` reserves up to the limit; `resize` and `release` give rows back."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.rows = 0
        self.refused = 0

    def admit(self, rows: int) -> bool:
        if self.rows + rows > self.limit:
            self.refused += 1
            return False
        self.rows += rows
        return True

    def resize(self, reserved: int, actual: int) -> int:
        """Hold `actual` rows instead of the `reserved` ones; returns what is now held."""
        self.rows += actual - reserved
        return actual

    def release(self, rows: int) -> None:
        self.rows -= rows
