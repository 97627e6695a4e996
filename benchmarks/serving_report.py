"""Tables for benchmarks.serving: medians per server, ratios to the FastAPI peer, the Markdown file.

Ratios are medians of per-repeat ratios (each repeat runs the servers back to back), which cancel
most of the drift of a shared machine; their range is shown in brackets. Throughput ratios over 1
mean the service serves more; latency ratios over 1 mean its tail is slower.
"""

from __future__ import annotations

import datetime
import os
import platform
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path

from benchmarks.serving_load import WrkRun

METRICS = ("requests_per_s", "p50_ms", "p99_ms", "p999_ms", "wrk_cpu", "server_cpu", "other_cpu")
# CPU per request (server CPU over requests served) is the figure neighbours disturb least: on a
# shared machine a server's throughput follows the CPU it is given, its cost per request does not.
RATIOS = {"requests_per_s": "req/s", "p99_ms": "p99", "p999_ms": "p99.9", "cpu_us": "CPU/req"}
PEER = "fastapi"
# The bar of issue 18: with several connections, the service's p99 within 1.5x FastAPI's and
# its throughput 1.3x FastAPI's; at one connection, at least 0.95x the throughput.
MAX_P99_RATIO = 1.5
MIN_THROUGHPUT_RATIO = 1.3
MIN_SINGLE_CONNECTION_RATIO = 0.95

Ratio = dict[str, float]


def summarise(runs: Sequence[WrkRun], server: str, concurrency: int) -> dict[str, float]:
    """Medians over repeats (errors are summed, not medians)."""
    mine = [r for r in runs if r.server == server and r.concurrency == concurrency]
    return {key: statistics.median(getattr(r, key) for r in mine) for key in METRICS} | {
        "cpu_us": statistics.median(r.cpu_us for r in mine),
        "errors": sum(r.errors for r in mine),
    }


def ratios(runs: Sequence[WrkRun], concurrency: int, peer: str = PEER) -> dict[str, Ratio]:
    """service/peer for each metric in RATIOS: median, min and max of the per-repeat ratios."""
    by_key = {(r.server, r.repeat): r for r in runs if r.concurrency == concurrency}
    repeats = sorted({repeat for server, repeat in by_key if server == peer})
    out: dict[str, Ratio] = {}
    for metric in RATIOS:
        values = [
            getattr(by_key["service", i], metric) / getattr(by_key[peer, i], metric)
            for i in repeats
        ]
        out[metric] = {"median": statistics.median(values), "min": min(values), "max": max(values)}
    return out


def verdict(all_ratios: Mapping[int, Mapping[str, Ratio]], errors: int) -> list[str]:
    """Each target of issue 18 missed, in words (empty: all met)."""
    missed = [f"{errors} errors"] if errors else []
    for concurrency, values in all_ratios.items():
        p99 = values["p99_ms"]["median"]
        throughput = values["requests_per_s"]["median"]
        if concurrency > 1 and p99 > MAX_P99_RATIO:
            missed.append(f"p99 ratio {p99:.2f} > {MAX_P99_RATIO} at c={concurrency}")
        floor = MIN_THROUGHPUT_RATIO if concurrency > 1 else MIN_SINGLE_CONNECTION_RATIO
        if throughput < floor:
            missed.append(f"req/s ratio {throughput:.2f} < {floor} at c={concurrency}")
    return missed


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _cell(ratio: Ratio) -> str:
    return f"{ratio['median']:.2f}x [{ratio['min']:.2f}-{ratio['max']:.2f}]"


def markdown(
    runs: Sequence[WrkRun],
    concurrencies: Sequence[int],
    settings: Mapping[str, object],
    inprocess_rows_per_s: float,
) -> str:
    """The results file: what ran where, then one row per concurrency, service beside FastAPI."""
    today = datetime.date.today().isoformat()
    repeats, duration = settings["repeats"], settings["duration_s"]
    lines = [
        f"# Serving benchmark, {today}",
        "",
        f"{cpu_model()}, {os.cpu_count()} cores; wrk closed loop, one-row requests, {duration} s"
        f" per run, {repeats} interleaved repeats (medians; ratios are medians of per-repeat"
        " ratios, range in brackets). Service: `serving/service.py` (BentoML); peer: FastAPI +"
        " uvicorn (uvloop, httptools), same ONNX model, validation and response JSON."
        f" onnxruntime in-process: {inprocess_rows_per_s:,.0f} rows/s.",
        "",
        "| connections | service req/s | FastAPI req/s | req/s ratio | service p99 ms"
        " | FastAPI p99 ms | p99 ratio | service p99.9 ms | FastAPI p99.9 ms | p99.9 ratio"
        " | CPU µs/req service, FastAPI | errors |",
        "|---:|---:|---:|---|---:|---:|---|---:|---:|---|---:|---:|",
    ]
    all_ratios = {c: ratios(runs, c) for c in concurrencies}
    errors = 0
    for concurrency in concurrencies:
        mine, peer = summarise(runs, "service", concurrency), summarise(runs, PEER, concurrency)
        errors += int(mine["errors"] + peer["errors"])
        values = all_ratios[concurrency]
        lines.append(
            f"| {concurrency} | {mine['requests_per_s']:,.0f} | {peer['requests_per_s']:,.0f}"
            f" | {_cell(values['requests_per_s'])} | {mine['p99_ms']:.2f} | {peer['p99_ms']:.2f}"
            f" | {_cell(values['p99_ms'])} | {mine['p999_ms']:.2f} | {peer['p999_ms']:.2f}"
            f" | {_cell(values['p999_ms'])} | {mine['cpu_us']:.0f}, {peer['cpu_us']:.0f}"
            f" | {mine['errors'] + peer['errors']:.0f} |"
        )
    missed = verdict(all_ratios, errors)
    lines += ["", "Targets (issue 18): " + ("all met." if not missed else "; ".join(missed))]
    return "\n".join(lines) + "\n"


def console_table(runs: Sequence[WrkRun], concurrency: int, servers: Sequence[str]) -> str:
    """Medians per server at one concurrency, with CPU in cores busy."""
    header = f"  {'server':<10}" + "".join(f" {m:>11}" for m in METRICS) + f" {'errors':>7}"
    lines = [f"concurrency {concurrency} (medians over repeats)", header]
    for server in servers:
        row = summarise(runs, server, concurrency)
        cells = "".join(f" {row[m]:11.2f}" for m in METRICS)
        lines.append(f"  {server:<10}{cells} {row['errors']:7.0f}")
    return "\n".join(lines)
