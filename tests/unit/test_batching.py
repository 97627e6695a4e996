"""Opportunistic batching merges requests that arrive together and never makes one wait."""

from __future__ import annotations

import asyncio

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from serving.batching import Feeds, OpportunisticBatcher


def _doubler(calls: list[int]) -> OpportunisticBatcher:
    def infer(feeds: Feeds) -> np.ndarray:
        calls.append(len(feeds["x"]))
        return feeds["x"] * 2

    return OpportunisticBatcher(infer, max_batch_rows=8)


def _one_row() -> Feeds:
    return {"x": np.ones((1, 2), np.float32)}


@given(sizes=st.lists(st.integers(1, 8), min_size=1, max_size=20))
def test_each_request_gets_exactly_its_own_rows(sizes: list[int]) -> None:
    """Whatever the mix of request sizes, answers come back in order and unmixed."""
    calls: list[int] = []
    batcher = _doubler(calls)
    requests = [np.full((size, 2), index, dtype=np.float32) for index, size in enumerate(sizes)]

    async def send_all() -> list[np.ndarray]:
        return list(await asyncio.gather(*(batcher({"x": request}) for request in requests)))

    for request, answer in zip(requests, asyncio.run(send_all()), strict=True):
        np.testing.assert_array_equal(answer, request * 2)
    assert sum(calls) == sum(sizes)
    assert max(calls) <= max(8, max(sizes))


@given(sizes=st.lists(st.integers(1, 5), min_size=1, max_size=10))
def test_every_input_is_merged_row_for_row(sizes: list[int]) -> None:
    """A graph with a number and a string input sees each request's rows side by side in both."""
    seen: list[tuple[list[float], list[str]]] = []

    def infer(feeds: Feeds) -> np.ndarray:
        numbers, words = feeds["numeric"][:, 0].tolist(), feeds["categorical"][:, 0].tolist()
        seen.append((numbers, words))
        assert [f"w{int(number)}" for number in numbers] == words
        return feeds["numeric"]

    batcher = OpportunisticBatcher(infer, max_batch_rows=8)
    requests = [
        {
            "numeric": np.full((size, 1), index, np.float32),
            "categorical": np.full((size, 1), f"w{index}", dtype=object),
        }
        for index, size in enumerate(sizes)
    ]

    async def send_all() -> list[np.ndarray]:
        return list(await asyncio.gather(*(batcher(request) for request in requests)))

    for index, answer in enumerate(asyncio.run(send_all())):
        assert answer[:, 0].tolist() == [index] * sizes[index]
    assert sum(len(numbers) for numbers, _ in seen) == sum(sizes)


def test_requests_arriving_together_share_one_model_call() -> None:
    calls: list[int] = []
    batcher = _doubler(calls)

    async def send() -> None:
        await asyncio.gather(*(batcher(_one_row()) for _ in range(5)))

    asyncio.run(send())
    assert calls == [5]


def test_a_lone_request_is_not_held_back() -> None:
    """Sequential requests each run at once, in a batch of their own."""
    calls: list[int] = []
    batcher = _doubler(calls)

    async def send() -> None:
        for _ in range(3):
            await asyncio.wait_for(batcher(_one_row()), timeout=1)

    asyncio.run(send())
    assert calls == [1, 1, 1]


def test_a_lone_request_reaches_the_model_without_a_copy() -> None:
    given_feeds = _one_row()
    seen: list[Feeds] = []

    def infer(feeds: Feeds) -> np.ndarray:
        seen.append(feeds)
        return feeds["x"]

    asyncio.run(OpportunisticBatcher(infer, max_batch_rows=8)(given_feeds))
    assert [feeds["x"] is given_feeds["x"] for feeds in seen] == [True]


def test_a_model_error_reaches_every_request_in_the_batch() -> None:
    def broken(feeds: Feeds) -> np.ndarray:
        raise RuntimeError("model exploded")

    batcher = OpportunisticBatcher(broken, max_batch_rows=8)

    async def send() -> list[object]:
        return list(
            await asyncio.gather(*(batcher(_one_row()) for _ in range(3)), return_exceptions=True)
        )

    results = asyncio.run(send())
    assert [str(result) for result in results] == ["model exploded"] * 3


def test_only_recent_batch_sizes_are_kept() -> None:
    """A long-running server makes millions of calls: the record of them must not grow."""
    batcher = _doubler([])

    async def send() -> None:
        for _ in range(batcher.batch_sizes.maxlen or 0):
            await batcher(_one_row())
        await batcher(_one_row())

    asyncio.run(send())
    assert len(batcher.batch_sizes) == batcher.batch_sizes.maxlen
