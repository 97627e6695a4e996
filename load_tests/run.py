"""`make load-test`: serve the packaged model on a free loopback port and run Locust against it.

Headless and bounded (users, rate and duration from params.yaml `serving.slo`); writes Locust's
CSV and HTML under reports/load_test*, a JSON summary for the PR report, and exits non-zero when
the SLO is missed or the server never becomes ready. Locust sends held-out rows laid out for the
model the server serves (its model.json in the BentoML store).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from model.model_store import METADATA_FILE, use_project_store
from model.params import Params
from rollout.bento_server import BentoServer, NotReadyError
from rollout.traffic import LOCUSTFILE, MODEL_INFO_ENV, ROWS_ENV, SUMMARY_ENV


def packaged_model(params: Params) -> tuple[str, Path]:
    """The store tag of the latest packaged model and its model.json."""
    use_project_store()
    import bentoml

    stored = bentoml.models.get(f"{params.registry.model_name}:latest")
    return str(stored.tag), Path(stored.path) / METADATA_FILE


def locust_command(host: str, params: Params, reports: Path) -> list[str]:
    slo = params.serving.slo
    return [
        str(Path(sys.executable).with_name("locust")),
        "--locustfile",
        str(LOCUSTFILE),
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
    parser = argparse.ArgumentParser(prog="python -m load_tests.run", description=__doc__)
    parser.add_argument("--reports", type=Path, required=True, help="CSV, HTML and JSON go here")
    parser.add_argument("--rows", type=Path, required=True, help="held-out rows (CSV) to send")
    parser.add_argument("--host", help="an already running server (default: start one)")
    parser.add_argument("--model-info", type=Path, help="with --host: the model.json it serves")
    args = parser.parse_args(argv)
    params = Params.load()
    args.reports.mkdir(parents=True, exist_ok=True)
    env = os.environ | {
        SUMMARY_ENV: str(args.reports / "load_test.json"),
        ROWS_ENV: str(args.rows),
    }
    if args.host:
        if args.model_info is None:
            parser.error("--host needs --model-info (the model.json of what it serves)")
        command = locust_command(args.host, params, args.reports)
        env[MODEL_INFO_ENV] = str(args.model_info)
        return subprocess.run(command, env=env, check=False).returncode
    tag, info = packaged_model(params)
    env[MODEL_INFO_ENV] = str(info)
    return against_new_server(tag, params, args.reports, env)


def against_new_server(tag: str, params: Params, reports: Path, env: dict[str, str]) -> int:
    """Serve `tag` on a free loopback port for the run; 1 when it never gets ready."""
    print(f"load test: starting the service with {tag} ...", flush=True)
    try:
        with BentoServer(
            env={"SERVING_MODEL_TAG": tag}, ready_timeout_s=params.serving.ready_timeout_s
        ) as server:
            slo = params.serving.slo
            print(
                f"load test: {slo.users} users x {slo.requests_per_user_s:g} req/s for "
                f"{slo.run_time_s} s against {server.url}",
                flush=True,
            )
            command = locust_command(server.url, params, reports)
            return subprocess.run(command, env=env, check=False).returncode
    except NotReadyError as error:
        print(f"load test: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
