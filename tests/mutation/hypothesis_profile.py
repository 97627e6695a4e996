"""pytest plugin for `make mutation`: a small, derandomized hypothesis profile.

mutmut runs the selected tests three times before the first mutant (coverage, per-test stats,
a clean run) and again for every mutant whose function they reach, so the property tests'
60 `ci` examples would dominate the run. The deciding mutants are killed by the boundary and
named-reason tests; the properties only need a few fixed examples each. Loaded with
`-p tests.mutation.hypothesis_profile` ([tool.mutmut] pytest_add_cli_args), after
tests/conftest.py has loaded its own profile.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

EXAMPLES = int(os.environ.get("MUTATION_EXAMPLES", "5"))

settings.register_profile(
    "mutation",
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    """Load the profile once the conftest files (which load `dev` or `ci`) are imported."""
    del config
    settings.load_profile("mutation")
