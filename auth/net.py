"""Whether the dashboard is reachable beyond this machine, and the Host-header check."""

from __future__ import annotations

import ipaddress

LOOPBACK_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost")


def is_loopback(address: str) -> bool:
    """Whether a server address only accepts connections from this machine."""
    addr = address.strip().strip("[]").lower()
    if addr in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(addr).is_loopback
    except ValueError:
        return False  # 0.0.0.0 parses; a hostname or empty string may mean any interface


def host_header_allowed(host_header: str | None, exposed: bool) -> bool:
    """Whether a request's Host header fits a loopback-bound server (DNS-rebinding defence).

    A page on another site can make a browser send requests to 127.0.0.1 under a foreign name;
    a server bound to loopback only ever expects loopback names.
    """
    if exposed or not host_header:
        return True  # an exposed server is guarded by its login instead
    host = host_header.strip().lower()
    if host.startswith("["):
        host = host[1 : host.find("]")] if "]" in host else host
    elif host.count(":") == 1:
        host = host.split(":", 1)[0]
    return is_loopback(host)
