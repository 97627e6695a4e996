"""Benchmark: the real BentoML service against FastAPI under the same HTTP load, side by side.

Contenders, all started in one run, each on its own free loopback port
(benchmarks/serving_servers.py): the service (serving/service.py: BentoML, ONNX, opportunistic
batching) and the FastAPI peer
(benchmarks/peers/fastapi_app.py: uvicorn, one worker, ONNX, no batching); with `--naive`, the
naive BentoML peer too (torch eager, no batching). onnxruntime in-process, single-row calls in a
tight loop, gives the limit.

Method. Load is closed loop: wrk keeps `concurrency` connections, each sending its next request
(one real row: the first example in models/model.json) as soon as the previous answer arrives,
so throughput and latency are those the server sustains at that concurrency. Machine noise drifts
by tens of percent within minutes on a shared 2-core box, so runs are interleaved: for each repeat,
for each concurrency, every server runs in turn (the order rotated between repeats), and ratios
are medians of per-repeat ratios (benchmarks/serving_report.py). Every server must first agree on
the sample row's label, and gets a warm-up run.

Writes benchmarks/results/serving.json (every run), serving-YYYY-MM-DD.md and latest.md (the table,
with the date, CPU model and core count); `--quick` writes serving-quick.* only.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from dataclasses import asdict
from datetime import date
from pathlib import Path
from types import FrameType

import onnxruntime as ort

from benchmarks.serving_load import WrkRun, run_wrk
from benchmarks.serving_report import console_table, markdown, ratios
from benchmarks.serving_servers import (
    DESCRIPTIONS,
    ROOT,
    contenders,
    model_store,
    predict_label,
    sample_row,
    started,
)
from model.atomic import write_json_atomically, write_text_atomically
from model.inference import Feeds, onnx_session, predict_proba
from rollout.bento_server import BentoServer

RESULTS = ROOT / "benchmarks/results"


def inprocess_rows_per_s(session: ort.InferenceSession, feeds: Feeds, seconds: float) -> float:
    """Single-row predict_proba calls back to back for `seconds`: the limit HTTP adds to."""
    for _ in range(200):
        predict_proba(session, feeds)
    calls, started_at = 0, time.perf_counter()
    while time.perf_counter() - started_at < seconds:
        predict_proba(session, feeds)
        calls += 1
    return calls / (time.perf_counter() - started_at)


def measure(
    args: argparse.Namespace, wrk: str, servers: dict[str, BentoServer], body_file: Path
) -> list[WrkRun]:
    """Interleaved rounds: per repeat, every concurrency x server, the order rotated."""
    for name, server in servers.items():
        print(f"warm-up: {name}, {args.warmup} s at c={max(args.concurrency)}", flush=True)
        run_wrk(wrk, server.url, _pid(server), body_file, max(args.concurrency), args.warmup)
    runs: list[WrkRun] = []
    names = list(servers)
    for repeat in range(args.repeats):
        order = names[repeat % len(names) :] + names[: repeat % len(names)]
        for concurrency in args.concurrency:
            for name in order:
                server = servers[name]
                if not server.alive():
                    raise SystemExit(f"{name} stopped in the middle of the run")
                figures = run_wrk(
                    wrk, server.url, _pid(server), body_file, concurrency, args.duration
                )
                run = WrkRun(name, concurrency, repeat, **figures)
                runs.append(run)
                print(
                    f"[{repeat + 1}/{args.repeats}] c={concurrency:<3} {name:<8}"
                    f" {run.requests_per_s:9,.0f} req/s  p99 {run.p99_ms:7.2f} ms"
                    f"  p99.9 {run.p999_ms:7.2f} ms  errors {run.errors}"
                    f"  cpu: server {run.server_cpu:.2f} wrk {run.wrk_cpu:.2f}"
                    f" other {run.other_cpu:.2f}",
                    flush=True,
                )
    return runs


def _pid(server: BentoServer) -> int:
    assert server.pid is not None, "started servers have a pid"
    return server.pid


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run (default 5)")
    parser.add_argument("--warmup", type=int, default=2, help="seconds per server (default 2)")
    parser.add_argument(
        "--concurrency", type=int, nargs="+", default=[1, 8, 32], help="default 1 8 32"
    )
    parser.add_argument("--naive", action="store_true", help="also run the naive torch peer")
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 repeat of 1 s")
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats, args.duration, args.warmup = 1, 1, 1
    return args


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds through the `finally`s that stop the servers


def write_results(args: argparse.Namespace, runs: list[WrkRun], limit: float, table: str) -> None:
    """The JSON of every run, and the Markdown table: dated, and as latest.md."""
    stem = "serving-quick" if args.quick else "serving"
    settings = {"repeats": args.repeats, "duration_s": args.duration, "cpu_count": os.cpu_count()}
    write_json_atomically(
        RESULTS / f"{stem}.json",
        {
            "settings": settings | {"concurrency": args.concurrency, "warmup_s": args.warmup},
            "contenders": DESCRIPTIONS,
            "inprocess_rows_per_s": limit,
            "http": [asdict(run) for run in runs],
            "ratios": {str(c): ratios(runs, c) for c in args.concurrency},
        },
    )
    names = (
        [f"{stem}.md"] if args.quick else [f"serving-{date.today().isoformat()}.md", "latest.md"]
    )
    for name in names:
        write_text_atomically(RESULTS / name, table)
    print(f"wrote benchmarks/results/{stem}.json and {', '.join(names)}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("wrk not found on PATH (Debian and Ubuntu: apt-get install wrk)")
    info = json.loads((ROOT / "models/model.json").read_text())
    feeds, body = sample_row(info)
    session = onnx_session(ROOT / "models/model.onnx", threads=1)
    expected = str(info["labels"][int(predict_proba(session, feeds)[0].argmax())])
    with tempfile.TemporaryDirectory(prefix="bench-serving-") as folder:
        scratch = Path(folder)
        body_file = scratch / "body.json"
        body_file.write_bytes(body)
        with started(contenders(scratch, model_store(), args.naive)) as servers:
            answers = {name: predict_label(name, s.url, body) for name, s in servers.items()}
            if set(answers.values()) != {expected}:
                raise SystemExit(f"predictions disagree on the sample row: {answers}, {expected=}")
            runs = measure(args, wrk, dict(servers), body_file)
    limit = statistics.median(inprocess_rows_per_s(session, feeds, 1.0) for _ in range(3))
    for concurrency in args.concurrency:
        print(console_table(runs, concurrency, list(answers)), end="\n\n")
    settings = {"repeats": args.repeats, "duration_s": args.duration}
    table = markdown(runs, args.concurrency, settings, limit)
    print(table)
    write_results(args, runs, limit, table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
