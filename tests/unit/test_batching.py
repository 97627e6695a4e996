"""Opportunistic batching merges requests that arrive together and never makes one wait."""

from __future__ import annotations

import asyncio

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from serving.batching import OpportunisticBatcher


def _doubler(calls: list[int]) -> OpportunisticBatcher:
    def infer(features: np.ndarray) -> np.ndarray:
        calls.append(len(features))
        return features * 2

    return OpportunisticBatcher(infer, max_batch_rows=8)


@given(sizes=st.lists(st.integers(1, 8), min_size=1, max_size=20))
def test_each_request_gets_exactly_its_own_rows(sizes: list[int]) -> None:
    """Whatever the mix of request sizes, answers come back in order and unmixed."""
    calls: list[int] = []
    batcher = _doubler(calls)
    requests = [np.full((size, 2), index, dtype=np.float32) for index, size in enumerate(sizes)]

    async def send_all() -> list[np.ndarray]:
        return list(await asyncio.gather(*(batcher(request) for request in requests)))

    for request, answer in zip(requests, asyncio.run(send_all()), strict=True):
        np.testing.assert_array_equal(answer, request * 2)
    assert sum(calls) == sum(sizes)
    assert max(calls) <= max(8, max(sizes))


def test_requests_arriving_together_share_one_model_call() -> None:
    calls: list[int] = []
    batcher = _doubler(calls)

    async def send() -> None:
        await asyncio.gather(*(batcher(np.ones((1, 2), np.float32)) for _ in range(5)))

    asyncio.run(send())
    assert calls == [5]


def test_a_lone_request_is_not_held_back() -> None:
    """Sequential requests each run at once, in a batch of their own."""
    calls: list[int] = []
    batcher = _doubler(calls)

    async def send() -> None:
        for _ in range(3):
            await asyncio.wait_for(batcher(np.ones((1, 2), np.float32)), timeout=1)

    asyncio.run(send())
    assert calls == [1, 1, 1]


def test_a_model_error_reaches_every_request_in_the_batch() -> None:
    def broken(features: np.ndarray) -> np.ndarray:
        raise RuntimeError("model exploded")

    batcher = OpportunisticBatcher(broken, max_batch_rows=8)

    async def send() -> list[object]:
        return list(
            await asyncio.gather(
                *(batcher(np.ones((1, 2), np.float32)) for _ in range(3)), return_exceptions=True
            )
        )

    results = asyncio.run(send())
    assert [str(result) for result in results] == ["model exploded"] * 3
