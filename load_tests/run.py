"""`make load-test`: serve the packaged model on a free loopback port and run Locust against it.

Headless and bounded (users, rate and duration from params.yaml `serving.slo`); writes Locust's
CSV and HTML under reports/load_test*, a JSON summary for the PR report, and exits non-zero when
the SLO is missed or the server never becomes ready.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from model.params import Params
from serving.bento_server import BentoServer, NotReadyError


def locust_command(host: str, params: Params, reports: Path) -> list[str]:
    slo = params.serving.slo
    return [
        str(Path(sys.executable).with_name("locust")),
        "--locustfile",
        "load_tests/locustfile.py",
        "--headless",
        "--host",
        host,
        "--users",
        str(slo.users),
        "--spawn-rate",
        str(slo.spawn_rate),
        "--run-time",
        f"{slo.run_time_s}s",
        "--stop-timeout",
        "5",
        "--csv",
        str(reports / "load_test"),
        "--html",
        str(reports / "load_test.html"),
        "--only-summary",
        "--loglevel",
        "WARNING",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", help="an already running server (default: start one)")
    parser.add_argument("--reports", type=Path, default=Path("reports"))
    args = parser.parse_args(argv)
    params = Params.load()
    args.reports.mkdir(parents=True, exist_ok=True)
    if args.host:
        return subprocess.run(
            locust_command(args.host, params, args.reports), check=False
        ).returncode
    print("load test: starting the service ...", flush=True)
    try:
        with BentoServer(ready_timeout_s=params.serving.ready_timeout_s) as server:
            slo = params.serving.slo
            print(
                f"load test: {slo.users} users x {slo.requests_per_user_s:g} req/s for "
                f"{slo.run_time_s} s against {server.url}",
                flush=True,
            )
            command = locust_command(server.url, params, args.reports)
            return subprocess.run(command, check=False).returncode
    except NotReadyError as error:
        print(f"load test: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
