"""Opportunistic batching: requests that arrive together share one onnxruntime call, none waits.

BentoML's adaptive batcher (CorkDispatcher) holds requests for a learned window and answers 503
when its queue estimate crosses `max_latency_ms`. For a model that runs in microseconds, the wait
costs far more than batching saves. This batcher never waits: each request queues its rows and,
if no flush is scheduled yet, schedules one for the event loop's next turn, so all requests
decoded in the same turn (many, under load; one, when idle) go through a single model call.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import numpy as np

Infer = Callable[[np.ndarray], np.ndarray]


class OpportunisticBatcher:
    """`await batcher(features)` -> the model's output rows for exactly those features."""

    def __init__(self, infer: Infer, max_batch_rows: int) -> None:
        self.infer = infer
        self.max_batch_rows = max_batch_rows
        self._pending: list[tuple[np.ndarray, asyncio.Future[np.ndarray]]] = []
        self._scheduled = False
        self.batch_sizes: list[int] = []  # rows per model call, for tests and metrics

    async def __call__(self, features: np.ndarray) -> np.ndarray:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[np.ndarray] = loop.create_future()
        self._pending.append((features, future))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush)
        return await future

    def _flush(self) -> None:
        self._scheduled = False
        pending, self._pending = self._pending, []
        chunk: list[tuple[np.ndarray, asyncio.Future[np.ndarray]]] = []
        rows = 0
        for item in pending:
            if chunk and rows + len(item[0]) > self.max_batch_rows:
                self._run(chunk)
                chunk, rows = [], 0
            chunk.append(item)
            rows += len(item[0])
        if chunk:
            self._run(chunk)

    def _run(self, chunk: list[tuple[np.ndarray, asyncio.Future[np.ndarray]]]) -> None:
        try:
            outputs = self.infer(np.concatenate([features for features, _ in chunk]))
        except Exception as error:  # every waiting request learns why, none hangs
            for _, future in chunk:
                if not future.done():
                    future.set_exception(error)
            return
        self.batch_sizes.append(len(outputs))
        start = 0
        for features, future in chunk:
            if not future.done():  # its client may have gone
                future.set_result(outputs[start : start + len(features)])
            start += len(features)
