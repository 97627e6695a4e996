"""Benchmark: the real service under bursts of concurrent 256-row requests (backpressure).

For each burst size, every request is sent at once from one asyncio client (aiohttp, one
connection per request), each a body of `serving.max_rows` real rows (the examples export stored
in models/model.json, repeated). The table shows, per burst: how many requests were accepted
(200), refused fast (503 with Retry-After) or anything else (a 504 or a failure is a defect);
the p99 latency of the accepted ones and of the refusals; the whole burst's duration; and the
peak resident memory of the server's process tree, sampled every 20 ms, against its resident
memory before the burst. Each burst has a deadline (`--deadline-s`), so the run time is bounded.

The server gets a private BENTOML_HOME that sees the project's model store through a symlink
(`bentoml serve` empties its home's Prometheus folder at start-up).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import psutil

from model.params import Params
from rollout.bento_server import BentoServer

ROOT = Path(__file__).resolve().parents[1]
SIZES = (500, 1000, 2000)
PEAK_RSS_TARGET_MB = 1024


@dataclass(frozen=True)
class Burst:
    size: int
    statuses: dict[str, int]
    accepted_p99_ms: float
    refused_p99_ms: float
    duration_s: float
    rss_before_mb: float
    peak_rss_mb: float


def tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and everything it started, in MB."""
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0
    for process in processes:
        try:
            total += process.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return total / 2**20


class PeakSampler:
    """Samples a process tree's RSS in a thread until stopped; keeps the peak."""

    def __init__(self, pid: int, every_s: float = 0.02) -> None:
        self.pid = pid
        self.every_s = every_s
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, tree_rss_mb(self.pid))
            self._stop.wait(self.every_s)

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


async def _one(session: aiohttp.ClientSession, url: str, body: bytes) -> tuple[str, float]:
    started = time.perf_counter()
    try:
        async with session.post(
            url, data=body, headers={"content-type": "application/json"}
        ) as response:
            await response.read()
            status = str(response.status)
    except (TimeoutError, aiohttp.ClientError) as error:
        status = type(error).__name__
    return status, (time.perf_counter() - started) * 1000


async def burst(url: str, body: bytes, size: int, deadline_s: float) -> list[tuple[str, float]]:
    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    timeout = aiohttp.ClientTimeout(total=deadline_s)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        return await asyncio.gather(*(_one(session, url, body) for _ in range(size)))


def _p99(values: list[float]) -> float:
    return float(np.percentile(values, 99)) if values else float("nan")


def measure(server: BentoServer, body: bytes, size: int, deadline_s: float) -> Burst:
    assert server.pid is not None
    before = tree_rss_mb(server.pid)
    started = time.perf_counter()
    with PeakSampler(server.pid) as sampler:
        results = asyncio.run(burst(f"{server.url}/predict", body, size, deadline_s))
        time.sleep(0.2)  # memory held just after the last answer counts too
    duration = time.perf_counter() - started
    return Burst(
        size=size,
        statuses=dict(Counter(status for status, _ in results)),
        accepted_p99_ms=_p99([ms for status, ms in results if status == "200"]),
        refused_p99_ms=_p99([ms for status, ms in results if status == "503"]),
        duration_s=duration,
        rss_before_mb=before,
        peak_rss_mb=sampler.peak,
    )


def table(bursts: list[Burst]) -> str:
    lines = [
        "| burst | 200 | 503 | other | accepted p99 ms | 503 p99 ms | 503 share | took s "
        "| RSS before MB | peak RSS MB |",
        "|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for item in bursts:
        other = {k: v for k, v in item.statuses.items() if k not in ("200", "503")}
        lines.append(
            f"| {item.size} | {item.statuses.get('200', 0)} | {item.statuses.get('503', 0)} "
            f"| {json.dumps(other) if other else '-'} | {item.accepted_p99_ms:.0f} "
            f"| {item.refused_p99_ms:.0f} | {item.statuses.get('503', 0) / item.size:.0%} "
            f"| {item.duration_s:.1f} | {item.rss_before_mb:.0f} | {item.peak_rss_mb:.0f} |"
        )
    return "\n".join(lines)


def request_body(metadata: dict[str, Any], rows: int) -> bytes:
    examples = metadata["examples"]
    return json.dumps({"rows": [examples[i % len(examples)] for i in range(rows)]}).encode()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--deadline-s", type=float, default=60.0, help="per burst")
    parser.add_argument("--metadata", type=Path, default=ROOT / "models" / "model.json")
    args = parser.parse_args(argv)
    body = request_body(json.loads(args.metadata.read_text()), Params.load().serving.max_rows)
    store = Path(os.environ.get("BENTOML_HOME", ROOT / ".bentoml")) / "models"
    with tempfile.TemporaryDirectory(prefix="burst-") as scratch:
        home = Path(scratch) / "bentoml"
        home.mkdir()
        (home / "models").symlink_to(store.resolve(), target_is_directory=True)
        env = {"BENTOML_HOME": str(home), "PREDICTION_LOG_DIR": str(Path(scratch) / "log")}
        log = Path(scratch) / "serve.log"
        with BentoServer(cwd=ROOT, env=env, log=log, ready_timeout_s=90) as server:
            bursts = [measure(server, body, size, args.deadline_s) for size in args.sizes]
    print(f"{len(body):,}-byte bodies of {Params.load().serving.max_rows} rows, one worker")
    print(table(bursts))
    failed = [item for item in bursts if set(item.statuses) - {"200", "503"}]
    too_big = [item for item in bursts if item.peak_rss_mb > PEAK_RSS_TARGET_MB]
    if failed or too_big:
        print(f"FAILED: answers other than 200/503, or peak RSS over {PEAK_RSS_TARGET_MB} MB")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
