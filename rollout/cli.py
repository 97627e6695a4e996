"""Canary, blue-green and shadow rollouts on one machine: nginx in front of BentoML servers.

    python -m rollout canary        # steps from params.yaml, analysis, promote/roll back
    python -m rollout resume        # take over an interrupted canary and carry it on
    python -m rollout blue-green    # switch all at once; `confirm` or `switch-back` later
    python -m rollout shadow        # mirror live traffic to the candidate, compare, stop
    python -m rollout rollback      # back to the previous champion, at any time
    python -m rollout status        # the persisted state
    python -m rollout stop          # stop what --keep-serving or blue-green left running

Options name the versions (BentoML store tags; default: champion as stable, challenger as the
new version), and `--no-traffic` leaves the driving to real clients. docs/rollout.md explains
the state file and every decision's reason.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from model.artifacts import ArtifactError
from model.atomic import write_json_atomically
from model.model_store import use_project_store
from model.params import Params
from rollout.bento_server import DEFAULT_SERVICE
from rollout.blue_green import finish_blue_green, run_blue_green
from rollout.canary import resume_canary, run_canary
from rollout.rollback import rollback_to_previous, stop_all
from rollout.servers import Setup, live_serving, log
from rollout.shadow import run_shadow
from rollout.state import Decision, RolloutState, dump, load_state, save_state
from rollout.traffic import HELD_OUT_ROWS
from rollout.versions import (
    default_tags,
    gate_report_for,
    load_test_for,
    model_info,
    release_problems,
)

COMMANDS = [
    "canary", "resume", "blue-green", "confirm", "switch-back", "shadow", "rollback", "status",
    "stop",
]  # fmt: skip
SUCCESS = {"canary": "promoted", "resume": "promoted", "blue-green": "switched", "shadow": "done"}


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m rollout",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("command", choices=COMMANDS)
    parser.add_argument("--stable-tag", help="BentoML model tag to keep (default: the champion)")
    parser.add_argument("--canary-tag", help="BentoML model tag to roll out (default: challenger)")
    parser.add_argument("--canary-service", default=DEFAULT_SERVICE, help="its BentoML service")
    parser.add_argument("--no-traffic", action="store_true", help="do not start the Locust traffic")
    parser.add_argument("--keep-serving", action="store_true", help="leave nginx and servers up")
    parser.add_argument(
        "--allow-breaking",
        action="store_true",
        help="blue-green: switch to a release whose input schema breaks clients (never a canary)",
    )
    paths = parser.add_argument_group("paths (the Makefile passes them)")
    paths.add_argument("--work-dir", type=Path, default=Path("reports/rollout"), help="state, logs")
    paths.add_argument("--gate-report", type=Path, default=Path("reports/gate.json"))
    paths.add_argument("--load-test-report", type=Path, default=Path("reports/load_test.json"))
    paths.add_argument("--rows", type=Path, default=HELD_OUT_ROWS, help="held-out rows (CSV)")
    return parser


def status(work_dir: Path) -> int:
    """The state, and what serves now (None when nothing does)."""
    shown = dump(load_state(work_dir))
    live = live_serving(work_dir)
    shown["serving_now"] = dump(live.server) | {"url": live.nginx.url} if live else None
    print(json.dumps(shown, indent=2))
    return 0


def refused(setup: Setup, strategy: str, tag: str, problems: list[str]) -> RolloutState:
    """Record and say why nothing was started."""
    setup.work_dir.mkdir(parents=True, exist_ok=True)
    reason = f"{tag} refused: " + "; ".join(problems)
    state = RolloutState(
        strategy="canary" if strategy == "canary" else "blue-green",
        phase="refused",
        decision=Decision(action="refuse", reason=reason),
    )
    save_state(setup.work_dir, state)
    log(f"DECISION: REFUSE: {reason}")
    return state


def release(args: argparse.Namespace, setup: Setup) -> RolloutState:
    """canary, blue-green or shadow of the versions the options (or the registry) name."""
    stable, new = args.stable_tag, args.canary_tag
    if not new:
        default_stable, new = default_tags(setup.params)
        stable = stable or default_stable
    if args.command in ("blue-green", "shadow") and stable is None:
        raise SystemExit(f"rollout: {args.command} needs a current version (--stable-tag)")
    if args.command in ("canary", "blue-green"):
        info = model_info(new)
        problems = release_problems(
            gate_report_for(args.gate_report, info),
            load_test_for(args.load_test_report, info),
            strategy=args.command,
            allow_breaking=args.allow_breaking,
        )
        if problems:
            return refused(setup, args.command, new, problems)
    if args.command == "blue-green":
        return run_blue_green(setup, stable, new)
    if args.command == "shadow":
        return run_shadow(setup, stable, new, args.canary_service)
    return run_canary(
        setup, stable, new, canary_service=args.canary_service, keep_serving=args.keep_serving
    )


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    use_project_store()
    setup = Setup(Params.load(), args.work_dir, args.rows, drive_traffic=not args.no_traffic)
    if args.command == "status":
        return status(args.work_dir)
    if args.command == "rollback":
        rollback_to_previous(setup)
        return 0
    if args.command == "stop":
        stop_all(setup)
        return 0
    if args.command in ("confirm", "switch-back"):
        finish_blue_green(setup, confirm=args.command == "confirm")
        return 0
    try:
        result = resume_canary(setup) if args.command == "resume" else release(args, setup)
    except ArtifactError as error:  # a gate or load-test report not of this project's shape
        print(f"rollout: {error}", file=sys.stderr)
        return 2
    summary = args.work_dir / "summary.json"
    write_json_atomically(summary, dump(result))
    log(f"summary -> {summary}")
    return 0 if result.phase == SUCCESS[args.command] else 1
