"""Check a summary against the scan: every host, port and CVE id it names must be in the report.

A claim with no support in the scan data is flagged "not in the scan data — verify". The check is
deliberately literal: it cannot prove a sentence right, but it catches invented hosts, ports and
CVE ids, which are the errors that send an analyst to the wrong machine.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from scanner.models import Report

KINDS = ("host", "port", "cve")

_CVE = re.compile(r"\bCVE-\d{4}-\d{4,7}\b", re.IGNORECASE)
_IPV4 = re.compile(r"(?<![\w.])((?:\d{1,3}\.){3}\d{1,3})(?!\.?\d)(?::(\d{1,5})\b)?")
_IPV6 = re.compile(r"(?<![\w:.])\[?((?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4})(?![\w:])")
_HOSTNAME = re.compile(
    r"(?<![\w@.\-/])((?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z][A-Za-z0-9-]{1,62})"
    r"(?![\w-]|\.[A-Za-z0-9])"
)
_PORT_PROTO = re.compile(r"\b(\d{1,5})/(?:tcp|udp|sctp)\b", re.IGNORECASE)
_PROTO_PORT = re.compile(r"\b(?:tcp|udp|sctp)/(\d{1,5})\b", re.IGNORECASE)
_PORT_WORDS = re.compile(
    r"\bports?\s*(?:number\s*)?[:#]?\s*"
    r"(\d{1,5}(?:(?:\s*,\s*(?:and\s+|or\s+)?|\s+and\s+|\s+or\s+|\s*&\s*|\s*/\s*)\d{1,5}\b(?!/))*)",
    re.IGNORECASE,
)
_NUMBER = re.compile(r"\d{1,5}")
# Dotted words that are not host names: file types and product names a summary may mention.
_NOT_HOSTS = frozenset(
    [
        "html",
        "htm",
        "php",
        "asp",
        "aspx",
        "jsp",
        "js",
        "css",
        "txt",
        "pdf",
        "xml",
        "json",
        "yaml",
        "yml",
        "conf",
        "cfg",
        "ini",
        "log",
        "sh",
        "py",
        "exe",
        "dll",
        "so",
        "bin",
        "zip",
        "gz",
        "tar",
        "md",
        "csv",
        "nse",
        "db",
        "sql",
        "bak",
        "old",
        "key",
        "pem",
        "crt",
        "cer",
    ]
)
_PRODUCTS = frozenset({"asp.net", "node.js", "vue.js", "next.js", "socket.io", "express.js"})


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
        return None


@dataclass(frozen=True)
class Evidence:
    """What the scan data supports: hosts, ports (any state), host:port pairs and CVE ids."""

    hosts: frozenset[str] = frozenset()
    ports: frozenset[int] = frozenset()
    pairs: frozenset[tuple[str, int]] = frozenset()
    cves: frozenset[str] = frozenset()
    names: frozenset[str] = field(default=frozenset())  # single-label names, matched as words

    @classmethod
    def of(cls, reports: Iterable[Report]) -> Evidence:
        """Collect the evidence of one or more reports (both sides of a diff)."""
        hosts: set[str] = set()
        ports: set[int] = set()
        pairs: set[tuple[str, int]] = set()
        texts: list[str] = []
        for report in reports:
            hosts.update(t.lower() for t in report.targets)
            for h in report.hosts:
                keys = {(_ip(h.address) or h.address).lower()}
                keys.update(n.lower().rstrip(".") for n in h.hostnames)
                hosts.update(keys)
                texts += [s.output for s in h.scripts]
                for p in h.ports:
                    ports.add(p.port)
                    pairs.update((k, p.port) for k in keys)
                    texts += [p.product, p.version, p.extrainfo, *p.cpe]
                    texts += [s.output for s in p.scripts]
            texts.append(report.note)
        cves = {m.group(0).upper() for t in texts for m in _CVE.finditer(t)}
        names = {h for h in hosts if "." not in h and ":" not in h and h.isascii()}
        return cls(
            frozenset(hosts), frozenset(ports), frozenset(pairs), frozenset(cves), frozenset(names)
        )


def _mentions(text: str) -> Iterator[tuple[str, str, tuple[int, int], bool | None]]:
    """Every (kind, value, span, forced support) the text names; None means look it up."""
    taken: list[tuple[int, int]] = []

    def free(a: int, b: int) -> bool:
        return all(b <= s or a >= e for s, e in taken)

    for m in _CVE.finditer(text):
        taken.append(m.span())
        yield "cve", m.group(0).upper(), m.span(), None
    for m in _IPV4.finditer(text):
        addr = _ip(m.group(1))
        if addr is None:
            continue
        taken.append(m.span())
        yield "host", addr, m.span(1), None
        if m.group(2):
            yield "pair", f"{addr}:{int(m.group(2))}", m.span(), None
    for m in _IPV6.finditer(text):
        raw = m.group(1)
        if not any(c.isalnum() for c in raw) or not free(*m.span(1)):
            continue
        addr = _ip(raw)
        if addr is not None:
            taken.append(m.span(1))
            yield "host", addr, m.span(1), None
    for m in _HOSTNAME.finditer(text):
        name = m.group(1).lower()
        raw_last = m.group(1).rsplit(".", 1)[-1]
        last = raw_last.lower()
        # "invented.Host" is a missing space after a full stop, not a host name.
        sentence = raw_last[0].isupper() and raw_last[1:].islower()
        if last in _NOT_HOSTS or name in _PRODUCTS or sentence or not free(*m.span(1)):
            continue
        taken.append(m.span(1))
        yield "host", name, m.span(1), None
    for rx in (_PORT_PROTO, _PROTO_PORT):
        for m in rx.finditer(text):
            if free(*m.span()):
                taken.append(m.span())
                yield "port", str(int(m.group(1))), m.span(), None
    for m in _PORT_WORDS.finditer(text):
        base = m.start(1)
        for n in _NUMBER.finditer(m.group(1)):
            span = (base + n.start(), base + n.end())
            if free(*span):
                yield "port", str(int(n.group(0))), span, None


def check(text: str, *reports: Report) -> FactCheck:
    """Check every host, port and CVE id that ``text`` names against ``reports``."""
    ev = Evidence.of(reports)
    found: dict[tuple[str, str], tuple[bool, list[tuple[int, int]]]] = {}

    def add(kind: str, value: str, ok: bool, span: tuple[int, int]) -> None:
        prev = found.get((kind, value))
        spans = prev[1] if prev else []
        spans.append(span)
        found[(kind, value)] = (ok, spans)

    for kind, value, span, _ in _mentions(text):
        if kind == "cve":
            add(kind, value, value in ev.cves, span)
        elif kind == "host":
            add(kind, value, value in ev.hosts, span)
        elif kind == "pair":
            addr, _, port = value.rpartition(":")
            add("port", value, (addr, int(port)) in ev.pairs, span)
        elif kind == "port":
            number = int(value)
            if 1 <= number <= 65535:
                add(kind, value, number in ev.ports, span)
    for name in ev.names:
        for m in re.finditer(rf"(?<![\w.-]){re.escape(name)}(?![\w-])", text, re.IGNORECASE):
            add("host", name, True, m.span())
    claims = tuple(
        Claim(kind, value, ok, tuple(spans)) for (kind, value), (ok, spans) in found.items()
    )
    order = {k: i for i, k in enumerate(KINDS)}
    return FactCheck(tuple(sorted(claims, key=lambda c: (order[c.kind], not c.supported))))
