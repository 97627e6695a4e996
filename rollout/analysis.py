"""Canary analysis: per-variant success rate and latency from nginx's log, and model agreement.

nginx logs one JSON line per client request with every upstream attempt (address, status, time),
so a canary that fails is seen failing even when nginx's retry on the stable server hid it from
the client. The model-aware check replays logged requests to both variants and compares labels:
a new model may differ a little from the old one, not wildly. A step replays a sample, so the
check fails only when the share of differing rows is above the limit with 95% confidence: a good
model that flips a few borderline rows is not rolled back because a sample caught them twice.

4xx answers are not server failures, but a canary that refuses more of the same traffic mix than
stable does (its input schema changed, say) breaks clients: its 4xx share is compared with
stable's, with the same 95% one-sided bound, and fails the step as "client errors".
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from model.params import AnalysisParams
from serving.schema import TRAFFIC_SOURCE_HEADER


@dataclass(frozen=True)
class Attempt:
    port: int
    status: int  # 0 when nginx got no answer
    seconds: float


@dataclass(frozen=True)
class LogEntry:
    msec: float
    status: int
    uri: str
    attempts: tuple[Attempt, ...]
    body: str


def _number(text: str, default: float = 0.0) -> float:
    try:
        return float(text)
    except ValueError:
        return default


def parse_entry(line: str) -> LogEntry | None:
    """One nginx JSON log line; None for lines that are not (a partial last line, say)."""
    try:
        raw: dict[str, Any] = json.loads(line)
    except json.JSONDecodeError:
        return None
    attempts = []
    addresses = [a.strip() for a in str(raw.get("upstream", "")).split(",") if a.strip()]
    statuses = [s.strip() for s in str(raw.get("upstream_status", "")).split(",")]
    times = [t.strip() for t in str(raw.get("upstream_time", "")).split(",")]
    for index, address in enumerate(addresses):
        if ":" not in address:
            continue
        port = int(address.rsplit(":", 1)[1])
        status = statuses[index] if index < len(statuses) else ""
        seconds = times[index] if index < len(times) else ""
        attempts.append(Attempt(port, int(_number(status)), _number(seconds)))
    return LogEntry(
        msec=_number(str(raw.get("msec", 0))),
        status=int(raw.get("status", 0)),
        uri=str(raw.get("uri", "")),
        attempts=tuple(attempts),
        body=str(raw.get("body", "")),
    )


def read_entries(log: Path, since: float, until: float, uri: str = "/predict") -> list[LogEntry]:
    """Entries for `uri` logged in [since, until) (epoch seconds)."""
    if not log.exists():
        return []
    # nginx writes the body's UTF-8 bytes as they came (feature names need not be ASCII)
    text = log.read_text(encoding="utf-8", errors="replace")
    entries = (parse_entry(line) for line in text.splitlines())
    return [e for e in entries if e and e.uri == uri and since <= e.msec < until]


ONE_SIDED_95_Z = 1.645  # the confidence every sampled check states in its message


def wilson_bounds(hits: int, total: int, z: float = ONE_SIDED_95_Z) -> tuple[float, float]:
    """One-sided 95% Wilson (lower, upper) bounds on the share `hits / total`."""
    if not total:
        return 0.0, 1.0
    n, p = total, hits / total
    centre = p + z * z / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    scale = 1 + z * z / n
    return max(0.0, (centre - spread) / scale), min(1.0, (centre + spread) / scale)


@dataclass(frozen=True)
class VariantStats:
    """What one server did in a window, attempt by attempt."""

    requests: int
    failures: int  # no answer or 5xx
    success_rate: float
    p99_ms: float
    client_errors: int = 0  # 4xx: the request was refused

    @property
    def client_error_rate(self) -> float:
        return self.client_errors / self.requests if self.requests else 0.0

    def describe(self) -> dict[str, float]:
        return {
            "requests": self.requests,
            "failures": self.failures,
            "success_rate": round(self.success_rate, 4),
            "client_errors": self.client_errors,
            "client_error_rate": round(self.client_error_rate, 4),
            "p99_ms": round(self.p99_ms, 2),
        }


def variant_stats(entries: Iterable[LogEntry], port: int) -> VariantStats:
    attempts = [a for entry in entries for a in entry.attempts if a.port == port]
    failures = sum(1 for a in attempts if not 200 <= a.status < 500)
    latencies = [a.seconds * 1000 for a in attempts if 200 <= a.status < 500]
    return VariantStats(
        requests=len(attempts),
        failures=failures,
        success_rate=1.0 - failures / len(attempts) if attempts else 0.0,
        p99_ms=float(np.percentile(latencies, 99)) if latencies else 0.0,
        client_errors=sum(1 for a in attempts if 400 <= a.status < 500),
    )


def client_error_increase(canary: VariantStats, stable: VariantStats, limit: float) -> str | None:
    """Why the canary refuses clients more than stable does on the same traffic mix, or None.

    It fails when the canary's 4xx share is above stable's plus `limit` with 95% confidence:
    the canary's lower bound against stable's upper bound, so noise in either fails nothing.
    """
    if not canary.requests:
        return None
    canary_low, _ = wilson_bounds(canary.client_errors, canary.requests)
    _, stable_high = wilson_bounds(stable.client_errors, stable.requests)
    stable_bound = stable_high if stable.requests else 0.0
    if canary_low <= stable_bound + limit:
        return None
    return (
        f"client errors (4xx): canary {canary.client_error_rate:.1%} of {canary.requests} vs "
        f"stable {stable.client_error_rate:.1%} of {stable.requests}, more than {limit:.1%} "
        f"above with 95% confidence"
    )


def client_failures(entries: Iterable[LogEntry]) -> int:
    """Requests whose client got a 5xx (after nginx's retry)."""
    return sum(1 for entry in entries if entry.status >= 500)


def mirror_bodies(entries: Sequence[LogEntry], count: int) -> list[str]:
    """The latest `count` request bodies that were answered with 200."""
    bodies = [entry.body for entry in entries if entry.status == 200 and entry.body]
    return bodies[-count:]


@dataclass(frozen=True)
class Disagreement:
    """How many replayed rows got another label from the canary than from stable."""

    differing: int
    rows: int

    @property
    def share(self) -> float:
        return self.differing / self.rows if self.rows else 0.0

    def lower_bound(self) -> float:
        """One-sided 95% Wilson lower bound on the share: what the sample shows for sure."""
        return wilson_bounds(self.differing, self.rows)[0] if self.rows else 0.0

    def exceeds(self, limit: float) -> bool:
        """True when the share is above `limit` beyond sampling noise."""
        return self.rows > 0 and self.lower_bound() > limit

    def describe(self, kind: str = "") -> str:
        """'5.8% of 69 mirrored rows'."""
        return f"{self.share:.1%} of {self.rows} {kind + ' ' if kind else ''}rows"

    def failure(self, limit: float, against: str, kind: str) -> str:
        """Why a version was refused: the observed share, the limit and what is certain."""
        return (
            f"labels differ from {against} on {self.describe(kind)}, above {limit:.1%} with 95% "
            f"confidence (at least {self.lower_bound():.1%})"
        )


def label_disagreement(
    bodies: Sequence[str],
    stable_url: str,
    canary_url: str,
    canary_bodies: Sequence[str] | None = None,
    timeout_s: float = 10,
) -> Disagreement | None:
    """Rows whose predicted label differs between the two servers; None with nothing to replay.

    Labels are compared as the servers name them, whatever the names. A server that does not
    answer in time ends the replay: one timeout, not one per request. `canary_bodies` (the same
    rows laid out for the canary's own inputs, request by request) replace `bodies` for the
    canary when the two models take different inputs.
    """
    pairs = zip(bodies, bodies if canary_bodies is None else canary_bodies, strict=True)
    differing = total = 0
    headers = {"content-type": "application/json", TRAFFIC_SOURCE_HEADER: "agreement"}
    with httpx.Client(timeout=timeout_s) as client:
        for stable_body, canary_body in pairs:
            try:
                stable = client.post(f"{stable_url}/predict", content=stable_body, headers=headers)
                canary = client.post(f"{canary_url}/predict", content=canary_body, headers=headers)
            except httpx.TransportError:
                break  # a hung or dead server: the rows compared so far are all there is
            if stable.status_code != 200 or canary.status_code != 200:
                continue  # errors are the success-rate check's business
            for old, new in zip(stable.json(), canary.json(), strict=True):
                differing += old["label"] != new["label"]
                total += 1
    return Disagreement(differing, total) if total else None


def disagreement_checks(disagreement: Disagreement | None) -> dict[str, Any]:
    """The agreement figures a step or report records (share, rows, lower bound)."""
    if disagreement is None:
        return {"label_disagreement": None}
    return {
        "label_disagreement": disagreement.share,
        "label_disagreement_rows": disagreement.rows,
        "label_disagreement_lower_bound": round(disagreement.lower_bound(), 4),
    }


@dataclass(frozen=True)
class Verdict:
    passed: bool
    reasons: list[str]  # why it failed; empty when it passed
    checks: dict[str, Any]


def judge(
    canary: VariantStats,
    disagreement: Disagreement | None,
    params: AnalysisParams,
    stable: VariantStats | None = None,
) -> Verdict:
    """The canary passes a step when it saw enough traffic, succeeded, refused no more clients
    than `stable` did, was fast and agreed."""
    reasons = []
    if canary.requests < params.min_requests:
        reasons.append(
            f"inconclusive: canary saw {canary.requests} requests, fewer than {params.min_requests}"
        )
    if canary.requests and canary.success_rate < params.min_success_rate:
        reasons.append(
            f"success rate {canary.success_rate:.2%} below {params.min_success_rate:.2%} "
            f"({canary.failures} failed of {canary.requests})"
        )
    refused = client_error_increase(
        canary, stable or VariantStats(0, 0, 0.0, 0.0), params.max_client_error_increase
    )
    if refused is not None:
        reasons.append(refused)
    if canary.p99_ms > params.max_p99_ms:
        reasons.append(f"p99 {canary.p99_ms:.1f} ms above {params.max_p99_ms:g} ms")
    if disagreement is not None and disagreement.exceeds(params.max_label_disagreement):
        reasons.append(disagreement.failure(params.max_label_disagreement, "stable", "mirrored"))
    checks = {"canary": canary.describe(), **disagreement_checks(disagreement)}
    return Verdict(passed=not reasons, reasons=reasons, checks=checks)
