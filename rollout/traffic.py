"""Client traffic for rollouts and load tests: held-out rows as JSON requests, and a bounded
Locust run in the background.

Rows are sent the way a client of the model would send them, whatever the table: every input
the model describes (model.json `inputs`), numbers for numeric features, strings for
categoricals, true/false for booleans and null for a missing value. Never NaN: it is not JSON.
Columns the model does not take (the label, ids) are left out by what the model says it takes,
never by their names.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import pandas as pd

from model.inputs import InputLayout, RawInput, boolean_value
from model.params import TrafficParams

HELD_OUT_ROWS = Path("data/prepared/test.csv")  # written by `prepare`; commands take --rows
LOCUSTFILE = Path("load_tests/locustfile.py")  # relative to the project the command runs in
MODEL_INFO_ENV = "LOAD_TEST_MODEL"  # model.json of the model the traffic is meant for
ROWS_ENV = "LOAD_TEST_ROWS"  # CSV the traffic draws its rows from
SUMMARY_ENV = "LOAD_TEST_SUMMARY"  # where the locustfile writes its JSON summary
MIN_RPS_ENV = "LOAD_TEST_MIN_RPS"  # the run's own throughput target, instead of the serving SLO's
BUDGET_ENV = "LOAD_TEST_BUDGET"  # where that target comes from, for the summary
START_TIMEOUT_S = 60.0  # Locust imports gevent and spawns its users: seconds on a busy machine


class TrafficError(RuntimeError):
    """The clients never started sending: Locust exited or sent nothing in time."""


def model_inputs(info: Mapping[str, Any]) -> tuple[RawInput, ...]:
    """The raw inputs a model.json (or BentoML model metadata) describes. A model exported
    before models described their inputs took a number for each of its `feature_names`."""
    if "inputs" in info:
        return InputLayout.from_metadata(info).inputs
    return tuple(RawInput(name=name, kind="numeric") for name in info["feature_names"])


def read_rows(path: Path, inputs: Sequence[RawInput]) -> pd.DataFrame:
    """A CSV with the model's categorical and boolean columns read as text, as `prepare` wrote
    them ('01' stays '01'); ValueError naming the inputs the file lacks."""
    text = {item.name: str for item in inputs if item.kind != "numeric"}
    frame = pd.read_csv(path, dtype=text)
    if missing := [item.name for item in inputs if item.name not in frame.columns]:
        raise ValueError(f"{path} lacks columns the model takes: {missing}")
    return frame


def _json_value(value: Any, item: RawInput, integer: bool) -> Any:
    if pd.isna(value):
        return None
    if item.kind == "categorical":
        return str(value)
    if item.kind == "boolean":
        flag = boolean_value(value)
        return None if math.isnan(flag) else flag == 1.0
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{item.name}: {value!r} is not a finite number")
    return int(number) if integer else number


def client_rows(frame: pd.DataFrame, inputs: Sequence[RawInput]) -> list[dict[str, Any]]:
    """Each row as a {feature: value} mapping a client would send as JSON."""
    integer = {item.name: pd.api.types.is_integer_dtype(frame[item.name]) for item in inputs}
    columns = [frame[item.name].astype(object).tolist() for item in inputs]
    return [
        {
            item.name: _json_value(value, item, integer[item.name])
            for item, value in zip(inputs, values, strict=True)
        }
        for values in zip(*columns, strict=True)
    ]


def held_out_rows(path: Path, inputs: Sequence[RawInput]) -> list[dict[str, Any]]:
    """Every row of a CSV (a prepared split, say) as the model's clients send rows."""
    return client_rows(read_rows(path, inputs), inputs)


def request_body(rows: Sequence[Mapping[str, Any]]) -> str:
    """A POST /predict body; refuses NaN rather than send what no JSON parser accepts."""
    return json.dumps({"rows": list(rows)}, allow_nan=False)  # ASCII: \u escapes travel anywhere


def request_bodies(rows: Sequence[Mapping[str, Any]], size: int) -> list[str]:
    """The rows as consecutive requests of at most `size` rows."""
    return [request_body(rows[start : start + size]) for start in range(0, len(rows), size)]


class Traffic:
    """`with Traffic(url, params, seconds, folder, model_info, rows):` Locust sends the rows of
    `rows`, laid out for the model `model_info` (a model.json) describes, until the block ends.

    The run drives a rollout; it is not a load test of the service, so it is judged on reaching
    its own offered rate (users x rate, `min_offered_share` of it), not on the serving SLO."""

    def __init__(
        self,
        url: str,
        params: TrafficParams,
        seconds: float,
        folder: Path,
        model_info: Path,
        rows: Path = HELD_OUT_ROWS,
        arrivals: Path | None = None,
    ) -> None:
        """`arrivals`: a file the server side appends to per request (nginx's access log); when
        given, entering waits until it grows, so whatever is timed next sees traffic."""
        self.url = url
        self.arrivals = arrivals
        self.params = params
        self.seconds = seconds
        self.folder = folder
        self.model_info = model_info
        self.rows = rows
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def min_rps(self) -> float:
        """The throughput the run must reach: a share of what its users offer."""
        offered = self.params.users * self.params.requests_per_user_s
        return round(offered * self.params.min_offered_share, 3)

    def __enter__(self) -> Traffic:
        self.folder.mkdir(parents=True, exist_ok=True)
        locust = Path(sys.executable).with_name("locust")
        command = [
            str(locust), "--locustfile", str(LOCUSTFILE), "--headless",
            "--host", self.url,
            "--users", str(self.params.users), "--spawn-rate", str(self.params.users),
            "--run-time", f"{int(self.seconds) + 1}s", "--stop-timeout", "2",
            "--only-summary", "--loglevel", "WARNING",
        ]  # fmt: skip
        env = os.environ | {
            "LOCUST_REQUESTS_PER_USER_S": str(self.params.requests_per_user_s),
            SUMMARY_ENV: str(self.folder / "traffic.json"),
            MIN_RPS_ENV: str(self.min_rps),
            ROWS_ENV: str(self.rows),
            MODEL_INFO_ENV: str(self.model_info),
            BUDGET_ENV: "params.yaml rollout.traffic",
        }
        before = _size(self.arrivals)
        with (self.folder / "traffic.log").open("wb") as log:
            self.process = subprocess.Popen(
                command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        if self.arrivals is not None:
            try:
                self._wait_for_arrivals(self.arrivals, before)
            except TrafficError:
                self.__exit__(None, None, None)
                raise
        return self

    def _wait_for_arrivals(self, arrivals: Path, before: int) -> None:
        """Until the first request arrives: a step's hold timed from Locust's start would be
        judged on the seconds Locust spent starting, with no requests in them."""
        assert self.process is not None
        deadline = time.monotonic() + START_TIMEOUT_S
        while _size(arrivals) <= before:
            if self.process.poll() is not None:
                raise TrafficError(
                    f"the traffic's Locust exited ({self.process.returncode}) before sending a "
                    f"request: see {self.folder / 'traffic.log'}"
                )
            if time.monotonic() > deadline:
                raise TrafficError(
                    f"no request reached {arrivals} within {START_TIMEOUT_S:g} s of starting "
                    f"Locust: see {self.folder / 'traffic.log'}"
                )
            time.sleep(0.1)

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def _size(path: Path | None) -> int:
    try:
        return path.stat().st_size if path is not None else 0
    except FileNotFoundError:
        return 0
