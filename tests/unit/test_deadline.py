"""The per-request deadline answers 504 in time, stops at the answer and leaves no timer behind."""

import asyncio
from collections.abc import MutableMapping
from types import SimpleNamespace
from typing import Any

from bentoml._internal.server.base_app import BaseAppFactory

from serving.limits import Deadline, use_deadline

Message = MutableMapping[str, Any]


async def _call(app: Any, timeout: float) -> list[Message]:
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    await Deadline(app, timeout)({"type": "http"}, receive, send)
    return sent


async def _slow(scope: Any, receive: Any, send: Any) -> None:
    await asyncio.sleep(5)


async def _answers_then_works(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await asyncio.sleep(0.1)
    await send({"type": "http.response.body", "body": b"done"})


async def _quick(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def test_an_unanswered_request_gets_504_at_the_deadline() -> None:
    sent = asyncio.run(_call(_slow, 0.05))
    assert sent[0]["status"] == 504
    assert b"serving.timeout_s" in sent[1]["body"]


def test_the_deadline_stops_once_the_answer_has_started() -> None:
    sent = asyncio.run(_call(_answers_then_works, 0.05))
    assert [message.get("status") for message in sent] == [200, None]
    assert sent[1]["body"] == b"done"


def test_an_answered_request_leaves_no_timer_armed() -> None:
    async def scheduled_after_answer() -> int:
        await _call(_quick, 60)
        timers = asyncio.get_running_loop()._scheduled  # type: ignore[attr-defined]
        return sum(not timer.cancelled() for timer in timers)

    assert asyncio.run(scheduled_after_answer()) == 0


def test_bentoml_builds_its_timeout_from_the_deadline() -> None:
    use_deadline()
    factory = SimpleNamespace(timeout=10, max_concurrency=None)
    middlewares = BaseAppFactory.middlewares.fget(factory)  # type: ignore[attr-defined]
    assert [middleware.cls for middleware in middlewares] == [Deadline]
