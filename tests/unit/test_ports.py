"""Ports handed to servers: outside the kernel's ephemeral range and never handed out twice."""

from __future__ import annotations

import os
import random
import socket
import time
from pathlib import Path

import pytest

from rollout import ports


@pytest.fixture
def claims(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(ports, "CLAIMS", tmp_path / "claims")
    return tmp_path / "claims"


def test_ports_lie_below_the_ephemeral_range_so_outgoing_connections_cannot_take_them(
    claims: Path,
) -> None:
    chosen = [ports.free_port() for _ in range(50)]
    assert all(ports.LOWEST <= port <= ports._highest() for port in chosen)
    assert ports._highest() < int(ports.EPHEMERAL_RANGE.read_text().split()[0])


def test_a_port_is_handed_out_once_while_its_claim_is_fresh(claims: Path) -> None:
    chosen = [ports.free_port() for _ in range(300)]
    assert len(set(chosen)) == len(chosen)
    assert sorted(int(claim.name) for claim in claims.iterdir()) == sorted(chosen)


def test_a_claim_held_by_another_process_is_refused_and_a_stale_one_taken_over(
    claims: Path,
) -> None:
    assert ports._claim(25000)
    assert not ports._claim(25000)
    stale = time.time() - ports.CLAIM_S - 1
    os.utime(claims / "25000", (stale, stale))
    assert ports._claim(25000)


def test_a_port_someone_is_bound_to_is_skipped(
    claims: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        busy = taken.getsockname()[1]
        candidates = iter([busy, busy + 1 if busy < 65535 else busy - 1])
        monkeypatch.setattr(random, "randint", lambda _low, _high: next(candidates))
        monkeypatch.setattr(ports, "LOWEST", 1024)
        monkeypatch.setattr(ports, "_highest", lambda: 65535)
        assert ports.free_port() != busy


def test_an_unusual_kernel_range_falls_back_to_the_kernels_own_choice(
    claims: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ports, "_highest", lambda: ports.LOWEST + 10)
    port = ports.free_port()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", port))
    assert not claims.exists()
