"""Benchmark peer (d): FastAPI + uvicorn + onnxruntime on the same ONNX model, no batching.

The hand-rolled alternative to BentoML: one onnxruntime session (one intra-op thread, as
serving uses), one call per request, the real service's request schema (the same validation,
built from the model's `inputs`) and response JSON. The model path comes from `PEER_ONNX_MODEL`
(default models/model.onnx, relative to the repository root); its metadata is the .json file
beside it. Run with `uvicorn benchmarks.peers.fastapi_app:app --workers 1`.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import onnxruntime as ort
from fastapi import FastAPI, Request
from pydantic import BaseModel, Field

from model.inference import onnx_session, predict_proba
from model.inputs import RawInput
from serving.schema import Prediction, RowSchema

ROOT = Path(__file__).resolve().parents[2]
MODEL_ENV = "PEER_ONNX_MODEL"
DEFAULT_MODEL = "models/model.onnx"


@dataclass(frozen=True)
class PeerModel:
    """The session and what turns its output into predictions."""

    session: ort.InferenceSession
    labels: list[str]
    version: str

    @classmethod
    def load(cls, path: Path) -> PeerModel:
        info = json.loads(path.with_suffix(".json").read_text())
        return cls(
            session=onnx_session(path, threads=1),
            labels=info["labels"],
            version=f"sha-{info['sha256'][:12]}",
        )


# The service's own row schema (required and nullable features, strict values by kind, nothing
# else), so that both servers do the same validation work per request.
_MODEL_INFO = json.loads(
    (ROOT / os.environ.get(MODEL_ENV, DEFAULT_MODEL)).with_suffix(".json").read_text()
)
SCHEMA = RowSchema([RawInput.model_validate(item) for item in _MODEL_INFO["inputs"]])
Row = SCHEMA.model


class PredictRequest(BaseModel):
    rows: list[Row] = Field(min_length=1)  # type: ignore[valid-type]


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    # Loaded at start-up, not import: uvicorn binds the port only after this, so a listening
    # port means a loaded model.
    app.state.model = PeerModel.load(ROOT / os.environ.get(MODEL_ENV, DEFAULT_MODEL))
    yield


app = FastAPI(title="fastapi-onnx-peer", lifespan=lifespan)


@app.get("/readyz")
async def readyz() -> dict[str, str]:
    return {"status": "ready"}


@app.post("/predict")
async def predict(body: PredictRequest, request: Request) -> list[Prediction]:
    # `async def` on purpose: a single-row onnxruntime call takes tens of microseconds, less than
    # the hop to the threadpool a plain `def` endpoint would pay.
    model: PeerModel = request.app.state.model
    # the graph's feeds (numbers and strings) -> (rows, n_classes)
    probabilities = predict_proba(model.session, SCHEMA.feeds(body.rows))
    return [
        Prediction(
            label=model.labels[int(row.argmax())],
            probabilities=dict(zip(model.labels, row.tolist(), strict=True)),
            model_version=model.version,
        )
        for row in probabilities
    ]
