"""Branch coverage per package, from the data the last `make test` / `make test-unit` collected.

pytest-cov combines the run's data files (the test process and every Python subprocess it
started, [tool.coverage.run] patch); this prints one line per package of
[tool.coverage.run] source, statements and branches together, as coverage counts them.
"""

from __future__ import annotations

import io
import sys

import coverage
from coverage.exceptions import NoDataError


def main() -> int:
    measured = coverage.Coverage()
    measured.load()
    packages = measured.config.source or []
    print(f"\n{'package':<12} {'branch coverage':>15}")
    for package in packages:
        try:
            percent = measured.report(include=[f"{package}/*"], file=io.StringIO())
        except NoDataError:
            print(f"{package:<12} {'not run':>15}")
            continue
        print(f"{package:<12} {percent:>14.1f}%")
    total = measured.report(file=io.StringIO())
    print(f"{'all':<12} {total:>14.1f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
