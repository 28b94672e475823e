"""The fixed scan profiles: each one a named, fixed nmap argument list. Users never add options.

TCP profiles that do not need root use connect scans (``-sT``) so that a scan gives the same
answer whether or not the app runs as root. The one exception is full-tcp, whose whole point is
speed: as root it sends SYN probes instead (``-sS``), which find the same open ports without
completing 65,535 handshakes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from scanner.errors import TargetRefused
from scanner.targets import TargetSet

# Task progress every second: the page polls the job about as often.
STATS_EVERY = "1s"
FULL_TCP_TIMING = ("-T4", "--min-rate", "3000", "--max-retries", "2", "--max-rtt-timeout", "150ms")

# Scripts in "default and safe" that make a scanned host contact someone else for nmap: they
# would carry the scan past the scope through an in-scope proxy, FTP or DNS server. The
# "external" category covers the proxy checks (and any such script a newer nmap adds); the rest
# are named one by one because nmap files them as plain default and safe.
THIRD_PARTY_SCRIPTS = (
    "http-open-proxy",  # asks an HTTP proxy for www.google.com, wikipedia.org, ...
    "socks-open-proxy",  # the same through SOCKS4 and SOCKS5
    "ftp-bounce",  # PORT to scanme.nmap.org (10.0.0.1 when that does not resolve)
    "dns-recursion",  # asks a DNS server to resolve www.wikipedia.org for nmap
)
# Broadcast scripts talk to the whole local network rather than the target: out too.
SAFE_SCRIPTS = (
    "(default and safe) and not external and not broadcast"
    f" and not ({' or '.join(THIRD_PARTY_SCRIPTS)})"
)


@dataclass(frozen=True)
class Profile:
    """One named scan: its fixed nmap arguments, time limits and whether it needs root."""

    id: str
    title: str
    description: str
    args: tuple[str, ...]
    default_ports: tuple[str, ...]
    host_timeout: str
    timeout_s: int
    needs_root: bool = False
    root_args: tuple[str, ...] | None = None  # a fixed alternative used when running as root
    typical: str = ""  # how long it usually takes, in words, for the profile picker

    def args_for(self, root: bool) -> tuple[str, ...]:
        """The fixed arguments for this privilege level."""
        return self.root_args if root and self.root_args is not None else self.args

    def command(self, root: bool = False) -> str:
        """The nmap arguments as one line, for listings."""
        parts = [*self.args_for(root), *self.default_ports, "--host-timeout", self.host_timeout]
        return " ".join(f'"{p}"' if " " in p else p for p in parts)


PROFILES: Mapping[str, Profile] = MappingProxyType(
    {
        p.id: p
        for p in (
            Profile(
                id="quick",
                title="Quick",
                description="The 100 most common TCP ports.",
                args=("-sT", "-T4"),
                default_ports=("--top-ports", "100"),
                host_timeout="5m",
                timeout_s=15 * 60,
                typical="under 30 s a host",
            ),
            Profile(
                id="standard",
                title="Standard",
                description="The 1,000 most common TCP ports with service and version detection.",
                args=("-sT", "-T4", "-sV"),
                default_ports=("--top-ports", "1000"),
                host_timeout="15m",
                timeout_s=60 * 60,
                typical="1–3 min a host",
            ),
            Profile(
                id="full-tcp",
                title="Full TCP",
                description="All 65,535 TCP ports, with timing tuned so a dropped probe "
                "does not stall the scan.",
                # A floor on the send rate and a short retransmission timeout: on a fast network
                # nmap otherwise backs off for a second or more after a single lost probe.
                args=("-sT", *FULL_TCP_TIMING),
                root_args=("-sS", *FULL_TCP_TIMING),
                default_ports=("-p-",),
                host_timeout="30m",
                timeout_s=2 * 60 * 60,
                typical="1–5 min a host on a LAN, longer across a firewall",
            ),
            Profile(
                id="deep",
                title="Deep",
                description="The 1,000 most common TCP ports with versions and OS detection.",
                args=("-sS", "-T4", "-sV", "-O"),
                default_ports=("--top-ports", "1000"),
                host_timeout="30m",
                timeout_s=2 * 60 * 60,
                typical="2–5 min a host",
                needs_root=True,
            ),
            Profile(
                id="safe-scripts",
                title="Safe scripts",
                description="Versions plus the NSE scripts that are both default and safe, "
                "except those that make a scanned host contact third parties.",
                # One fixed argv element: nmap parses the expression, no shell ever sees it.
                args=("-sT", "-T4", "-sV", "--script", SAFE_SCRIPTS),
                default_ports=("--top-ports", "1000"),
                host_timeout="30m",
                timeout_s=2 * 60 * 60,
                typical="2–10 min a host",
            ),
            Profile(
                id="udp",
                title="UDP",
                description="The 100 most common UDP ports.",
                args=("-sU", "-T4", "--max-retries", "2"),
                default_ports=("--top-ports", "100"),
                host_timeout="30m",
                timeout_s=2 * 60 * 60,
                typical="5–20 min a host (UDP answers slowly)",
                needs_root=True,
            ),
        )
    }
)


def get_profile(name: str) -> Profile:
    """The profile called ``name``, or TargetRefused listing the ones that exist."""
    try:
        return PROFILES[name]
    except KeyError:
        raise TargetRefused(
            f"Profile {name!r} refused: it is not one of {', '.join(PROFILES)}."
        ) from None


def build_argv(
    profile: Profile,
    targets: TargetSet,
    ports: str = "",
    nmap: str = "nmap",
    root: bool = False,
    versiondb: str = "",
) -> list[str]:
    """The complete nmap command line for validated targets and a canonical port spec.

    ``versiondb`` is the probe file from ``scanner.probes.scoped_probes``; a profile that detects
    versions cannot be built without it, since nmap's own file sends SOCKS proxies to google.com.
    """
    args = profile.args_for(root)
    argv = [nmap, *args]
    if "-sV" in args:
        if not versiondb:
            raise ValueError(f"profile {profile.id!r} detects versions: pass the scoped probe file")
        argv += ["--versiondb", versiondb]
    # The user's ports replace the profile's port selection, never add options of their own.
    argv += ["-p", ports] if ports else list(profile.default_ports)
    argv += ["--host-timeout", profile.host_timeout, "-n"]
    if targets.family == 6:
        argv.append("-6")
    argv += ["-oX", "-", "--stats-every", STATS_EVERY]
    # "--" ends option parsing, so even a target that slipped past validation is never an option.
    argv.append("--")
    argv += targets.addresses
    return argv
