"""The pull-request report, rendered as GitHub renders a comment, draws every chart legibly.

Each report shape (tests/fixtures/report: passing, failing, first run, multi-class) is rendered
fresh, converted with `marked` (GFM) and drawn in Debian's headless Chromium with Mermaid from
npm, on GitHub's light and dark backgrounds (tests/render/render.mjs). `make render-tools`
installs the npm packages into RENDER_HOME; `make system-deps` installs Chromium. Screenshots go
to reports/render/, which CI uploads with the report.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from reporting.inputs import load_inputs
from reporting.render import render
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.slow

FIXTURES = REPO_ROOT / "tests" / "fixtures" / "report"
CASES = ("passing", "failing", "first_run", "multiclass")
SCRIPT = REPO_ROOT / "tests" / "render" / "render.mjs"
SCREENSHOTS = Path(os.environ.get("RENDER_SCREENSHOTS", REPO_ROOT / "reports" / "render"))
GITHUB_COMMENT_LIMIT = 65_536  # characters in one issue or pull-request comment
RENDER_HOME = Path(os.environ.get("RENDER_HOME", Path.home() / ".cache" / "report-render"))
CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
PACKAGES = ("marked", "mermaid", "playwright-core")
PIPELINE_PAGES = {
    "pipeline-report": REPO_ROOT / "reports" / "report.md",
    "pipeline-model-card": REPO_ROOT / "reports" / "model_card.md",
}


def _render_tools() -> None:
    """Chromium from the system (skip only without it); the npm packages, installed if missing."""
    if not Path(CHROMIUM).is_file():
        pytest.skip(
            "Chromium is not installed and `make system-deps` could not install it "
            "(it needs Debian/Ubuntu apt-get): apt-get install chromium"
        )
    if shutil.which("node") is None:
        pytest.fail("Node.js is missing: the render test needs node and npm")
    if not all((RENDER_HOME / "node_modules" / name).is_dir() for name in PACKAGES):
        subprocess.run(["make", "--no-print-directory", "render-tools"], cwd=REPO_ROOT, check=True)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], dict[str, object]]:
    """Every case in both themes: what the browser found, by (case, theme)."""
    _render_tools()
    folder = tmp_path_factory.mktemp("reports")
    pages = []
    for case in CASES:
        base = FIXTURES / case / "base_params.yaml"
        inputs = load_inputs(FIXTURES / case / "reports", base if base.exists() else None, None)
        markdown = folder / f"{case}.md"
        markdown.write_text(render(inputs), encoding="utf-8")
        pages.append(f"{case}={markdown}")
    for name, path in PIPELINE_PAGES.items():  # this run's own report, where one was rendered
        if path.is_file():
            pages.append(f"{name}={path}")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    (SCREENSHOTS / ".gitignore").write_text("*\n")  # screenshots are outputs, never committed
    result = subprocess.run(
        ["node", str(SCRIPT), str(SCREENSHOTS), *pages],
        capture_output=True,
        text=True,
        timeout=600,
        env=os.environ | {"RENDER_HOME": str(RENDER_HOME), "CHROMIUM": CHROMIUM},
    )
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert lines, f"the browser rendered nothing:\n{result.stderr[-3000:]}"
    return {(line["name"], line["theme"]): line for line in lines}


CASES_AND_THEMES = [(case, theme) for case in CASES for theme in ("light", "dark")]


@pytest.mark.parametrize(("case", "theme"), CASES_AND_THEMES)
def test_every_mermaid_chart_parses_and_draws(
    rendered: dict[tuple[str, str], dict[str, object]], case: str, theme: str
) -> None:
    page = rendered[(case, theme)]
    assert page["errors"] == []
    assert page["failedBlocks"] == 0
    assert page["charts"]
    assert page["series"]


@pytest.mark.parametrize(("case", "theme"), CASES_AND_THEMES)
def test_every_series_stands_out_from_the_background(
    rendered: dict[tuple[str, str], dict[str, object]], case: str, theme: str
) -> None:
    assert rendered[(case, theme)]["lowContrast"] == []


@pytest.mark.parametrize("case", CASES)
def test_the_report_fits_in_one_github_comment(
    rendered: dict[tuple[str, str], dict[str, object]], case: str
) -> None:
    characters = rendered[(case, "light")]["characters"]
    assert isinstance(characters, int)
    assert characters <= GITHUB_COMMENT_LIMIT


@pytest.mark.parametrize(("case", "theme"), CASES_AND_THEMES)
def test_a_screenshot_is_saved_for_ci_to_upload(
    rendered: dict[tuple[str, str], dict[str, object]], case: str, theme: str
) -> None:
    assert (SCREENSHOTS / f"{case}-{theme}.png").stat().st_size > 10_000
