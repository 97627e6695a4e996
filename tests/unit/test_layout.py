"""The layout stays one a newcomer can read: small modules, serving exactly what the Bento holds."""

from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("model", "serving", "rollout", "batch", "monitoring", "reporting", "load_tests")
MAX_MODULE_LINES = 400


@pytest.mark.parametrize("package", PACKAGES)
def test_no_module_is_over_the_size_limit(package: str) -> None:
    sizes = {
        path.relative_to(REPO_ROOT).as_posix(): len(path.read_text(encoding="utf-8").splitlines())
        for path in (REPO_ROOT / package).glob("*.py")
    }
    too_long = {name: lines for name, lines in sizes.items() if lines > MAX_MODULE_LINES}
    assert not too_long, f"split these by job (limit {MAX_MODULE_LINES} lines): {too_long}"


def test_every_serving_module_is_in_the_bento() -> None:
    """serving/ is what the Bento contains: a module there that the Bento leaves out belongs
    elsewhere (rollout/, batch/ or model/)."""
    include = set(yaml.safe_load((REPO_ROOT / "bentofile.yaml").read_text())["include"])
    modules = {p.relative_to(REPO_ROOT).as_posix() for p in (REPO_ROOT / "serving").glob("*.py")}
    assert modules <= include, f"in serving/ but not in the Bento: {sorted(modules - include)}"
