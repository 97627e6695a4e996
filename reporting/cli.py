"""`python -m reporting`: render the pull-request report, and post it as a sticky comment.

python -m reporting render --reports reports --params params.yaml --out reports/report.md
python -m reporting post --report reports/report.md --pr 42   (or --run-id, as CI does)
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from model.artifacts import ArtifactError
from model.atomic import write_text_atomically
from reporting.github import DEFAULT_API_URL, GitHub, GitHubError, add_post_arguments
from reporting.inputs import load_inputs
from reporting.provenance import ALL_STAGES, PIPELINE_STAGES
from reporting.render import render


def render_command(args: argparse.Namespace) -> int:
    try:
        inputs = load_inputs(
            args.reports,
            args.base_params,
            args.run_url,
            params=args.params,
            contract=args.contract,
            model=args.model,
            expected=(*PIPELINE_STAGES, *args.expect),
        )
    except ArtifactError as error:  # a stage output of another shape: name it, do not guess
        print(f"report: {error}", file=sys.stderr)
        return 2
    markdown = render(inputs)
    write_text_atomically(args.out, markdown)
    print(f"report -> {args.out}")
    if args.summary:
        summary = os.environ.get("GITHUB_STEP_SUMMARY")
        if summary:
            with Path(summary).open("a", encoding="utf-8") as handle:
                handle.write(markdown)
            print("report appended to the job summary")
        else:
            print("GITHUB_STEP_SUMMARY is not set: no job summary written", file=sys.stderr)
    return 0


def dispatch_command(args: argparse.Namespace) -> int:
    token = os.environ.get("GITHUB_TOKEN", "")
    repo = args.repo or os.environ.get("GITHUB_REPOSITORY", "")
    if not token or not repo:
        print("dispatch: needs GITHUB_TOKEN and --repo or GITHUB_REPOSITORY", file=sys.stderr)
        return 2
    api_url = os.environ.get("GITHUB_API_URL") or DEFAULT_API_URL
    inputs = dict(item.split("=", 1) for item in args.input)
    try:
        GitHub(repository=repo, token=token, api_url=api_url).dispatch_workflow(
            args.workflow, args.ref, inputs
        )
    except GitHubError as error:
        print(f"dispatch: {error}", file=sys.stderr)
        return 1
    print(f"dispatched {args.workflow} on {args.ref}")
    return 0


def _add_render(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    render_parser = commands.add_parser(
        "render",
        help="write the Markdown report from the pipeline's report files",
        description="Write the Markdown report. Missing optional files leave their section out.",
    )
    render_parser.add_argument(
        "--reports", type=Path, default=Path("reports"), help="folder with gate.json and the rest"
    )
    render_parser.add_argument(
        "--params", type=Path, default=Path("params.yaml"), help="this branch's params file"
    )
    render_parser.add_argument(
        "--base-params", type=Path, help="the base branch's params file, to show what changed"
    )
    render_parser.add_argument(
        "--contract",
        type=Path,
        default=Path("data/contract.yaml"),
        help="the data contract: the order of the label's classes in the confusion matrix",
    )
    render_parser.add_argument(
        "--model",
        type=Path,
        default=Path("models/model.json"),
        help="the exported model's metadata: the hash every report file must agree with",
    )
    render_parser.add_argument(
        "--expect",
        action="append",
        default=[],
        choices=[stage for stage in ALL_STAGES if stage not in PIPELINE_STAGES],
        help=f"a stage expected beyond {', '.join(PIPELINE_STAGES)} (repeatable)",
    )
    render_parser.add_argument("--run-url", help="link to this CI run and its artifacts")
    render_parser.add_argument(
        "--out", type=Path, default=Path("reports/report.md"), help="where to write the Markdown"
    )
    render_parser.add_argument(
        "--summary",
        action="store_true",
        help="also append the report to the file named by GITHUB_STEP_SUMMARY, when set",
    )
    render_parser.set_defaults(run=render_command)


def _add_dispatch(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    dispatch_parser = commands.add_parser(
        "dispatch",
        help="start a workflow_dispatch run (monitoring starts retrain.yml this way)",
        description="Start a workflow run. Reads GITHUB_TOKEN (needs `actions: write`).",
    )
    dispatch_parser.add_argument("--workflow", default="retrain.yml", help="workflow file name")
    dispatch_parser.add_argument("--ref", default="main", help="branch to run it on")
    dispatch_parser.add_argument(
        "--input", action="append", default=[], metavar="KEY=VALUE", help="a workflow input"
    )
    dispatch_parser.add_argument("--repo", help="owner/name (default: $GITHUB_REPOSITORY)")
    dispatch_parser.set_defaults(run=dispatch_command)


def parser() -> argparse.ArgumentParser:
    main_parser = argparse.ArgumentParser(
        prog="python -m reporting",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = main_parser.add_subparsers(dest="command", required=True)
    _add_render(commands)
    post_parser = commands.add_parser(
        "post",
        help="create or update the sticky pull-request comment",
        description=(
            "Create or update the bot's pull-request comment that starts with the report marker, "
            "on the pull request of --run-id (resolved through the API) or on --pr. Reads "
            "GITHUB_TOKEN (needs `pull-requests: write`, and `actions: read` for --run-id), "
            f"GITHUB_API_URL (default {DEFAULT_API_URL}), GITHUB_REPOSITORY, RUN_ID, PR_NUMBER."
        ),
    )
    add_post_arguments(post_parser)
    _add_dispatch(commands)
    return main_parser


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    code: int = args.run(args)
    return code
