"""Closed-loop HTTP load for benchmarks.serving: one wrk run, its report and the CPU it cost.

wrk (C, epoll) rather than a Python client, which saturates a core before these servers do. Its
CPU, the server's and everything else's on the machine are measured for each run, in cores busy,
so a reader can tell when the load generator or a neighbour spoiled the figures.
"""

from __future__ import annotations

import os
import re
import resource
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

LUA_SCRIPT = Path(__file__).resolve().parent / "peers/post.lua"
PERCENTILE = re.compile(r"^percentile ([\d.]+) (\d+)$", re.MULTILINE)  # printed by post.lua, in µs
REQUESTS_PER_S = re.compile(r"^Requests/sec:\s+([\d.]+)", re.MULTILINE)
REQUESTS = re.compile(r"^\s+(\d+) requests in", re.MULTILINE)
NON_2XX = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")
SOCKET_ERRORS = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
WANTED = {"50": "p50_ms", "99": "p99_ms", "99.9": "p999_ms"}


@dataclass(frozen=True)
class WrkRun:
    """One wrk run against one server; CPU figures are in cores busy (1.0 = one core)."""

    server: str
    concurrency: int
    repeat: int
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    p999_ms: float
    requests: int
    non_2xx: int
    socket_errors: dict[str, int]
    wall_s: float
    wrk_cpu: float
    server_cpu: float
    other_cpu: float

    @property
    def cpu_us(self) -> float:
        """Server CPU per request served, in microseconds."""
        return self.server_cpu / self.requests_per_s * 1e6

    @property
    def errors(self) -> int:
        return self.non_2xx + sum(self.socket_errors.values())


def parse_wrk(output: str) -> dict[str, Any]:
    """Requests/sec, p50/p99/p99.9, request and error counts of a run with post.lua."""
    percentiles = {p: int(us) / 1e3 for p, us in PERCENTILE.findall(output)}
    rate, total = REQUESTS_PER_S.search(output), REQUESTS.search(output)
    if rate is None or total is None or not set(WANTED) <= set(percentiles):
        raise ValueError(f"unexpected wrk output:\n{output}")
    non_2xx = NON_2XX.search(output)
    sockets = SOCKET_ERRORS.search(output)
    counts = [int(n) for n in sockets.groups()] if sockets else [0, 0, 0, 0]
    return {key: percentiles[p] for p, key in WANTED.items()} | {
        "requests_per_s": float(rate.group(1)),
        "requests": int(total.group(1)),
        # wrk counts statuses >= 400 here, whatever the label says
        "non_2xx": int(non_2xx.group(1)) if non_2xx else 0,
        "socket_errors": dict(zip(["connect", "read", "write", "timeout"], counts, strict=True)),
    }


def tree_cpu_seconds(pid: int) -> dict[int, float]:
    """User + system CPU seconds of a process and each of its descendants, by pid."""
    seconds: dict[int, float] = {}
    try:
        root = psutil.Process(pid)
        family = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return seconds
    for process in family:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        seconds[process.pid] = float(times.user + times.system)
    return seconds


def busy_cpu_seconds() -> float:
    """CPU seconds the whole machine spent not idle, summed over cores."""
    times = psutil.cpu_times()
    return float(sum(times) - times.idle - getattr(times, "iowait", 0.0))


def children_cpu_seconds() -> float:
    """User + system CPU of reaped children: wrk is the only one reaped while we measure."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_wrk(
    wrk: str, url: str, server_pid: int, body_file: Path, concurrency: int, seconds: int
) -> dict[str, Any]:
    """One closed-loop run on `url`/predict; wrk's report parsed, plus CPU in cores busy."""
    command = [wrk, "-t1", f"-c{concurrency}", f"-d{seconds}s", "--timeout", "5s"]
    command += ["-s", str(LUA_SCRIPT), f"{url}/predict"]
    server_before = tree_cpu_seconds(server_pid)
    wrk_before, busy_before = children_cpu_seconds(), busy_cpu_seconds()
    started = time.perf_counter()
    result = subprocess.run(
        command,
        env=os.environ | {"WRK_BODY_FILE": str(body_file)},
        capture_output=True,
        text=True,
        timeout=seconds + 30,
        check=False,
    )
    wall = time.perf_counter() - started
    wrk_cpu = children_cpu_seconds() - wrk_before
    busy = busy_cpu_seconds() - busy_before
    server_after = tree_cpu_seconds(server_pid)
    server_cpu = sum(after - server_before.get(pid, 0.0) for pid, after in server_after.items())
    if result.returncode != 0:
        raise SystemExit(f"wrk failed ({result.returncode}): {result.stderr}{result.stdout}")
    return parse_wrk(result.stdout) | {
        "wall_s": wall,
        "wrk_cpu": wrk_cpu / wall,
        "server_cpu": server_cpu / wall,
        "other_cpu": max(0.0, busy - wrk_cpu - server_cpu) / wall,
    }
