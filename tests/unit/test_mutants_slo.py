"""The load-test SLO pinned where `make mutation` found it unpinned: a percentile Locust did not
record is reported as 0 ms, not as a made-up figure."""

from __future__ import annotations

from types import SimpleNamespace

from load_tests.slo import check_slo
from model.params import Params
from tests.conftest import REPO_ROOT

SLO = Params.load(REPO_ROOT / "params.yaml").serving.slo


def test_a_percentile_locust_did_not_record_is_reported_as_zero_ms() -> None:
    total = SimpleNamespace(
        fail_ratio=0.0,
        total_rps=SLO.min_rps,
        num_requests=0,
        num_failures=0,
        median_response_time=0.0,
        get_response_time_percentile=lambda share: None,
    )
    checks = check_slo(SimpleNamespace(total=total), SLO)["checks"]
    assert (checks["p95_ms"]["value"], checks["p99_ms"]["value"]) == (0.0, 0.0)
