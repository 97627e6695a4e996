"""Benchmark: `make install` in a fresh clone (warm uv cache), then again after one changed pin.

The clone takes this working tree's pyproject.toml, uv.lock and Makefile, so an uncommitted lock
is what gets timed. Target: the venv in under 30 s with a warm cache.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import tempfile
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENVIRONMENT_FILES = ("pyproject.toml", "uv.lock", "Makefile")


def timed(cwd: Path, *command: str) -> float:
    start = time.perf_counter()
    subprocess.run(command, cwd=cwd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def fresh_clone(into: Path) -> Path:
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(into)], check=True)
    for name in ENVIRONMENT_FILES:
        shutil.copyfile(ROOT / name, into / name)
    return into


def lower_pin(project: Path, package: str) -> str:
    """Cap `package` below its locked version in pyproject.toml: one changed pin."""
    lock = tomllib.loads((project / "uv.lock").read_text())
    version = next(p["version"] for p in lock["package"] if p["name"] == package)
    pyproject = project / "pyproject.toml"
    text, count = re.subn(
        rf'"{re.escape(package)}[^"]*"', f'"{package}<{version}"', pyproject.read_text(), count=1
    )
    assert count == 1, f"{package} is not a direct requirement"
    pyproject.write_text(text)
    return f"{package}<{version}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--package", default="orjson", help="the direct requirement to re-pin")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-setup-") as scratch:
        warm_up = fresh_clone(Path(scratch) / "warm-up")
        first = timed(warm_up, "make", "--no-print-directory", "install")
        clone = fresh_clone(Path(scratch) / "clone")
        warm = timed(clone, "make", "--no-print-directory", "install")
        pin = lower_pin(clone, args.package)
        relock = timed(clone, "make", "--no-print-directory", "lock")
        resync = timed(clone, "make", "--no-print-directory", "install")
    print(f"bench-setup: first install (fills the cache)  {first:6.1f} s")
    print(f"bench-setup: fresh clone, warm cache         {warm:6.1f} s  (target < 30 s)")
    print(f"bench-setup: after {pin}: lock {relock:.1f} s + install {resync:.1f} s")
    return 0 if warm < 30 else 1


if __name__ == "__main__":
    raise SystemExit(main())
