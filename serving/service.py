"""BentoML service: the gated ONNX model behind POST /predict, GET /metadata and /model-card.

Loads the model from the BentoML model store with onnxruntime only. Everything about the table
comes from the model's metadata (models/model.json, stored with the model): its raw `inputs`
(name, kind, nullable, categories), `labels` and `examples`, so the same code serves any model
the pipeline exports. Each request is validated on its own against those inputs
(serving/schema.py); rows are laid out as the graph's feeds (model/inputs.py), and requests that
arrive together are merged into one onnxruntime call (serving/batching.py). Settings come from
params.yaml (`serving`), read once when the module is imported, which is when BentoML resolves
the service.

Hot-path choices, each measured with `make bench-serving` (docs/performance.md): POST /predict (and
/feedback) is answered by a lean ASGI handler (serving/hot_path.py) that shares `answer` with the
declared API and bounds the rows in flight (serving/backpressure.py);
BentoML's per-request timeout replaced by one that disarms its timer (serving/limits.py: the old
one left a live timer per request for `timeout_s`, and GC walking them was the p99);
uvloop and httptools under BentoML's uvicorn; no access log and no tracing span on /predict; a
fixed response media type; opportunistic batching instead of a batch window; start-up objects
frozen out of the garbage collector; a sampled prediction log written off the request path
(serving/prediction_log.py); the server stack trimmed (serving/server_stack.py: one socket write
per response, BentoML's request metrics bound once with the pid cached, /predict past
OpenTelemetry at once); and answers built from plain floats, not per-row numpy calls.
"""

from __future__ import annotations

import functools
import gc
import json
import math
import os
import time
import uuid
from pathlib import Path
from typing import Annotated, Any, Literal

import bentoml
import numpy as np
import orjson
from pydantic import BaseModel, Field
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from model.inference import onnx_session, predict_proba
from model.inputs import RawInput
from model.model_store import CARD_FILE, METADATA_FILE, ONNX_FILE, use_project_store
from model.params import Params
from serving.backpressure import RowsInFlight
from serving.batching import OpportunisticBatcher
from serving.hot_path import NonFinitePredictionError, ServiceRoutes, non_finite_body
from serving.limits import BodySizeLimit, use_deadline
from serving.prediction_log import WRITER_RESTARTED, PredictionLog
from serving.schema import (
    TRAFFIC_SOURCE_HEADER,
    ErrorBody,
    ModelInfo,
    Prediction,
    RowSchema,
    example_rows,
    feedback_model,
    traffic_source,
)
from serving.server_stack import trim_server_stack

use_project_store()
use_deadline()  # BentoML's own per-request timeout was the p99 (serving/limits.py)
PARAMS = Params.load()
SETTINGS = PARAMS.serving
# The rollout serves a stable and a canary model side by side: each server is told its tag.
MODEL_TAG_ENV = "SERVING_MODEL_TAG"
LOG_DIR_ENV = "PREDICTION_LOG_DIR"  # overrides monitoring.log_dir (each server its own folder)
MODEL = bentoml.models.BentoModel(
    os.environ.get(MODEL_TAG_ENV) or f"{PARAMS.registry.model_name}:latest"
)


def _model_metadata() -> dict[str, Any]:
    """models/model.json as stored with the model: the full file, nulls included (BentoML's own
    copy of the metadata cannot hold a null, such as a multi-class model's `positive_label`)."""
    stored = MODEL.stored
    if stored is None:
        home = os.environ.get("BENTOML_HOME", "~/bentoml")
        raise bentoml.exceptions.NotFound(
            f"no {MODEL.tag} in the BentoML model store under BENTOML_HOME={home}: "
            "run `make package` (or set BENTOML_HOME to the store that has it)"
        )
    metadata: dict[str, Any] = json.loads((Path(stored.path) / METADATA_FILE).read_text())
    return metadata


METADATA = _model_metadata()
INPUTS = [RawInput.model_validate(item) for item in METADATA["inputs"]]
SCHEMA = RowSchema(INPUTS)
Row = SCHEMA.model
EXAMPLES = example_rows(METADATA, INPUTS)
Label = Literal.__getitem__(tuple(METADATA["labels"]))  # an enum in the API's schema
FeedbackRequest = feedback_model(METADATA["labels"], SETTINGS.max_rows)

predictions_total = bentoml.metrics.Counter(
    name="predictions_total",
    documentation="Rows predicted, by predicted label and model version",
    labelnames=["label", "model_version"],
)
refused_total = bentoml.metrics.Counter(
    name="refused_requests_total",
    documentation="Requests refused after they were read: overloaded (503), non_finite (422)",
    labelnames=["reason"],
)
log_dropped_total = bentoml.metrics.Counter(
    name="prediction_log_dropped_total",
    documentation="Prediction-log records dropped, by reason (the log never blocks or grows)",
    labelnames=["reason"],
)
log_restarts_total = bentoml.metrics.Counter(
    name="prediction_log_writer_restarts_total",
    documentation="Times the prediction-log writer thread was found dead and restarted",
)


def _count_log_event(name: str, count: int) -> None:
    if name == WRITER_RESTARTED:
        log_restarts_total.inc(count)
    else:
        log_dropped_total.labels(reason=name).inc(count)


metadata_app = Starlette()
# A span per prediction costs more CPU than the model; trace the rest, not the hot route.
UNTRACED = [] if SETTINGS.trace_predict else ["/predict"]
trim_server_stack(UNTRACED)  # uvicorn, metrics and tracing, cheaper (serving/server_stack.py)


@bentoml.service(
    name="classifier",
    workers=SETTINGS.workers,
    traffic={"timeout": SETTINGS.timeout_s},
    metrics={"enabled": True},
    logging={"access": {"enabled": False}},
    tracing={"excluded_urls": UNTRACED},
)
@bentoml.asgi_app(metadata_app, path="/")  # GET /metadata; BentoML routes keep priority
class Classifier:
    """POST /predict {"rows": [{feature: value, ...}, ...]} -> one prediction per row."""

    model = MODEL

    def __init__(self) -> None:
        stored = self.model  # BentoML resolves the class attribute to the stored model
        folder = Path(stored.path)
        self.info = ModelInfo(
            model_version=stored.info.labels.get("model_version", str(stored.tag.version)),
            model_tag=str(stored.tag),
            onnx_sha256=METADATA["sha256"],
            max_rows=SETTINGS.max_rows,
            **{key: METADATA[key] for key in ModelInfo.model_fields if key in METADATA},
        )
        self.session = onnx_session(folder / ONNX_FILE, SETTINGS.onnx_threads)
        self.batcher = OpportunisticBatcher(
            lambda feeds: predict_proba(self.session, feeds),
            SETTINGS.batching.max_batch_size,
        )
        version = self.info.model_version
        monitoring = PARAMS.monitoring
        self.prediction_log = PredictionLog(
            Path(os.environ.get(LOG_DIR_ENV) or monitoring.log_dir),
            sample_rate=monitoring.sample_rate,
            buffer_rows=monitoring.buffer_rows,
            flush_interval_s=monitoring.flush_interval_s,
            max_file_bytes=monitoring.max_file_bytes,
            max_files=monitoring.max_files,
            on_event=_count_log_event,
        )
        self.prediction_log.start()
        # Start-up objects never die: keep them out of every future GC pass (p99 was GC pauses).
        gc.freeze()
        self.counters = {
            label: predictions_total.labels(label=label, model_version=version)
            for label in self.info.labels
        }

    @bentoml.on_shutdown  # type: ignore[untyped-decorator]
    def _flush_prediction_log(self) -> None:
        self.prediction_log.close()

    def __is_ready__(self) -> bool:
        """/readyz: not while the prediction log's writer is stalled (a dead one restarts)."""
        return self.prediction_log.healthy()

    @bentoml.api  # type: ignore[untyped-decorator]
    async def predict(
        self,
        rows: Annotated[
            list[Row],  # type: ignore[valid-type]
            Field(min_length=1, max_length=SETTINGS.max_rows, examples=[EXAMPLES]),
        ],
        ctx: bentoml.Context,
    ) -> list[Prediction]:
        request_id = ctx.request.headers.get("x-request-id") or None
        source = traffic_source(ctx.request.headers.get(TRAFFIC_SOURCE_HEADER))
        try:
            predictions, logged = await self.answer(rows, request_id, source)
        except NonFinitePredictionError as error:
            ctx.response.status_code = 422
            return orjson.loads(non_finite_body(error.rows))  # type: ignore[no-any-return]
        if logged:
            ctx.response.metadata["x-request-id"] = logged
        return [Prediction(**prediction) for prediction in predictions]

    async def answer(
        self, rows: list[Any], request_id: str | None, source: str = "production"
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Predictions for validated rows (`Row`s), and the id the request was logged under
        (`request_id`, or a new one), None when it was not sampled.

        Raises NonFinitePredictionError (counted) rather than answer a probability that is not a
        number: finite float32 inputs can still overflow inside the graph."""
        started = time.perf_counter()
        # {"numeric": (rows, k) float32, "categorical": (rows, m) str} -> (rows, n_classes)
        probabilities = await self.batcher(SCHEMA.feeds(rows))
        table = probabilities.tolist()
        # Plain floats from here: numpy's per-call overhead was more than the model on one row.
        # A sum is finite only if every term is, so the exact check runs only when it is not.
        if not math.isfinite(sum(map(sum, table))):
            finite = np.isfinite(probabilities).all(axis=1)
            if not finite.all():
                self.refused("non_finite")
                raise NonFinitePredictionError(np.flatnonzero(~finite).tolist())
        version = self.info.model_version
        labels = self.info.labels
        predictions = []
        for row in table:
            label = labels[row.index(max(row))]  # the first highest, as numpy's argmax
            self.counters[label].inc()
            predictions.append(
                {
                    "label": label,
                    "probabilities": dict(zip(labels, row, strict=True)),
                    "model_version": version,
                }
            )
        if not self.prediction_log.sampled():
            return predictions, None
        logged = request_id or uuid.uuid4().hex
        latency_ms = (time.perf_counter() - started) * 1000
        self.prediction_log.record(logged, SCHEMA.raw(rows), predictions, latency_ms, source)
        return predictions, logged

    def remember(self, request_id: str, row: int, label: str) -> None:
        """Log a true label (validated: a known label, a row a request can have)."""
        self.prediction_log.feedback(request_id, row, label)

    @staticmethod
    def refused(reason: str) -> None:
        refused_total.labels(reason=reason).inc()

    @bentoml.api  # type: ignore[untyped-decorator]
    async def feedback(
        self,
        request_id: Annotated[str, Field(min_length=1, max_length=128)],
        label: Label,  # type: ignore[valid-type]
        row: Annotated[int, Field(ge=0, le=SETTINGS.max_rows - 1)] = 0,
    ) -> dict[str, bool]:
        """The true label of a logged prediction (its x-request-id header), for concept drift."""
        self.remember(request_id, row, label)
        return {"accepted": True}


async def _model_card(request: Request) -> Response:
    card = Path(MODEL.stored.path) / CARD_FILE if MODEL.stored is not None else None
    if card is None or not card.is_file():
        return PlainTextResponse("this model was packaged without a card\n", status_code=404)
    return PlainTextResponse(card.read_text(), media_type="text/markdown; charset=utf-8")


async def _metadata(request: Request) -> JSONResponse:
    try:
        service: Classifier = bentoml.get_current_service()
    except bentoml.exceptions.BentoMLException:
        return JSONResponse({"error": "the model is still loading"}, status_code=503)
    return JSONResponse(service.info.model_dump())


# BentoML otherwise rebuilds the output's JSON schema on every response to find its media type.
Classifier.apis["predict"].output_spec.media_type = "application/json"  # type: ignore[attr-defined]
metadata_app.router.routes.append(Route("/metadata", _metadata, methods=["GET"]))
metadata_app.router.routes.append(Route("/model-card", _model_card, methods=["GET"]))
Classifier.add_asgi_middleware(BodySizeLimit, max_bytes=SETTINGS.max_body_bytes)  # type: ignore[attr-defined]


class PredictRequest(BaseModel):
    """The body of POST /predict, as the `predict` API declares it."""

    rows: Annotated[list[Row], Field(min_length=1, max_length=SETTINGS.max_rows)]  # type: ignore[valid-type]


_LOADED: list[Any] = []  # the service once loaded: BentoML's lookup cost 2% of each request


def _ready_service() -> Any:
    if _LOADED:
        return _LOADED[0]
    try:
        service = bentoml.get_current_service()
    except bentoml.exceptions.BentoMLException:
        return None
    _LOADED.append(service)
    return service


def _error_response(description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    schema = {"$ref": "#/components/schemas/ErrorBody"}
    response = {"description": description, "content": {"application/json": {"schema": schema}}}
    return response | ({"headers": headers} if headers else {})


def openapi_document() -> dict[str, Any]:
    """BentoML's document, plus what it cannot know: the routes mounted beside the APIs
    (/metadata, /model-card) and the refusals this service actually sends (an `ErrorBody`)."""
    spec: dict[str, Any] = Classifier.openapi_spec.asdict()  # type: ignore[attr-defined]
    schemas = spec["components"]["schemas"]
    for model in (ModelInfo, ErrorBody):
        schema = model.model_json_schema(
            ref_template="#/components/schemas/{model}", mode="serialization"
        )
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    retry = {"Retry-After": {"description": "seconds", "schema": {"type": "integer"}}}
    refusals = {
        "400": _error_response("Not JSON, or not the schema: `detail[].loc` names the field"),
        "413": _error_response("The body is over serving.max_body_bytes"),
        "503": _error_response("Overloaded (or still loading): retry later", retry),
    }
    for path in ("/predict", "/feedback"):
        spec["paths"][path]["post"]["requestBody"]["required"] = True  # no body is a 400
        responses = spec["paths"][path]["post"]["responses"]
        for code in (400, 404, 500):  # BentoML's generic errors: never sent by these routes
            responses.pop(code, None)
            responses.pop(str(code), None)
        responses.update(refusals)
    # What the hot path validates against (BentoML's own copy would allow unknown keys).
    feedback = FeedbackRequest.model_json_schema(ref_template="#/components/schemas/{model}")
    spec["paths"]["/feedback"]["post"]["requestBody"]["content"]["application/json"]["schema"] = (
        feedback
    )
    spec["paths"]["/predict"]["post"]["responses"]["422"] = _error_response(
        "The model gives no finite probabilities for some rows (values too extreme for it)"
    )
    info = {"$ref": "#/components/schemas/ModelInfo"}
    spec["paths"]["/metadata"] = {
        "get": {
            "description": "The served model: version, inputs, labels, provenance",
            "operationId": "classifier__metadata",
            "responses": {
                "200": {"description": "OK", "content": {"application/json": {"schema": info}}},
                "503": _error_response("The model is still loading"),
            },
        }
    }
    card = {"text/markdown": {"schema": {"type": "string"}}}
    missing = {"text/plain": {"schema": {"type": "string"}}}
    spec["paths"]["/model-card"] = {
        "get": {
            "description": "The model's card (Markdown)",
            "operationId": "classifier__model_card",
            "responses": {
                "200": {"description": "OK", "content": card},
                "404": {"description": "Packaged without a card", "content": missing},
            },
        }
    }
    return spec


@functools.cache
def _openapi_bytes() -> bytes:
    return orjson.dumps(openapi_document(), option=orjson.OPT_NON_STR_KEYS)


# Added after the body limit, so it runs inside it (and inside BentoML's metrics and tracing).
Classifier.add_asgi_middleware(  # type: ignore[attr-defined]
    ServiceRoutes,
    request_model=PredictRequest,
    feedback_model=FeedbackRequest,
    service=_ready_service,
    in_flight=RowsInFlight(SETTINGS.max_rows_in_flight),
    max_rows=SETTINGS.max_rows,
    openapi=_openapi_bytes,
)
