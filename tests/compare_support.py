"""Shared pieces of the model comparison tests: a report to compare on and models with timings."""

from __future__ import annotations

import time
from collections.abc import Callable

from scanner.models import Host, Port, Report
from tests.ollama_double import ModelScript, OllamaDouble

# Mentions both hosts and the redis port by number: every fact is in the report below.
GROUNDED = (
    "Host 127.0.0.1 exposes redis on port 6379/tcp without authentication and telnet on 23. "
    "Host 127.0.0.2 runs SSH on port 22. Close redis and telnet first."
)
# Invents a host, a port and a CVE; leaves out 127.0.0.2 and telnet.
INVENTED = (
    "Host 127.0.0.1 runs redis on 6379/tcp. Host 10.9.9.9 answers on port 8443/tcp and is "
    "vulnerable to CVE-2021-44228."
)


def report(report_id: str = "rep-cmp") -> Report:
    """Two hosts: one with a critical (redis) and a high (telnet) port, one with only SSH."""
    return Report(
        id=report_id,
        targets=("127.0.0.1", "127.0.0.2"),
        profile="quick",
        created_at=time.time(),
        hosts=(
            Host(
                "127.0.0.1",
                ports=(
                    Port(22, "tcp", "open", service="ssh", product="OpenSSH", version="9.2p1"),
                    Port(23, "tcp", "open", service="telnet"),
                    Port(6379, "tcp", "open", service="redis", product="Redis key-value store"),
                ),
            ),
            Host("127.0.0.2", ports=(Port(22, "tcp", "open", service="ssh"),)),
        ),
    )


def words(n: int, prefix: str = "w") -> str:
    """An answer of ``n`` words, streamed as ``n`` chunks by the double."""
    return " ".join(f"{prefix}{i}" for i in range(n))


def double(**models: ModelScript) -> OllamaDouble:
    """A running double serving the given models (``name__tag`` stands for ``name:tag``)."""
    return OllamaDouble({k.replace("__", ":"): v for k, v in models.items()}).start()


def poll(condition: Callable[[], bool], timeout: float = 10.0, every: float = 0.01) -> bool:
    """Wait for ``condition`` with a deadline (polling, never a blind sleep)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(every)
    return condition()
