"""Network namespaces for the worker tests and benchmark: a hub with Redis, sites, their hosts.

The hub namespace holds redis-server and the dashboard. Each site is a worker namespace joined to
the hub by one veth pair (10.214.N.0/30) and to its own host namespace by another (10.215.N.0/30),
where a real listener waits. A worker reaches Redis and its own host only: there is no route
between sites, nor any way out of the namespaces. Everything is removed by :meth:`NetLab.close`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = str(ROOT / ".venv" / "bin" / "python")
LISTENER = (
    "import socket, sys, time\n"
    "socks = []\n"
    "for port in sys.argv[2:]:\n"
    "    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
    "    s.bind((sys.argv[1], int(port))); s.listen(64); socks.append(s)\n"
    "print('ready', flush=True)\n"
    "sys.stdin.read()\n"
)


def ip(*args: str) -> None:
    """Run one `ip` command; a failure raises with its stderr."""
    out = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {out.stderr.strip()}")


@dataclass
class Site:
    """One site: its worker namespace, Redis address from there, and its host."""

    name: str
    index: int
    worker_ns: str
    host_ns: str
    redis_addr: str  # the hub's end of the site's link
    host_addr: str  # the site's host, where the listener is
    scope: str  # the worker's SCANSCRIBE_SCOPE: its own link to its host


@dataclass
class NetLab:
    """A hub namespace and sites; listeners in each host namespace."""

    tag: str = field(default_factory=lambda: f"{os.getpid() % 100000}")
    hub: str = ""
    sites: list[Site] = field(default_factory=list)
    namespaces: list[str] = field(default_factory=list)
    listeners: list[subprocess.Popen[str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.hub = self._ns("hub")

    def _ns(self, role: str) -> str:
        name = f"ssw-{role}-{self.tag}"
        ip("netns", "add", name)
        self.namespaces.append(name)
        ip("-n", name, "link", "set", "lo", "up")
        return name

    def _link(self, a: str, b: str, net: str, name: str, delay_ms: int = 0) -> tuple[str, str]:
        """A veth pair between namespaces a and b on ``net`` (10.x.y.0/30); the two addresses."""
        dev_a, dev_b = f"{name}a", f"{name}b"
        ip("link", "add", dev_a, "netns", a, "type", "veth", "peer", "name", dev_b, "netns", b)
        addr_a, addr_b = f"{net}.1", f"{net}.2"
        for ns, dev, addr in ((a, dev_a, addr_a), (b, dev_b, addr_b)):
            ip("-n", ns, "addr", "add", f"{addr}/30", "dev", dev)
            ip("-n", ns, "link", "set", dev, "up")
            if delay_ms:
                ip("-n", ns, "qdisc", "add", "dev", dev, "root", "netem", "delay", f"{delay_ms}ms")
        return addr_a, addr_b

    def add_site(self, name: str, delay_ms: int = 0) -> Site:
        """A worker namespace linked to the hub and to a host namespace of its own."""
        n = len(self.sites) + 1
        worker_ns = self._ns(f"w{n}")
        host_ns = self._ns(f"h{n}")
        redis_addr, _ = self._link(self.hub, worker_ns, f"10.214.{n}", f"sr{n}x{self.tag}")
        _, host_addr = self._link(
            worker_ns, host_ns, f"10.215.{n}", f"sh{n}x{self.tag}", delay_ms=delay_ms
        )
        site = Site(name, n, worker_ns, host_ns, redis_addr, host_addr, f"10.215.{n}.0/30")
        self.sites.append(site)
        return site

    def link_to(self, worker_ns: str, site: Site, delay_ms: int = 0) -> None:
        """Link another worker namespace to ``site``'s host, which it reaches at 10.216.N.2."""
        n = 100 + site.index
        self._link(worker_ns, site.host_ns, f"10.216.{site.index}", f"sb{n}x{self.tag}", delay_ms)

    def listen(self, ns: str, addr: str, *ports: int) -> None:
        """Real listeners on ``addr`` inside ``ns`` until the lab closes."""
        proc = subprocess.Popen(
            ["ip", "netns", "exec", ns, sys.executable, "-c", LISTENER, addr, *map(str, ports)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != "ready":
            raise RuntimeError(f"the listener in {ns} did not start")
        self.listeners.append(proc)

    def close(self) -> None:
        """Stop the listeners and delete every namespace (their links go with them)."""
        for proc in self.listeners:
            if proc.stdin is not None:
                proc.stdin.close()
            proc.wait(timeout=10)
        for ns in reversed(self.namespaces):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30, check=False)
