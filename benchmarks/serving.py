"""Benchmark: the real BentoML service against its peers, under the same HTTP load, side by side.

Contenders, all started in one run, each on its own free loopback port:
  (a) onnxruntime in-process: single-row calls in a tight loop, no HTTP (the limit)
  (b) the real service, serving/service.py (BentoML, ONNX, opportunistic batching)
  (c) the naive peer, benchmarks/peers/naive_service.py (BentoML, torch eager, no batching)
  (d) FastAPI + uvicorn, one worker, benchmarks/peers/fastapi_app.py (ONNX, no batching)

Method. Load is closed loop: wrk keeps `concurrency` connections, each sending its next request
(one real row: the first example export stored in models/model.json) as soon as the previous answer
arrives, so throughput and latency are those the server sustains at that concurrency. wrk (C,
epoll) rather than a Python client, which saturates a core before these servers do; its CPU is
measured and printed so a reader can check it is not the bottleneck. Machine noise drifts by tens
of percent within minutes on a shared 2-core box, so runs are interleaved: for each repeat, for
each concurrency, every server runs in turn (the order rotated between repeats), and the table
shows medians over repeats; the ratios are medians of per-repeat ratios, which cancel most of the
drift. Before measuring, every server must agree on the sample row's label and gets a warm-up run.
CPU is reported in cores busy for each run: the server's process tree, wrk, and everything else on
the machine ("other"), which shows when a neighbour competed for the two cores.

BentoML servers get their own BENTOML_HOME in a scratch folder (the real one sees the project's
model store through a symlink): `bentoml serve` empties its home's Prometheus folder at start-up,
which would wipe the metrics of a service already running from the project store.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import numpy as np
import onnxruntime as ort
import psutil

from model.atomic import write_json_atomically
from model.inference import Feeds, onnx_session, predict_proba
from model.inputs import InputLayout

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
LUA_SCRIPT = ROOT / "benchmarks/peers/post.lua"
AVOID_PORTS = frozenset({3000, 3111})  # taken by services people run by hand
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0
LOG_TAIL_LINES = 40
UVICORN_FLAGS = ("--workers", "1", "--no-access-log")

DESCRIPTIONS = {
    "onnx": "(a) onnxruntime in-process, 1 thread",
    "bentoml": "(b) serving/service.py: BentoML, ONNX, batching",
    "naive": "(c) BentoML, torch eager, no batching",
    "fastapi": "(d) FastAPI + uvicorn, ONNX, no batching",
}


@dataclass(frozen=True)
class Server:
    """How to start one HTTP contender from the repository root."""

    name: str
    command: list[str]
    env: dict[str, str]


@dataclass
class Running:
    """A started server: its process group leader, port and log file."""

    server: Server
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass(frozen=True)
class WrkRun:
    """One wrk run against one server; CPU figures are in cores busy (1.0 = one core)."""

    server: str
    concurrency: int
    repeat: int
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    requests: int
    non_2xx: int
    socket_errors: dict[str, int]
    wall_s: float
    wrk_cpu: float
    server_cpu: float
    other_cpu: float

    @property
    def errors(self) -> int:
        return self.non_2xx + sum(self.socket_errors.values())


@dataclass(frozen=True)
class InProcessRun:
    """Single-row onnxruntime calls in a tight loop."""

    repeat: int
    rows_per_s: float
    p50_ms: float
    p99_ms: float
    calls: int


@dataclass
class Results:
    inprocess: list[InProcessRun] = field(default_factory=list)
    http: list[WrkRun] = field(default_factory=list)


# --- the servers -------------------------------------------------------------------------------


def free_port(taken: set[int]) -> int:
    """A loopback port the kernel calls free right now, outside `taken` and AVOID_PORTS."""
    while True:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port: int = probe.getsockname()[1]
        if port not in taken and port not in AVOID_PORTS:
            taken.add(port)
            return port


def bentoml_home(scratch: Path, name: str, model_store: Path | None) -> str:
    """A private BENTOML_HOME, seeing `model_store` (a `models` folder) through a symlink."""
    home = scratch / f"bentoml-{name}"
    home.mkdir()
    if model_store is not None:
        (home / "models").symlink_to(model_store, target_is_directory=True)
    return str(home)


def http_servers(scratch: Path, model_store: Path) -> list[Server]:
    """The three HTTP contenders, in their default order."""
    bentoml = str(VENV_BIN / "bentoml")
    quiet = {"BENTOML_DO_NOT_TRACK": "true"}
    return [
        Server(
            "bentoml",
            [bentoml, "serve", "serving.service:Classifier"],
            quiet | {"BENTOML_HOME": bentoml_home(scratch, "bentoml", model_store)},
        ),
        Server(
            "naive",
            [bentoml, "serve", "benchmarks.peers.naive_service:NaivePeer"],
            quiet | {"BENTOML_HOME": bentoml_home(scratch, "naive", None)},
        ),
        Server(
            "fastapi",
            [sys.executable, "-m", "uvicorn", "benchmarks.peers.fastapi_app:app", *UVICORN_FLAGS],
            {"PEER_ONNX_MODEL": "models/model.onnx"},
        ),
    ]


def start(server: Server, port: int, scratch: Path) -> Running:
    """Start in a new session: its own process group, which stop() signals as a whole."""
    log = scratch / f"{server.name}.log"
    with log.open("wb") as handle:
        process = subprocess.Popen(
            [*server.command, "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT,
            env=os.environ | server.env,
            stdin=subprocess.DEVNULL,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Running(server, port, process, log)


def stop(running: Running) -> None:
    """SIGTERM the process group, SIGKILL it after STOP_TIMEOUT_S, then any stray descendant."""
    try:
        # BentoML workers call setsid, so the group does not reach them: remember them by process
        # (psutil refuses to signal a pid that was reused since).
        family = psutil.Process(running.process.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        family = []
    _signal_group(running.process.pid, signal.SIGTERM)
    try:
        running.process.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        _signal_group(running.process.pid, signal.SIGKILL)
        running.process.wait(timeout=STOP_TIMEOUT_S)
    for process in family:
        with suppress(psutil.NoSuchProcess):
            process.kill()


def _signal_group(pgid: int, signum: signal.Signals) -> None:
    with suppress(ProcessLookupError):
        os.killpg(pgid, signum)


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    text = path.read_text(errors="replace").splitlines()[-lines:]
    return "\n".join(f"    | {line}" for line in text)


def wait_ready(running: Running, started: float) -> None:
    """Poll /readyz until 200; exit with the log's tail after READY_TIMEOUT_S or a crash."""
    name = running.server.name
    while time.monotonic() - started < READY_TIMEOUT_S:
        code = running.process.poll()
        if code is not None:
            raise SystemExit(
                f"{name} exited with code {code} before it was ready; its log ends:\n"
                + log_tail(running.log)
            )
        try:
            with urllib.request.urlopen(f"{running.url}/readyz", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.25)
    raise SystemExit(
        f"{name} not ready within {READY_TIMEOUT_S:.0f} s on {running.url} (a BentoML worker that "
        "fails at start-up is restarted in a loop); its log ends:\n" + log_tail(running.log)
    )


def predict_label(running: Running, body: bytes) -> str:
    """POST the sample body once and return the label of its only row."""
    request = urllib.request.Request(
        f"{running.url}/predict", data=body, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            answer = json.loads(response.read())
    except urllib.error.HTTPError as error:
        raise SystemExit(
            f"{running.server.name} answered {error.code} to the sample row: {error.read()[:500]!r}"
        ) from None
    except (urllib.error.URLError, ConnectionError, TimeoutError) as error:
        raise SystemExit(f"{running.server.name} did not answer the sample row: {error}") from None
    return str(answer[0]["label"])


# --- the load ----------------------------------------------------------------------------------

UNITS_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}
PERCENTILE = re.compile(r"^\s+(50|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s|m|h)\s*$", re.MULTILINE)
REQUESTS_PER_S = re.compile(r"^Requests/sec:\s+([\d.]+)", re.MULTILINE)
REQUESTS = re.compile(r"^\s+(\d+) requests in", re.MULTILINE)
NON_2XX = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")
SOCKET_ERRORS = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")


def parse_wrk(output: str) -> dict[str, Any]:
    """Requests/sec, p50/p99 (from --latency), request and error counts of wrk's report."""
    percentiles = {int(p): float(v) * UNITS_MS[unit] for p, v, unit in PERCENTILE.findall(output)}
    rate, total = REQUESTS_PER_S.search(output), REQUESTS.search(output)
    if rate is None or total is None or set(percentiles) != {50, 99}:
        raise ValueError(f"unexpected wrk output:\n{output}")
    non_2xx = NON_2XX.search(output)
    sockets = SOCKET_ERRORS.search(output)
    counts = [int(n) for n in sockets.groups()] if sockets else [0, 0, 0, 0]
    return {
        "requests_per_s": float(rate.group(1)),
        "p50_ms": percentiles[50],
        "p99_ms": percentiles[99],
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
    wrk: str, running: Running, body_file: Path, concurrency: int, seconds: int
) -> dict[str, Any]:
    """One closed-loop wrk run; wrk's report parsed, plus CPU in cores busy for its duration."""
    command = [wrk, "-t1", f"-c{concurrency}", f"-d{seconds}s", "--latency", "--timeout", "5s"]
    command += ["-s", str(LUA_SCRIPT), f"{running.url}/predict"]
    server_before = tree_cpu_seconds(running.process.pid)
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
    server_after = tree_cpu_seconds(running.process.pid)
    server_cpu = sum(after - server_before.get(pid, 0.0) for pid, after in server_after.items())
    if result.returncode != 0:
        raise SystemExit(f"wrk failed ({result.returncode}): {result.stderr}{result.stdout}")
    return parse_wrk(result.stdout) | {
        "wall_s": wall,
        "wrk_cpu": wrk_cpu / wall,
        "server_cpu": server_cpu / wall,
        "other_cpu": max(0.0, busy - wrk_cpu - server_cpu) / wall,
    }


def measure_inprocess(
    session: ort.InferenceSession, feeds: Feeds, seconds: float, repeat: int
) -> InProcessRun:
    """Single-row predict_proba calls back to back for `seconds`, timed one by one."""
    for _ in range(200):
        predict_proba(session, feeds)
    times: list[float] = []
    started = time.perf_counter()
    deadline = started + seconds
    now = started
    while now < deadline:
        before = time.perf_counter()
        predict_proba(session, feeds)
        now = time.perf_counter()
        times.append(now - before)
    p50, p99 = np.percentile(times, [50, 99]) * 1e3
    return InProcessRun(repeat, len(times) / (now - started), float(p50), float(p99), len(times))


# --- the report --------------------------------------------------------------------------------


def rotated(items: Sequence[Running], shift: int) -> list[Running]:
    shift %= len(items)
    return [*items[shift:], *items[:shift]]


def summarise(results: Results, concurrency: int) -> dict[str, dict[str, float]]:
    """Medians over repeats per server at one concurrency (errors are summed, not medians)."""
    summary: dict[str, dict[str, float]] = {}
    for name in ("bentoml", "naive", "fastapi"):
        runs = [r for r in results.http if r.server == name and r.concurrency == concurrency]
        summary[name] = {
            key: statistics.median(getattr(r, key) for r in runs)
            for key in ("requests_per_s", "p50_ms", "p99_ms", "wrk_cpu", "server_cpu", "other_cpu")
        } | {"errors": sum(r.errors for r in runs), "repeats": len(runs)}
    return summary


def ratios(results: Results, concurrency: int) -> dict[str, dict[str, float]]:
    """(b)/(d) and (b)/(c) for req/s and p99: medians, min and max of the per-repeat ratios."""
    by_key = {(r.server, r.repeat): r for r in results.http if r.concurrency == concurrency}
    repeats = sorted({repeat for _, repeat in by_key})
    out: dict[str, dict[str, float]] = {}
    for peer in ("fastapi", "naive"):
        for metric in ("requests_per_s", "p99_ms"):
            values = [
                getattr(by_key["bentoml", i], metric) / getattr(by_key[peer, i], metric)
                for i in repeats
            ]
            out[f"bentoml/{peer} {metric}"] = {
                "median": statistics.median(values),
                "min": min(values),
                "max": max(values),
            }
    return out


def table(
    concurrency: int, summary: Mapping[str, Mapping[str, float]], inprocess: InProcessRun
) -> str:
    header = (
        f"  {'contender':<46} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}"
        f" {'srv cpu':>8} {'wrk cpu':>8} {'other':>6}"
    )
    lines = [f"concurrency {concurrency}  (medians over repeats; CPU in cores busy)", header]
    lines.append(
        f"  {DESCRIPTIONS['onnx']:<46} {inprocess.rows_per_s:9,.0f} {inprocess.p50_ms:8.3f}"
        f" {inprocess.p99_ms:8.3f} {'-':>7} {'-':>8} {'-':>8} {'-':>6}"
    )
    for name, row in summary.items():
        lines.append(
            f"  {DESCRIPTIONS[name]:<46} {row['requests_per_s']:9,.0f} {row['p50_ms']:8.2f}"
            f" {row['p99_ms']:8.2f} {row['errors']:7.0f} {row['server_cpu']:8.2f}"
            f" {row['wrk_cpu']:8.2f} {row['other_cpu']:6.2f}"
        )
    return "\n".join(lines)


def ratio_table(all_ratios: Mapping[int, Mapping[str, Mapping[str, float]]]) -> str:
    columns = [
        ("bentoml/fastapi requests_per_s", "b/d req/s"),
        ("bentoml/fastapi p99_ms", "b/d p99"),
        ("bentoml/naive requests_per_s", "b/c req/s"),
        ("bentoml/naive p99_ms", "b/c p99"),
    ]
    lines = [
        "ratios, median of per-repeat ratios [min-max]: req/s over 1 means (b) serves more,",
        "p99 over 1 means (b) is slower at the tail",
        "  conc" + "".join(f" {title:>20}" for _, title in columns),
    ]
    for concurrency, values in all_ratios.items():
        cells = [_ratio_cell(values[key]) for key, _ in columns]
        lines.append(f"  {concurrency:>4}" + "".join(f" {cell:>20}" for cell in cells))
    return "\n".join(lines)


def _ratio_cell(ratio: Mapping[str, float]) -> str:
    return f"{ratio['median']:.2f}x [{ratio['min']:.2f}-{ratio['max']:.2f}]"


def noise_note(results: Results) -> str:
    """How hard wrk and other processes worked: the two things that would spoil the figures."""
    wrk = max(results.http, key=lambda run: run.wrk_cpu)
    other = max(results.http, key=lambda run: run.other_cpu)
    wrk_median = statistics.median(run.wrk_cpu for run in results.http)
    other_median = statistics.median(run.other_cpu for run in results.http)
    return (
        f"load generator: wrk used at most {wrk.wrk_cpu:.2f} of its one core "
        f"({wrk.server}, c={wrk.concurrency}), median {wrk_median:.2f}\n"
        f"other processes: at most {other.other_cpu:.2f} cores busy during a run "
        f"({other.server}, c={other.concurrency}, repeat {other.repeat + 1}), "
        f"median {other_median:.2f}"
    )


# --- the run -----------------------------------------------------------------------------------


def sample_row(info: Mapping[str, Any]) -> tuple[Feeds, bytes]:
    """The model's first example row (model.json): its feeds for onnxruntime and the JSON body."""
    examples = info.get("examples") or []
    if not examples:
        raise SystemExit("models/model.json has no examples: export the model again (dvc repro)")
    row = examples[0]
    return InputLayout.from_metadata(info).feeds([row]), json.dumps({"rows": [row]}).encode()


def model_store() -> Path:
    store = Path(os.environ.get("BENTOML_HOME", ROOT / ".bentoml")) / "models"
    if not store.is_dir():
        raise SystemExit(f"no BentoML model store at {store}: import the model first")
    return store


@contextmanager
def started_servers(servers: Sequence[Server], scratch: Path) -> Iterator[list[Running]]:
    """Start every server at once, wait until all are ready, and stop them all on the way out."""
    with ExitStack() as stack:
        taken: set[int] = set()
        started = time.monotonic()
        running = []
        for server in servers:
            one = start(server, free_port(taken), scratch)
            stack.callback(stop, one)
            running.append(one)
            print(f"started {server.name} on {one.url} (log {one.log})", flush=True)
        for one in running:
            wait_ready(one, started)
            print(f"{one.server.name} ready after {time.monotonic() - started:.1f} s", flush=True)
        try:
            yield running
        except BaseException:  # SystemExit too: wrk failing is how a dead server shows
            for one in running:
                report_state(one)
            raise


def report_state(running: Running) -> None:
    """On failure: whether the server is still up, and the end of its log."""
    code = running.process.poll()
    state = "still running" if code is None else f"exited with code {code}"
    print(
        f"{running.server.name} ({state}), its log ends:\n{log_tail(running.log)}",
        file=sys.stderr,
    )


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds through the `finally`s that stop the servers


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run (default 5)")
    parser.add_argument("--warmup", type=int, default=1, help="seconds per server (default 1)")
    parser.add_argument(
        "--concurrency", type=int, nargs="+", default=[1, 8, 32], help="default 1 8 32"
    )
    parser.add_argument(
        "--out",
        type=Path,
        help="JSON results (default benchmarks/results/serving.json, serving-quick.json "
        "with --quick so a smoke run never replaces real figures)",
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 repeat of 1 s, c=1 8")
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats, args.duration, args.warmup, args.concurrency = 1, 1, 1, [1, 8]
    if args.out is None:
        name = "serving-quick.json" if args.quick else "serving.json"
        args.out = ROOT / "benchmarks/results" / name
    return args


def measure(
    args: argparse.Namespace,
    wrk: str,
    running: list[Running],
    session: ort.InferenceSession,
    feeds: Feeds,
    body_file: Path,
) -> Results:
    """Interleaved rounds: per repeat the in-process limit, then every concurrency x server."""
    results = Results()
    for one in running:
        print(f"warm-up: {one.server.name}, {args.warmup} s at c={max(args.concurrency)}")
        run_wrk(wrk, one, body_file, max(args.concurrency), args.warmup)
    for repeat in range(args.repeats):
        tag = f"[repeat {repeat + 1}/{args.repeats}]"
        limit = measure_inprocess(session, feeds, args.duration, repeat)
        results.inprocess.append(limit)
        print(f"{tag} onnx in-process: {limit.rows_per_s:,.0f} rows/s, p99 {limit.p99_ms:.3f} ms")
        for concurrency in args.concurrency:
            for one in rotated(running, repeat):
                print(f"{tag} c={concurrency:<3} {one.server.name:<8}", end=" ", flush=True)
                if one.process.poll() is not None:
                    raise SystemExit(f"\n{one.server.name} stopped in the middle of the run")
                figures = run_wrk(wrk, one, body_file, concurrency, args.duration)
                run = WrkRun(one.server.name, concurrency, repeat, **figures)
                results.http.append(run)
                print(
                    f"{run.requests_per_s:9,.0f} req/s  p50 {run.p50_ms:7.2f} ms  "
                    f"p99 {run.p99_ms:7.2f} ms  errors {run.errors}  "
                    f"cpu: server {run.server_cpu:.2f} wrk {run.wrk_cpu:.2f} other "
                    f"{run.other_cpu:.2f}",
                    flush=True,
                )
    return results


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
        servers = http_servers(scratch, model_store())
        with started_servers(servers, scratch) as running:
            answers = {one.server.name: predict_label(one, body) for one in running}
            print(f"sample row: in-process says {expected!r}; servers say {answers}")
            if set(answers.values()) != {expected}:
                raise SystemExit(f"predictions disagree on the sample row: {answers}")
            results = measure(args, wrk, running, session, feeds, body_file)

    limit = statistics.median(run.rows_per_s for run in results.inprocess)
    inprocess = min(results.inprocess, key=lambda run: abs(run.rows_per_s - limit))
    summaries = {c: summarise(results, c) for c in args.concurrency}
    all_ratios = {c: ratios(results, c) for c in args.concurrency}
    print()
    for concurrency, summary in summaries.items():
        print(table(concurrency, summary, inprocess), end="\n\n")
    print(ratio_table(all_ratios))
    print(noise_note(results))
    write_json_atomically(
        args.out,
        {
            "settings": {
                "repeats": args.repeats,
                "duration_s": args.duration,
                "warmup_s": args.warmup,
                "concurrency": args.concurrency,
                "quick": args.quick,
                "cpu_count": os.cpu_count(),
                "service_sha256": sha256(ROOT / "serving/service.py"),
                "params_sha256": sha256(ROOT / "params.yaml"),
            },
            "contenders": DESCRIPTIONS,
            "sample_labels": answers | {"onnx": expected},
            "inprocess": [asdict(run) for run in results.inprocess],
            "http": [asdict(run) for run in results.http],
            "summary": {str(c): s for c, s in summaries.items()},
            "ratios": {str(c): r for c, r in all_ratios.items()},
        },
    )
    print(f"\nwrote {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
