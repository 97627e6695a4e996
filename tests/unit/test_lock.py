"""The one hashed lock: uv.lock matches pyproject.toml and every environment is cut from it."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
UV = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")

pytestmark = pytest.mark.skipif(UV is None, reason="uv is not installed (make install)")


def uv(*args: str) -> str:
    assert UV is not None
    return subprocess.run([UV, *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout


def locked_packages() -> dict[str, dict[str, Any]]:
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    return {package["name"]: package for package in lock["package"]}


def test_lock_is_current_with_pyproject() -> None:
    """`uv lock --check` passes: nobody edited a requirement without re-locking."""
    uv("lock", "--check", "--offline", "--quiet")


def test_every_locked_distribution_has_a_hash() -> None:
    """Each wheel and sdist in uv.lock carries a sha256, the CPU torch wheel included."""
    for name, package in locked_packages().items():
        files = [*package.get("wheels", []), *([package["sdist"]] if "sdist" in package else [])]
        for file in files:
            assert isinstance(file, dict)
            assert str(file.get("hash", "")).startswith("sha256:"), name


def test_torch_is_the_cpu_build_pinned_once() -> None:
    """torch comes from the CPU wheel [tool.uv.sources] names; no requirement repeats a version."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    source = pyproject["tool"]["uv"]["sources"]["torch"]["path"]
    version = str(locked_packages()["torch"]["version"])
    assert version.endswith("+cpu")
    assert f"torch-{version}-" in source
    groups = pyproject["dependency-groups"]
    torch_lines = [
        line
        for group in groups.values()
        for line in group
        if isinstance(line, str) and line.split("[")[0].split("=")[0].strip() == "torch"
    ]
    assert torch_lines == ["torch"]


def test_bento_requirements_are_the_serving_group_of_the_lock() -> None:
    """The file bentofile.yaml installs is `uv export` of the serving group, byte for byte."""
    bentofile = yaml.safe_load((ROOT / "bentofile.yaml").read_text())
    path = ROOT / bentofile["python"]["requirements_txt"]
    exported = uv(
        "export",
        "--frozen",
        "--only-group",
        "serving",
        "--no-emit-project",
        "--no-hashes",
        "--no-header",
        "--format",
        "requirements-txt",
        "--quiet",
    )
    assert path.read_text() == exported, "stale: run `make lock`"


def test_bento_requirements_pin_exact_versions_without_torch() -> None:
    """Every line of the Bento's requirements is `name==version`, and torch is not among them."""
    bentofile = yaml.safe_load((ROOT / "bentofile.yaml").read_text())
    lines = [
        line.split(";")[0].strip()
        for line in (ROOT / bentofile["python"]["requirements_txt"]).read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert lines
    assert all("==" in line for line in lines), lines
    assert not any(line.startswith("torch==") for line in lines)
