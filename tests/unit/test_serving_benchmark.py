"""The serving benchmark reads wrk's tail, judges ratios per repeat and dates its table."""

import os
from datetime import date

from benchmarks.serving_load import WrkRun, parse_wrk
from benchmarks.serving_report import markdown, ratios, verdict

WRK_OUTPUT = """Running 5s test @ http://127.0.0.1:1/predict
  1 threads and 8 connections
  21000 requests in 5.00s, 6.00MB read
Requests/sec:   4200.00
Transfer/sec:      1.20MB
percentile 50 1500
percentile 99 4100
percentile 99.9 9800
"""


def _run(server: str, concurrency: int, repeat: int, rate: float, p99: float) -> WrkRun:
    return WrkRun(
        server, concurrency, repeat, rate, 1.0, p99, 2 * p99, 100, 0,
        {"connect": 0, "read": 0, "write": 0, "timeout": 0}, 5.0, 0.1, 1.0, 0.0,
    )  # fmt: skip


def test_wrk_report_gives_p99_9_in_milliseconds() -> None:
    figures = parse_wrk(WRK_OUTPUT)
    assert (figures["p50_ms"], figures["p99_ms"], figures["p999_ms"]) == (1.5, 4.1, 9.8)
    assert figures["requests_per_s"] == 4200.0
    assert figures["non_2xx"] == 0


def test_ratios_are_medians_of_per_repeat_ratios() -> None:
    runs = [
        _run("service", 8, 0, 300, 3),
        _run("fastapi", 8, 0, 100, 1),
        _run("service", 8, 1, 100, 1),
        _run("fastapi", 8, 1, 100, 1),
        _run("service", 8, 2, 200, 2),
        _run("fastapi", 8, 2, 100, 1),
    ]
    throughput = ratios(runs, 8)["requests_per_s"]
    assert throughput == {"median": 2.0, "min": 1.0, "max": 3.0}


def test_verdict_holds_p99_to_the_bar_only_under_concurrency() -> None:
    def ratio(value: float) -> dict[str, float]:
        return {"median": value, "min": value, "max": value}

    calm = {"requests_per_s": ratio(1.0), "p99_ms": ratio(3.0), "p999_ms": ratio(1.0)}
    loaded = {"requests_per_s": ratio(1.4), "p99_ms": ratio(1.6), "p999_ms": ratio(1.0)}
    assert verdict({1: calm, 8: loaded}, errors=0) == ["p99 ratio 1.60 > 1.5 at c=8"]


def test_table_names_its_date_cores_and_every_concurrency() -> None:
    runs = [_run(server, c, 0, 100, 1) for server in ("service", "fastapi") for c in (1, 8)]
    table = markdown(runs, [1, 8], {"repeats": 1, "duration_s": 5}, 1000.0)
    assert date.today().isoformat() in table
    assert f"{os.cpu_count()} cores" in table
    assert "| 1 |" in table
    assert "| 8 |" in table
