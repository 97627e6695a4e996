"""Opportunistic batching: requests that arrive together share one onnxruntime call, none waits.

BentoML's adaptive batcher (CorkDispatcher) holds requests for a learned window and answers 503
when its queue estimate crosses `max_latency_ms`. For a model that runs in microseconds, the wait
costs far more than batching saves. This batcher never waits: each request queues its feeds and,
if no flush is scheduled yet, schedules one for the event loop's next turn, so all requests
decoded in the same turn (many, under load; one, when idle) go through a single model call.

A request is the model's feeds, {input name: (rows, ...) array}; requests are merged by
concatenating each input along the rows, so a graph with several inputs (numbers and strings)
batches like one with a single input.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Mapping

import numpy as np

Feeds = Mapping[str, np.ndarray]
Infer = Callable[[Feeds], np.ndarray]
Pending = tuple[Feeds, int, "asyncio.Future[np.ndarray]"]
RECENT_CALLS = 1024


def row_count(feeds: Feeds) -> int:
    """Rows in a request: every input has the same first dimension."""
    return len(next(iter(feeds.values())))


def merged(feeds: list[Feeds]) -> Feeds:
    """One set of feeds: each input's rows, request after request."""
    if len(feeds) == 1:  # the idle case: nothing to copy
        return feeds[0]
    return {name: np.concatenate([item[name] for item in feeds]) for name in feeds[0]}


class OpportunisticBatcher:
    """`await batcher(feeds)` -> the model's output rows for exactly those feeds' rows."""

    def __init__(self, infer: Infer, max_batch_rows: int) -> None:
        self.infer = infer
        self.max_batch_rows = max_batch_rows
        self._pending: list[Pending] = []
        self._scheduled = False
        # Rows per model call, the most recent only: a list would grow with every call.
        self.batch_sizes: deque[int] = deque(maxlen=RECENT_CALLS)

    async def __call__(self, feeds: Feeds) -> np.ndarray:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[np.ndarray] = loop.create_future()
        self._pending.append((feeds, row_count(feeds), future))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush)
        return await future

    def _flush(self) -> None:
        self._scheduled = False
        pending, self._pending = self._pending, []
        chunk: list[Pending] = []
        rows = 0
        for item in pending:
            if chunk and rows + item[1] > self.max_batch_rows:
                self._run(chunk)
                chunk, rows = [], 0
            chunk.append(item)
            rows += item[1]
        if chunk:
            self._run(chunk)

    def _run(self, chunk: list[Pending]) -> None:
        try:
            outputs = self.infer(merged([feeds for feeds, _, _ in chunk]))
        except Exception as error:  # every waiting request learns why, none hangs
            for _, _, future in chunk:
                if not future.done():
                    future.set_exception(error)
            return
        self.batch_sizes.append(len(outputs))
        start = 0
        for _, rows, future in chunk:
            if not future.done():  # its client may have gone
                future.set_result(outputs[start : start + rows])
            start += rows
