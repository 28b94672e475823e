"""Check a summary against the scan: every host, port and CVE id it names must be in the report.

A claim with no support in the scan data is flagged "not in the scan data — verify". The check is
deliberately literal: it cannot prove a sentence right, but it catches invented hosts, ports and
CVE ids, which are the errors that send an analyst to the wrong machine.

What counts as "in the scan":

- a host: an address or name of a host in a report, or one of its targets; a network (CIDR) lies
  inside a target network, or is the /24 (IPv4) or /64 (IPv6) around a host of the report;
- a port: a port of the report in any state; when the clause ties it to a host ("22/tcp on
  10.0.0.5", "10.0.0.6 answers on port 53", "db.corp.example:3306"), a port of *that* host,
  flagged as ``host:port`` when it is not; both ends of a range ("ports 22-3389 are open") are
  checked that way;
- a scanned range ("ports 1-1024 were scanned"): covered by the ports the scan asked for, read
  from the report's scaninfo, else from the ``-p`` of its nmap arguments or its profile;
- a CVE id: written in the report's service or script output, among the findings the scripts
  reported on its ports, or in the ``cves`` given.

A dotted quad after a product name or "version" ("OpenJDK 11.0.12.7") is a version number, not a
host; :mod:`llm.claims` finds the mentions, this module weighs them.
"""

from __future__ import annotations

import bisect
import ipaddress
import itertools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from llm.claims import (
    CVE,
    Mention,
    clause_bounds,
    cve_id,
    ipv4_address,
    mentions,
    separator,
    tie_link,
)
from scanner.models import Report
from scanner.profiles import PROFILES

KINDS = ("host", "port", "cve")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
# A network named in a summary is "where the hosts are" when it is no wider than this around one
# of them: the usual way to name a host's subnet.
_SUBNET_PREFIX = {4: 24, 6: 64}
_MAX_PORT = 65535
_SPEC_PREFIX = {"T": "tcp", "U": "udp", "S": "sctp"}
_UDP_SCANS = frozenset({"-sU"})
_TCP_SCANS = frozenset({"-sS", "-sT", "-sA", "-sW", "-sM", "-sN", "-sF", "-sX"})
_WORD = re.compile(r"[A-Za-z][\w+-]*")


@dataclass(frozen=True)
class Claim:
    """One host, port or CVE id named in a summary, and whether the scan supports it."""

    kind: str
    value: str
    supported: bool
    spans: tuple[tuple[int, int], ...] = ()

    def to_dict(self) -> dict[str, str]:
        """``{"kind": ..., "value": ...}``."""
        return {"kind": self.kind, "value": self.value}


@dataclass(frozen=True)
class FactCheck:
    """The claims of one summary, each supported by the scan or not."""

    claims: tuple[Claim, ...] = ()

    @property
    def supported(self) -> tuple[Claim, ...]:
        """Claims found in the scan data."""
        return tuple(c for c in self.claims if c.supported)

    @property
    def unsupported(self) -> tuple[Claim, ...]:
        """Claims with no support in the scan data: to verify."""
        return tuple(c for c in self.claims if not c.supported)

    def unsupported_spans(self) -> list[tuple[int, int]]:
        """Where the unsupported claims appear in the text, for highlighting."""
        return [s for c in self.unsupported for s in c.spans]

    def to_dict(self) -> dict[str, Any]:
        """The form kept with a summary."""
        return {
            "checked": len(self.claims),
            "supported": [c.to_dict() for c in self.supported],
            "unsupported": [c.to_dict() for c in self.unsupported],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FactCheck:
        """Inverse of :meth:`to_dict` (spans are not kept)."""
        claims = [Claim(c["kind"], c["value"], True) for c in d.get("supported", ())]
        claims += [Claim(c["kind"], c["value"], False) for c in d.get("unsupported", ())]
        return cls(tuple(claims))


def _ip(text: str) -> str | None:
    try:
        return ipaddress.ip_address(text).compressed
    except ValueError:
        return ipv4_address(text)


def _target_networks(target: str) -> list[Network]:
    """The networks a target names: an address, a CIDR block or an IPv4 dash range."""
    try:
        return [ipaddress.ip_network(target, strict=False)]
    except ValueError:
        pass
    first, dash, last = target.partition("-")
    if not dash:
        return []
    try:
        start = ipaddress.IPv4Address(first)
        end_text = last if "." in last else first.rsplit(".", 1)[0] + "." + last
        end = ipaddress.IPv4Address(end_text)
    except ValueError:
        return []
    if end < start:
        return []
    return list(ipaddress.summarize_address_range(start, end))


def _port_spec(spec: str, protocols: tuple[str, ...]) -> list[tuple[str, int, int]]:
    """The ranges of an nmap port spec (``22,80,T:1-1024,U:53``, ``-`` for all), per protocol."""
    ranges: list[tuple[str, int, int]] = []
    current = protocols
    for raw in spec.split(","):
        item = raw.strip()
        if len(item) > 2 and item[1] == ":" and item[0].upper() in _SPEC_PREFIX:
            current = (_SPEC_PREFIX[item[0].upper()],)
            item = item[2:]
        low, dash, high = item.partition("-")
        if not (low or dash):
            continue
        if not (low.isdigit() or not low) or not (high.isdigit() or not high):
            continue  # a service name such as "http": nmap expands it, the report cannot
        lo = int(low) if low else 1
        hi = (int(high) if high else 65535) if dash else lo
        if 0 <= lo <= hi <= 65535:
            ranges += [(p, lo, hi) for p in current]
    return ranges


def _field(entry: Any, name: str) -> Any:
    return entry.get(name) if isinstance(entry, Mapping) else getattr(entry, name, None)


def _ranges_from_scaninfo(info: Any) -> list[tuple[str, int, int]]:
    """Ranges from nmap's ``<scaninfo protocol=... services=...>`` entries.

    Entries may be mappings or objects with ``protocol`` and ``services``; a single mapping of
    protocol to services (``{"tcp": "1-1024"}``) is read too.
    """
    if isinstance(info, Mapping):
        info = (
            [info]
            if "services" in info
            else [{"protocol": k, "services": v} for k, v in info.items()]
        )
    if not isinstance(info, list | tuple):
        return []
    ranges: list[tuple[str, int, int]] = []
    for entry in info:
        services, protocol = _field(entry, "services"), _field(entry, "protocol") or "tcp"
        if isinstance(services, str):
            ranges += _port_spec(services, (str(protocol).lower(),))
    return ranges


def _ranges_from_args(args: str) -> list[tuple[str, int, int]]:
    """Ranges from the ``-p`` option of an nmap command line; none for ``--top-ports`` or ``-F``."""
    tokens = args.split()
    udp = any(t in _UDP_SCANS for t in tokens)
    tcp = any(t in _TCP_SCANS for t in tokens) or not udp
    protocols = tuple(p for p, on in (("tcp", tcp), ("udp", udp)) if on)
    for i, word in enumerate(tokens):
        if word == "-p" and i + 1 < len(tokens):
            return _port_spec(tokens[i + 1], protocols)
        if word.startswith("-p") and len(word) > 2:
            return _port_spec(word[2:], protocols)
    return []


def scanned_ranges(report: Report) -> list[tuple[str, int, int]]:
    """The (protocol, first, last) port ranges the scan asked for, as far as the report says."""
    # The report model may carry scaninfo as a field; imports before that keep it in ``extra``.
    info = getattr(report, "scaninfo", None) or report.extra.get("scaninfo")
    ranges = _ranges_from_scaninfo(info)
    if not ranges and report.args:
        ranges = _ranges_from_args(report.args)
    profile = PROFILES.get(report.profile)
    if not ranges and not report.args and profile is not None:
        ranges = _ranges_from_args(" ".join((*profile.args, *profile.default_ports)))
    return ranges


@dataclass(frozen=True)
class Evidence:
    """What the scan data supports: hosts, ports (any state), host:port pairs, CVE ids, coverage."""

    hosts: frozenset[str] = frozenset()
    ports: frozenset[int] = frozenset()
    pairs: frozenset[tuple[str, int]] = frozenset()
    cves: frozenset[str] = frozenset()
    names: frozenset[str] = field(default=frozenset())  # single-label names, matched as words
    networks: tuple[Network, ...] = ()  # the target blocks
    scanned: tuple[tuple[str, int, int], ...] = ()  # (protocol, first, last) asked for
    versions: frozenset[str] = frozenset()  # dotted version strings of the services
    products: frozenset[str] = frozenset()  # words of product names, lowercased
    ranges: frozenset[str] = frozenset()  # targets written as ranges, such as 10.0.0.1-20
    labels: frozenset[tuple[str, int]] = frozenset()  # (protocol, port) of every port

    @classmethod
    def of(cls, reports: Iterable[Report], cves: Iterable[str] = ()) -> Evidence:
        """Collect the evidence of one or more reports (both sides of a diff), plus known CVEs."""
        hosts: set[str] = set()
        ports: set[int] = set()
        labels: set[tuple[str, int]] = set()
        pairs: set[tuple[str, int]] = set()
        networks: list[Network] = []
        scanned: list[tuple[str, int, int]] = []
        names: set[str] = set()
        ranges: set[str] = set()
        texts: list[str] = []
        services: list[str] = []
        for report in reports:
            for target in report.targets:
                hosts.add(_ip(target) or target.lower().rstrip("."))
                nets = _target_networks(target)
                networks += nets
                if nets and "-" in target:
                    ranges.add(target)
            scanned += scanned_ranges(report)
            for h in report.hosts:
                keys = {(_ip(h.address) or h.address).lower()}
                fqdns = [n.lower().rstrip(".") for n in h.hostnames]
                # "web01" for web01.corp.example; descriptive first labels ("mail", "www") are
                # ordinary words in prose, so only labels with a digit count.
                short = {n.split(".", 1)[0] for n in fqdns if "." in n}
                keys.update(fqdns, (n for n in short if any(c.isdigit() for c in n)))
                hosts.update(keys)
                texts += [s.output for s in h.scripts]
                for p in h.ports:
                    ports.add(p.port)
                    labels.add((p.protocol.lower(), p.port))
                    pairs.update((k, p.port) for k in keys)
                    services += [p.product, p.version, p.extrainfo, *p.cpe]
                    texts += [s.output for s in p.scripts]
                    texts += [f.id for f in p.cves]  # findings the scripts reported
            texts.append(report.note)
        found = {cve_id(m) for t in [*texts, *services] for m in CVE.finditer(t)}
        found.update(cve_id(m) for c in cves for m in CVE.finditer(c))
        names.update(h for h in hosts if "." not in h and ":" not in h and h.isascii())
        names = {n for n in names if n and n[0].isalpha()}
        versions = {v for s in services for v in re.findall(r"\d+(?:\.\d+)+", s)}
        products = {w.lower() for s in services for w in _WORD.findall(s)}
        return cls(
            hosts=frozenset(hosts),
            ports=frozenset(ports),
            pairs=frozenset(pairs),
            cves=frozenset(found),
            names=frozenset(names),
            networks=tuple(networks),
            scanned=tuple(scanned),
            versions=frozenset(versions),
            products=frozenset(products),
            ranges=frozenset(ranges),
            labels=frozenset(labels),
        )

    def covers(self, low: int, high: int, protocol: str = "") -> bool:
        """True when every port from ``low`` to ``high`` was asked for (in ``protocol``, if any)."""
        spans = sorted(
            (lo, hi) for p, lo, hi in self.scanned if not protocol or p == protocol.lower()
        )
        reach = low - 1
        for lo, hi in spans:
            if lo > reach + 1:
                break
            reach = max(reach, hi)
            if reach >= high:
                return True
        return reach >= high

    def has_network(self, net: Network) -> bool:
        """True for a network inside a target block, or the subnet around a host of the report."""
        for target in self.networks:
            if target.version == net.version and net.subnet_of(target):  # type: ignore[arg-type]
                return True
        if net.prefixlen < _SUBNET_PREFIX[net.version]:
            return False
        return any(
            (a := _address(h)) is not None and a.version == net.version and a in net
            for h in self.hosts
        )


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


class _Claims:
    """The claims found so far: one per (kind, value), unsupported if any mention is."""

    def __init__(self) -> None:
        self.found: dict[tuple[str, str], tuple[bool, list[tuple[int, int]]]] = {}

    def add(self, kind: str, value: str, ok: bool, span: tuple[int, int]) -> None:
        prev = self.found.get((kind, value))
        spans = prev[1] if prev else []
        spans.append(span)
        self.found[(kind, value)] = (ok and (prev is None or prev[0]), spans)

    def result(self) -> FactCheck:
        claims = tuple(
            Claim(kind, value, ok, tuple(spans))
            for (kind, value), (ok, spans) in self.found.items()
        )
        order = {k: i for i, k in enumerate(KINDS)}
        return FactCheck(tuple(sorted(claims, key=lambda c: (order[c.kind], not c.supported))))


@dataclass
class _Clause:
    """The host mentions of one clause, in text order, with where each starts and ends."""

    hosts: list[Mention] = field(default_factory=list)
    starts: list[int] = field(default_factory=list)
    ends: list[int] = field(default_factory=list)

    def append(self, host: Mention) -> None:
        self.hosts.append(host)
        self.starts.append(host.span[0])
        self.ends.append(host.span[1])


def _tied_hosts(text: str, port: Mention, clause: _Clause) -> list[Mention]:
    """The hosts a port mention's clause ties it to, or none.

    "22/tcp on 10.0.0.5" (a linking word after the port) comes first, then the nearest host
    before the port ("10.0.0.5 runs SSH on 22/tcp"); a host later in the clause with no linking
    word ("the scan (ports 1-1024) found ... on 10.0.0.5") is too loose a tie. A list of hosts
    ("10.0.0.5, 10.0.0.6 and 10.0.0.9 expose port 22") ties the port to each of them; a bare
    comma ("Unlike 10.0.0.5, 10.0.0.6 exposes port 53") does not make a list.
    """
    hosts = clause.hosts
    i = bisect.bisect_left(clause.starts, port.group_end)
    if i < len(hosts) and tie_link(text[port.group_end : hosts[i].span[0]]):
        # Forward, commas are kept only up to the last "and": "on A, B and C".
        run, kept = [hosts[i]], 1
        for h in itertools.islice(hosts, i + 1, None):
            kind = separator(text[run[-1].span[1] : h.span[0]])
            if kind is None:
                break
            run.append(h)
            if kind != "comma":
                kept = len(run)
        return run[:kept]
    j = bisect.bisect_right(clause.ends, port.span[0]) - 1
    if j < 0:
        return []
    # Backward, from the host nearest the port: a comma continues the list after an "and".
    run, listed = [hosts[j]], False
    for k in range(j - 1, -1, -1):
        kind = separator(text[hosts[k].span[1] : run[-1].span[0]])
        if kind is None or (kind == "comma" and not listed):
            break
        listed = listed or kind == "and"
        run.append(hosts[k])
    return run


def _host_label(host: Mention) -> str:
    return f"[{host.value}]" if ":" in host.value else host.value


def check(text: str, *reports: Report, cves: Iterable[str] = ()) -> FactCheck:
    """Check every host, port and CVE id that ``text`` names against ``reports``.

    ``cves`` adds CVE ids known to apply to the scan beyond those written in its output.
    """
    ev = Evidence.of(reports, cves)
    found = _Claims()
    all_mentions = list(mentions(text, ev.names, ev.ranges, ev.versions, ev.products))
    bounds = clause_bounds(text)
    by_clause: dict[int, _Clause] = {}
    for m in all_mentions:
        if m.kind == "host":
            by_clause.setdefault(bisect.bisect_right(bounds, m.span[0]), _Clause()).append(m)
    for m in all_mentions:
        if m.kind == "cve":
            found.add("cve", m.value, m.value in ev.cves, m.span)
        elif m.kind == "host":
            found.add("host", m.value, m.value in ev.hosts, m.span)
        elif m.kind == "network":
            net = ipaddress.ip_network(m.value)
            found.add("host", m.value, m.value in ev.hosts or ev.has_network(net), m.span)
        elif m.kind == "pair":
            host, _, port = m.value.rpartition(":")
            key = host.strip("[]")
            found.add("port", m.value, (key, int(port)) in ev.pairs, m.span)
        elif m.kind == "scanned":
            low, _, high = m.value.partition("-")
            first, last = sorted((int(low), int(high or low)))
            if last > _MAX_PORT:
                continue
            seen = (m.protocol, first) in ev.labels if m.protocol else first in ev.ports
            ok = ev.covers(first, last, m.protocol) or (not high and seen)
            found.add("port", m.value, ok, m.span)
        elif m.kind == "port":
            number = int(m.value)
            if not 1 <= number <= _MAX_PORT:
                continue  # "port 0", "port 70000": not a port number, so not a claim of one
            clause = by_clause.get(bisect.bisect_right(bounds, m.span[0]), _Clause())
            tied = [h for h in _tied_hosts(text, m, clause) if h.value in ev.hosts]
            if not tied:
                found.add("port", m.value, number in ev.ports, m.span)
            for h in tied:
                if (h.value, number) in ev.pairs:
                    found.add("port", m.value, True, m.span)
                else:
                    found.add("port", f"{_host_label(h)}:{number}", False, m.span)
    return found.result()
