"""Loopback ports that nobody else takes between choosing one and binding it.

Binding port 0 and closing the socket hands out a port from the kernel's ephemeral range, which
is exactly where the kernel picks the next process's port 0 and every outgoing connection's
source port: under load (wrk, Locust, parallel tests) one of those can take it before our server
binds. Ports are chosen below that range instead, and claimed with a file created exclusively,
so two processes of this project (parallel test workers, two servers of one canary) never get
the same one. A claim older than `CLAIM_S` is stale: by then its server has bound the port, and
the bind check below skips it, or it never started.
"""

from __future__ import annotations

import contextlib
import os
import random
import socket
import tempfile
import time
from pathlib import Path

LOWEST = 20000
CLAIM_S = 600.0
CLAIMS = Path(tempfile.gettempdir()) / "mlops-ports"
EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")


def _highest() -> int:
    """One below the kernel's ephemeral range (32767 by Linux's default)."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        return int(EPHEMERAL_RANGE.read_text().split()[0]) - 1
    return 32767


def _bindable(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _claim(port: int) -> bool:
    """Create the port's claim file, or take over a stale one; False if another holds it."""
    CLAIMS.mkdir(parents=True, exist_ok=True)
    claim = CLAIMS / str(port)
    with contextlib.suppress(FileNotFoundError):
        if time.time() - claim.stat().st_mtime > CLAIM_S:
            claim.unlink()
    try:
        descriptor = os.open(claim, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    os.write(descriptor, str(os.getpid()).encode())
    os.close(descriptor)
    return True


def _kernel_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def free_port(attempts: int = 200) -> int:
    """A free loopback port outside the ephemeral range, claimed for this process."""
    highest = _highest()
    if highest - LOWEST < 1000:  # an unusual kernel setting: fall back to the kernel's choice
        return _kernel_port()
    for _ in range(attempts):
        port = random.randint(LOWEST, highest)  # spreads claims; not a secret
        if _bindable(port) and _claim(port):
            return port
    return _kernel_port()
