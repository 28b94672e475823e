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
    routers: dict[int, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.hub = self._ns("hub")

    def _ns(self, role: str) -> str:
        name = f"ssw-{role}-{self.tag}"
        ip("netns", "add", name)
        self.namespaces.append(name)
        ip("-n", name, "link", "set", "lo", "up")
        return name

    def _link(self, a: str, b: str, net: str, name: str) -> tuple[str, str]:
        """A veth pair between namespaces a and b on ``net`` (10.x.y.0/30); the two addresses."""
        dev_a, dev_b = f"{name}a", f"{name}b"
        ip("link", "add", dev_a, "netns", a, "type", "veth", "peer", "name", dev_b, "netns", b)
        addr_a, addr_b = f"{net}.1", f"{net}.2"
        for ns, dev, addr in ((a, dev_a, addr_a), (b, dev_b, addr_b)):
            ip("-n", ns, "addr", "add", f"{addr}/30", "dev", dev)
            ip("-n", ns, "link", "set", dev, "up")
        return addr_a, addr_b

    def add_worker(self, role: str, n: int) -> tuple[str, str]:
        """A worker namespace linked to the hub on 10.214.N.0/30; it and the hub's address."""
        worker_ns = self._ns(role)
        redis_addr, _ = self._link(self.hub, worker_ns, f"10.214.{n}", f"sr{n}x{self.tag}")
        return worker_ns, redis_addr

    def add_site(self, name: str, delay_ms: int = 0) -> Site:
        """A worker namespace linked to the hub and to a host namespace of its own.

        With ``delay_ms`` the host sits behind a router namespace whose delay line adds that
        much to every round trip (half each way), and lives at 10.217.N.2.
        """
        n = len(self.sites) + 1
        worker_ns, redis_addr = self.add_worker(f"w{n}", n)
        host_ns = self._ns(f"h{n}")
        if not delay_ms:
            _, host_addr = self._link(worker_ns, host_ns, f"10.215.{n}", f"sh{n}x{self.tag}")
            site = Site(name, n, worker_ns, host_ns, redis_addr, host_addr, f"10.215.{n}.0/30")
            self.sites.append(site)
            return site
        router = self._ns(f"r{n}")
        for key in ("net.ipv4.ip_forward", "net.ipv4.conf.all.rp_filter",
                    "net.ipv4.conf.default.rp_filter"):  # fmt: skip
            value = "1" if key.endswith("forward") else "0"
            ip("netns", "exec", router, "sysctl", "-qw", f"{key}={value}")
        _, router_addr = self._link(worker_ns, router, f"10.215.{n}", f"sw{n}x{self.tag}")
        router_host, host_addr = self._link(router, host_ns, f"10.217.{n}", f"sh{n}x{self.tag}")
        ip("-n", worker_ns, "route", "add", f"10.217.{n}.0/30", "via", router_addr)
        ip("-n", host_ns, "route", "add", "default", "via", router_host)
        line = subprocess.Popen(
            ["ip", "netns", "exec", router, sys.executable, "-m", "tests.delayline",
             "dlin", "dlout", str(delay_ms / 2)],
            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        self.listeners.append(line)
        assert line.stdout is not None
        if line.stdout.readline().strip() != "ready":
            raise RuntimeError(f"the delay line in {router} did not start")
        for dev in ("dlin", "dlout"):
            ip("-n", router, "link", "set", dev, "up")
        # Toward the host through dlin (out of dlout later); back through dlout (out of dlin).
        ip("-n", router, "route", "add", "default", "dev", "dlin", "table", "100")
        ip("-n", router, "route", "add", "default", "dev", "dlout", "table", "101")
        ip("-n", router, "rule", "add", "iif", f"sw{n}x{self.tag}b", "table", "100")
        ip("-n", router, "rule", "add", "iif", f"sh{n}x{self.tag}a", "table", "101")
        site = Site(name, n, worker_ns, host_ns, redis_addr, host_addr, f"10.217.{n}.0/30")
        self.routers[n] = router
        self.sites.append(site)
        return site

    def link_to(self, worker_ns: str, site: Site) -> None:
        """Give another worker namespace the same delayed path to ``site``'s host."""
        n, router = site.index, self.routers[site.index]
        dev = f"sb{n}x{self.tag}"
        _, router_addr = self._link(worker_ns, router, f"10.216.{n}", dev)
        ip("-n", worker_ns, "route", "add", f"10.217.{n}.0/30", "via", router_addr)
        ip("-n", router, "rule", "add", "iif", f"{dev}b", "table", "100")

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
