"""Scan targets and port specs, validated before any nmap command line exists.

A target text is split into tokens; each token must be an IPv4/IPv6 address, a CIDR block, an IPv4
dash range or a hostname. Hostnames are resolved once, here, and nmap only ever sees numeric
addresses (with ``-n``), so what was checked against the scope is exactly what gets scanned.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from scanner.errors import TargetRefused

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str], Sequence[str]]

MAX_PORTS = 10_000

_SPLIT = re.compile(r"[\s,]+")
_ALLOWED = re.compile(r"[A-Za-z0-9.:/-]+", re.ASCII)
_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?", re.ASCII)
_SHORT_RANGE = re.compile(r"(\d{1,3}\.\d{1,3}\.\d{1,3}\.)(\d{1,3})-(\d{1,3})", re.ASCII)
_LONG_RANGE = re.compile(r"(\d{1,3}(?:\.\d{1,3}){3})-(\d{1,3}(?:\.\d{1,3}){3})", re.ASCII)
_PORT_ITEM = re.compile(r"(\d{1,5})(?:-(\d{1,5}))?", re.ASCII)


@dataclass(frozen=True)
class TargetSet:
    """Validated targets: what the user typed and the numeric blocks nmap will get."""

    addresses: tuple[str, ...]
    family: int
    tokens: tuple[str, ...]
    count: int


def default_resolver(name: str) -> list[str]:
    """Every address the system resolver gives for ``name``; empty when it does not resolve."""
    try:
        infos = socket.getaddrinfo(name, None, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, OSError):
        return []
    seen: dict[str, None] = {}
    for family, _type, _proto, _canon, sockaddr in infos:
        if family in (socket.AF_INET, socket.AF_INET6):
            seen[str(sockaddr[0]).split("%", 1)[0]] = None
    return list(seen)


def _refuse(token: str, rule: str) -> TargetRefused:
    return TargetRefused(f"Target {token!r} refused: {rule}.")


def _is_hostname(token: str) -> bool:
    name = token[:-1] if token.endswith(".") else token
    if not name or len(name) > 253:
        return False
    labels = name.split(".")
    # An all-digit last label would be read as an address by the system resolver ("1.2.3").
    if labels[-1].isdigit():
        return False
    return all(_LABEL.fullmatch(label) for label in labels)


def _ipv4(text: str, token: str) -> ipaddress.IPv4Address:
    try:
        return ipaddress.IPv4Address(text)
    except ValueError:
        raise _refuse(token, "it is not a valid IPv4 range") from None


def _parse_literal(token: str) -> list[Network] | None:
    """Networks for an address, CIDR or dash range; None when the token is none of those."""
    if "/" in token:
        try:
            return [ipaddress.ip_network(token, strict=False)]
        except ValueError:
            raise _refuse(
                token, "it is not a valid CIDR block (an address, '/', a prefix length)"
            ) from None
    try:
        return [ipaddress.ip_network(ipaddress.ip_address(token))]
    except ValueError:
        pass
    short = _SHORT_RANGE.fullmatch(token)
    long = _LONG_RANGE.fullmatch(token)
    if short:
        first = _ipv4(short.group(1) + short.group(2), token)
        last = _ipv4(short.group(1) + short.group(3), token)
    elif long:
        first = _ipv4(long.group(1), token)
        last = _ipv4(long.group(2), token)
    else:
        return None
    if last < first:
        raise _refuse(token, "the range ends before it starts")
    return list(ipaddress.summarize_address_range(first, last))


def scope_text(scope: Sequence[Network]) -> str:
    """The scope as a refusal states it: the blocks, and the setting that widens it."""
    blocks = ", ".join(str(n) for n in scope) or "nothing"
    return f" ({blocks}; an admin widens it with SCANSCRIBE_SCOPE)"


def _in_scope(net: Network, scope: Sequence[Network]) -> bool:
    return any(
        net.version == s.version and net.subnet_of(s)  # type: ignore[arg-type]
        for s in scope
    )


def _collapse(nets: Iterable[Network]) -> list[Network]:
    v4 = [n for n in nets if isinstance(n, ipaddress.IPv4Network)]
    v6 = [n for n in nets if isinstance(n, ipaddress.IPv6Network)]
    return [*ipaddress.collapse_addresses(v4), *ipaddress.collapse_addresses(v6)]


def _spec(net: Network) -> str:
    """A block as nmap should get it: a bare address for a single host, CIDR otherwise."""
    if net.num_addresses == 1:
        return str(net.network_address)
    return str(net)


def resolve_targets(
    text: str,
    scope: Sequence[Network],
    max_targets: int,
    resolver: Resolver | None = None,
) -> TargetSet:
    """Validate and resolve a target text against the scope, or raise TargetRefused."""
    resolve = resolver or default_resolver
    tokens = [t for t in _SPLIT.split(text.strip()) if t]
    if not tokens:
        raise TargetRefused("No targets given: type addresses, CIDR blocks, ranges or hostnames.")
    scope_nets = _collapse(scope)
    where = scope_text(scope)
    literal: list[tuple[str, list[Network]]] = []
    named: list[tuple[str, list[Address]]] = []
    for token in dict.fromkeys(tokens):
        if token.startswith("-"):
            raise _refuse(token, "it starts with '-', and targets are never nmap options")
        if not _ALLOWED.fullmatch(token):
            raise _refuse(
                token,
                "it contains a character a target cannot have "
                "(only letters, digits, '.', ':', '/' and '-' are allowed)",
            )
        nets = _parse_literal(token)
        if nets is not None:
            for net in nets:
                if not _in_scope(net, scope_nets):
                    raise _refuse(token, f"it is outside the scope this app may scan{where}")
            literal.append((token, nets))
            continue
        if not _is_hostname(token):
            raise _refuse(token, "it is not an address, CIDR block, dash range or hostname")
        addrs: list[Address] = []
        for raw in resolve(token):
            try:
                addrs.append(ipaddress.ip_address(raw.split("%", 1)[0]))
            except ValueError:
                continue
        if not addrs:
            raise _refuse(token, "the name does not resolve to any address")
        for addr in addrs:
            if not _in_scope(ipaddress.ip_network(addr), scope_nets):
                raise _refuse(
                    token,
                    f"the name resolves to {addr}, which is outside the scope this app may "
                    f"scan{where}",
                )
        named.append((token, addrs))

    family = _choose_family(literal, named)
    chosen: list[Network] = [n for _t, nets in literal for n in nets]
    for token, addrs in named:
        picked = [ipaddress.ip_network(a) for a in addrs if a.version == family]
        if not picked:
            raise _refuse(
                token,
                f"the name has no IPv{family} address and the other targets are IPv{family}; "
                "run IPv4 and IPv6 targets as separate scans",
            )
        chosen.extend(picked)
    blocks = _collapse(chosen)
    count = sum(b.num_addresses for b in blocks)
    if count > max_targets:
        raise TargetRefused(
            f"Targets {' '.join(tokens)!r} refused: they cover {count} addresses and one scan "
            f"may cover at most {max_targets} (SCANSCRIBE_MAX_TARGETS)."
        )
    return TargetSet(
        addresses=tuple(_spec(b) for b in blocks),
        family=family,
        tokens=tuple(dict.fromkeys(tokens)),
        count=count,
    )


def _choose_family(
    literal: list[tuple[str, list[Network]]], named: list[tuple[str, list[Address]]]
) -> int:
    """One address family per scan: nmap needs ``-6`` for IPv6 and scans nothing else then."""
    versions = {n.version for _t, nets in literal for n in nets}
    if len(versions) > 1:
        v6_token = next(t for t, nets in literal if nets[0].version == 6)
        raise _refuse(
            v6_token,
            "IPv4 and IPv6 targets cannot share one scan; run them as separate scans",
        )
    if versions:
        return versions.pop()
    if all(any(a.version == 4 for a in addrs) for _t, addrs in named):
        return 4
    if all(any(a.version == 6 for a in addrs) for _t, addrs in named):
        return 6
    v6_only = next(t for t, addrs in named if all(a.version == 6 for a in addrs))
    raise _refuse(
        v6_only,
        "the name has only IPv6 addresses and other names only IPv4; "
        "run IPv4 and IPv6 targets as separate scans",
    )


def parse_ports(spec: str, cap: int = MAX_PORTS) -> str:
    """Validate a port list such as ``22,80,8000-8100``; return it canonical, or '' for none."""
    text = spec.strip()
    if not text:
        return ""
    ranges: list[tuple[int, int]] = []
    for raw in text.split(","):
        item = raw.strip()
        if not item:
            raise TargetRefused(
                f"Ports {text!r} refused: there is nothing between two commas (or before the "
                "first, or after the last); a port spec is numbers and ranges separated by "
                "single commas, for example 22,80."
            )
        m = _PORT_ITEM.fullmatch(item)
        if not m:
            raise TargetRefused(
                f"Ports {item!r} refused: a port spec is numbers and ranges separated by commas, "
                "for example 22,80,8000-8100."
            )
        low = int(m.group(1))
        high = int(m.group(2)) if m.group(2) is not None else low
        for value in (low, high):
            if not 1 <= value <= 65535:
                raise TargetRefused(f"Ports {item!r} refused: ports run from 1 to 65535.")
        if high < low:
            raise TargetRefused(f"Ports {item!r} refused: the range ends before it starts.")
        ranges.append((low, high))
    ranges.sort()
    merged: list[list[int]] = []
    for low, high in ranges:
        if merged and low <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], high)
        else:
            merged.append([low, high])
    count = sum(high - low + 1 for low, high in merged)
    if count > cap:
        raise TargetRefused(
            f"Ports {text!r} refused: they name {count} ports and a scan may name at most {cap}."
        )
    return ",".join(str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in merged)
