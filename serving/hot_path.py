"""POST /predict and POST /feedback answered by a lean ASGI handler inside the BentoML service.

BentoML's API machinery (routing, per-request context, IO descriptors, serde) costs more CPU per
request than the model itself (a row takes ~7 µs in onnxruntime), and its serde answers some odd
requests (multipart without a boundary) with a 500 and logs every 400 as an ERROR traceback.
This middleware sits inside BentoML's own middlewares (request metrics, tracing, timeouts and
the body limit still apply) and answers both routes with the schema the declared APIs document,
whatever the content type: the body is JSON or it is a 400. Every refusal is an `ErrorBody`
(serving/schema.py), bounded in size. The APIs stay declared for the OpenAPI docs and
BentoML's typed clients; the work itself is shared (`Classifier.answer`, `.remember`).

Before a /predict body is parsed, the request must fit under the worker's bound on rows in
flight (serving/backpressure.py); otherwise its body is read and dropped and it gets a 503 with
`Retry-After` at once. GET /docs.json is served from `openapi`, the service's own document.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Protocol

import orjson
from pydantic import BaseModel, ValidationError

from serving.backpressure import RowsInFlight
from serving.schema import TRAFFIC_SOURCE_HEADER, error_body, traffic_source, validation_error_body

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

JSON = (b"content-type", b"application/json")
RETRY_AFTER_S = b"1"
MAX_REQUEST_ID = 128  # longer ids are replaced: feedback could never name them
SOURCE_HEADER = TRAFFIC_SOURCE_HEADER.encode()


class NonFinitePredictionError(ValueError):
    """The model's probabilities for some rows are not finite numbers (inputs too extreme)."""

    def __init__(self, rows: list[int]) -> None:
        super().__init__(f"no finite probabilities for rows {rows[:20]}")
        self.rows = rows


class Answering(Protocol):
    async def answer(
        self, rows: list[Any], request_id: str | None, source: str
    ) -> tuple[list[dict[str, Any]], str | None]: ...

    def remember(self, request_id: str, row: int, label: str) -> None: ...

    def refused(self, reason: str) -> None: ...


class ServiceRoutes:
    def __init__(
        self,
        app: ASGIApp,
        request_model: type[BaseModel],
        feedback_model: type[BaseModel],
        service: Callable[[], Answering | None],
        in_flight: RowsInFlight,
        max_rows: int,
        openapi: Callable[[], bytes],
    ) -> None:
        self.app = app
        self.request_model = request_model
        self.feedback_model = feedback_model
        self.service = service
        self.in_flight = in_flight
        self.max_rows = max_rows
        self.openapi = openapi

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path, method = scope["path"], scope["method"]
        if path == "/docs.json" and method == "GET":
            await _respond(send, 200, self.openapi())
            return
        if method != "POST" or path not in ("/predict", "/feedback"):
            await self.app(scope, receive, send)
            return
        service = self.service()
        if service is None:  # still loading: BentoML's own route answers (503)
            await self.app(scope, receive, send)
            return
        if path == "/predict":
            await self._predict(service, scope, receive, send)
        else:
            await self._feedback(service, receive, send)

    async def _predict(
        self, service: Answering, scope: Scope, receive: Receive, send: Send
    ) -> None:
        if not self.in_flight.admit(self.max_rows):
            await _read(receive, keep=False)  # a client that is still sending gets its answer
            service.refused("overloaded")
            refusal = error_body("overloaded: too many rows in flight, retry later", [])
            await _respond(send, 503, refusal, [(b"retry-after", RETRY_AFTER_S)])
            return
        held = self.max_rows
        try:
            body = await _read(receive)
            if body is None:
                return
            try:
                request = self.request_model.model_validate_json(body)
            except ValidationError as error:
                await _respond(send, 400, validation_error_body(error))
                return
            del body
            rows = request.rows  # type: ignore[attr-defined]
            held = self.in_flight.resize(held, len(rows))
            headers = dict(scope["headers"])
            given = headers.get(b"x-request-id")
            # An id is made only for a request the log keeps (a uuid costs 2% of a request).
            request_id = given.decode("latin-1") if given and len(given) <= MAX_REQUEST_ID else None
            source = traffic_source(headers.get(SOURCE_HEADER))
            try:
                predictions, logged = await service.answer(rows, request_id, source)
            except NonFinitePredictionError as error:
                await _respond(send, 422, non_finite_body(error.rows))
                return
            extra = [(b"x-request-id", logged.encode("latin-1"))] if logged else []
            await _respond(send, 200, orjson.dumps(predictions), extra)
        finally:
            self.in_flight.release(held)

    async def _feedback(self, service: Answering, receive: Receive, send: Send) -> None:
        body = await _read(receive)
        if body is None:
            return
        try:
            feedback = self.feedback_model.model_validate_json(body)
        except ValidationError as error:
            await _respond(send, 400, validation_error_body(error))
            return
        service.remember(feedback.request_id, feedback.row, feedback.label)  # type: ignore[attr-defined]
        await _respond(send, 200, b'{"accepted":true}')


def non_finite_body(rows: list[int]) -> bytes:
    """Why a request whose rows the model cannot score gets a 422, row by row."""
    issues = [
        {
            "type": "non_finite_prediction",
            "loc": ["rows", row],
            "msg": "the model gives no finite probabilities for this row: its values are too "
            "extreme for it",
        }
        for row in rows
    ]
    return error_body(f"no finite prediction for {len(rows)} row(s)", issues)


async def _read(receive: Receive, keep: bool = True) -> bytes | None:
    """The whole body (the body limit bounds it), or None if the client went away. With
    `keep=False` the body is read and dropped: a client still sending must be read, or it sees
    a reset instead of the answer."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        if keep:
            chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _respond(
    send: Send, status: int, body: bytes, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    headers = [JSON, (b"content-length", str(len(body)).encode()), *(extra or [])]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
