"""Test-only BentoML services that wrap the real one to inject failures into a canary.

They live in tests/, so no production code path can switch them on: the rollout tests start a
canary with `--canary-service tests.rollout.faulty_services:<Name>`.
"""

from __future__ import annotations

import asyncio
import itertools
import os
from typing import Any

import bentoml

from serving.service import Classifier, Row

_real_predict = Classifier.apis["predict"].func  # type: ignore[attr-defined]
_calls = itertools.count()


class _Erroring(Classifier.inner):  # type: ignore[misc,name-defined]
    """Answers 500 to every third request."""

    @bentoml.api  # type: ignore[untyped-decorator]
    async def predict(self, rows: list[Row], ctx: bentoml.Context) -> Any:  # type: ignore[valid-type]
        if next(_calls) % 3 == 2:  # the first call (the smoke test) succeeds
            raise RuntimeError("injected failure")
        return await _real_predict(self, rows, ctx)


class _Refusing(Classifier.inner):  # type: ignore[misc,name-defined]
    """Refuses every other request with 400, as a model whose input schema changed would."""

    @bentoml.api  # type: ignore[untyped-decorator]
    async def predict(self, rows: list[Row], ctx: bentoml.Context) -> Any:  # type: ignore[valid-type]
        if next(_calls) % 2 == 1:  # the first call (the smoke test) succeeds
            raise bentoml.exceptions.BadInput("injected: unknown input")
        return await _real_predict(self, rows, ctx)


class _Slow(Classifier.inner):  # type: ignore[misc,name-defined]
    """Correct, but every answer takes FAULT_DELAY_S (default 0.4 s) longer."""

    @bentoml.api  # type: ignore[untyped-decorator]
    async def predict(self, rows: list[Row], ctx: bentoml.Context) -> Any:  # type: ignore[valid-type]
        await asyncio.sleep(float(os.environ.get("FAULT_DELAY_S", "0.4")))
        return await _real_predict(self, rows, ctx)


class _NeverReady(Classifier.inner):  # type: ignore[misc,name-defined]
    """Its worker dies at start-up, so BentoML restarts it in a loop and /readyz never says 200."""

    def __init__(self) -> None:
        raise RuntimeError("injected start-up crash")


Erroring = bentoml.service(name="erroring")(_Erroring)
Refusing = bentoml.service(name="refusing")(_Refusing)
Slow = bentoml.service(name="slow")(_Slow)
NeverReady = bentoml.service(name="never-ready")(_NeverReady)
