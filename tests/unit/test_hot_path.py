"""The lean routes answer every body with a 200 or a bounded 4xx, refuse overload with a fast 503,
and never leave rows counted in flight, whatever the request.

The service behind them is a stand-in that records what it was asked; the inputs are those
`prepare` fits on the generated mixed table (tests/tables.py)."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

import httpx
import pydantic
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import Field

from model.features import fit_schema
from serving.backpressure import RowsInFlight
from serving.hot_path import NonFinitePredictionError, ServiceRoutes
from serving.schema import MAX_ISSUES, RowSchema, feedback_model, placeholder_row
from tests.tables import mixed_contract, mixed_frame

INPUTS = fit_schema(mixed_frame(), mixed_contract()).inputs
SCHEMA = RowSchema(INPUTS)
MAX_ROWS = 8
LABELS = ["ämber", "blue/green", "red.0"]
ROW = placeholder_row(INPUTS)


class PredictRequest(pydantic.BaseModel):
    rows: Annotated[list[SCHEMA.model], Field(min_length=1, max_length=MAX_ROWS)]  # type: ignore[name-defined]


class StandIn:
    """Answers every row with the first label, or refuses as told."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, str | None, str]] = []
        self.feedback: list[tuple[str, int, str]] = []
        self.refusals: list[str] = []
        self.non_finite = False

    async def answer(
        self, rows: list[Any], request_id: str | None, source: str
    ) -> tuple[list[dict[str, Any]], str | None]:
        self.calls.append((len(rows), request_id, source))
        if self.non_finite:
            self.refused("non_finite")
            raise NonFinitePredictionError([0])
        return [{"label": LABELS[0]} for _ in rows], request_id or "made-by-the-log"

    def remember(self, request_id: str, row: int, label: str) -> None:
        self.feedback.append((request_id, row, label))

    def refused(self, reason: str) -> None:
        self.refusals.append(reason)


async def _not_found(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 404, "headers": []})
    await send({"type": "http.response.body", "body": b""})


def _routes(service: StandIn, limit: int = 4 * MAX_ROWS) -> ServiceRoutes:
    return ServiceRoutes(
        _not_found,
        request_model=PredictRequest,
        feedback_model=feedback_model(LABELS, MAX_ROWS),
        service=lambda: service,
        in_flight=RowsInFlight(limit),
        max_rows=MAX_ROWS,
        openapi=lambda: b'{"openapi": "3.0.2"}',
    )


def _post(routes: ServiceRoutes, path: str, body: bytes, **headers: str) -> httpx.Response:
    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=routes)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.post(path, content=body, headers=headers)

    return asyncio.run(call())


def _rows(count: int) -> bytes:
    return json.dumps({"rows": [ROW] * count}).encode()


def test_a_valid_request_is_answered_with_its_request_id_and_source() -> None:
    service = StandIn()
    response = _post(
        _routes(service),
        "/predict",
        _rows(2),
        **{"x-request-id": "abc", "x-traffic-source": "shadow"},
    )
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "abc"
    assert service.calls == [(2, "abc", "shadow")]


def test_an_overlong_request_id_gives_way_to_the_one_the_log_makes() -> None:
    service = StandIn()
    response = _post(_routes(service), "/predict", _rows(1), **{"x-request-id": "x" * 129})
    assert service.calls[0][1] is None
    assert response.headers["x-request-id"] == "made-by-the-log"


def test_an_unknown_traffic_source_counts_as_production() -> None:
    service = StandIn()
    _post(_routes(service), "/predict", _rows(1), **{"x-traffic-source": "chaos-monkey"})
    assert service.calls[0][2] == "production"


def test_an_error_body_lists_the_first_issues_and_counts_them_all() -> None:
    response = _post(_routes(StandIn()), "/predict", json.dumps({"rows": [{}] * MAX_ROWS}).encode())
    assert response.status_code == 400
    body = response.json()
    required = sum(not item.nullable for item in INPUTS)
    assert body["error_count"] == MAX_ROWS * required
    assert len(body["detail"]) == min(MAX_ISSUES, MAX_ROWS * required)
    assert len(response.content) < 4_000


def test_an_error_never_echoes_a_long_key_the_client_sent() -> None:
    body = json.dumps({"rows": [ROW | {"k" * 50_000: 1}]}).encode()
    response = _post(_routes(StandIn()), "/predict", body)
    assert response.status_code == 400
    assert len(response.content) < 2_000


def test_feedback_in_multipart_without_a_boundary_is_a_400() -> None:
    response = _post(
        _routes(StandIn()), "/feedback", b"x", **{"content-type": "multipart/form-data"}
    )
    assert response.status_code == 400
    assert response.json()["detail"][0]["type"] == "json_invalid"


def test_feedback_for_a_row_no_request_can_have_is_a_400_naming_row() -> None:
    service = StandIn()
    body = json.dumps({"request_id": "r", "label": LABELS[1], "row": 2**64}).encode()
    response = _post(_routes(service), "/feedback", body)
    assert response.status_code == 400
    assert [issue["loc"] for issue in response.json()["detail"]] == [["row"]]
    assert service.feedback == []


def test_feedback_with_a_known_label_is_remembered() -> None:
    service = StandIn()
    body = json.dumps({"request_id": "r", "label": LABELS[2], "row": MAX_ROWS - 1}).encode()
    assert _post(_routes(service), "/feedback", body).json() == {"accepted": True}
    assert service.feedback == [("r", MAX_ROWS - 1, LABELS[2])]


def test_a_prediction_that_is_not_finite_is_a_422_naming_the_row() -> None:
    service = StandIn()
    service.non_finite = True
    response = _post(_routes(service), "/predict", _rows(1))
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["rows", 0]
    assert service.refusals == ["non_finite"]


def test_over_the_rows_in_flight_a_request_gets_a_503_with_retry_after() -> None:
    service = StandIn()
    routes = _routes(service, limit=MAX_ROWS)
    routes.in_flight.rows = 1  # another request holds a row
    response = _post(routes, "/predict", _rows(1))
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert service.calls == []
    assert service.refusals == ["overloaded"]


def test_the_openapi_document_is_the_services_own() -> None:
    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=_routes(StandIn()))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.get("/docs.json")

    assert asyncio.run(call()).json() == {"openapi": "3.0.2"}


BODIES = st.one_of(
    st.binary(max_size=64),
    st.builds(_rows, st.integers(0, MAX_ROWS + 2)),
    st.builds(
        lambda value: json.dumps({"rows": [ROW | {SCHEMA.inputs[0].name: value}]}).encode(),
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    ),
)


@settings(max_examples=60, deadline=None)
@given(body=BODIES, path=st.sampled_from(["/predict", "/feedback"]))
def test_any_body_gets_a_200_or_a_4xx_and_leaves_nothing_in_flight(body: bytes, path: str) -> None:
    routes = _routes(StandIn())
    response = _post(routes, path, body)
    assert response.status_code == 200 or 400 <= response.status_code < 500
    assert routes.in_flight.rows == 0
