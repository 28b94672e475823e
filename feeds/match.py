"""Service CPEs and versions from ``-sV`` against the feeds' affected ranges: version guesses.

nmap names a service in CPE 2.2 (``cpe:/a:openbsd:openssh:7.4``); NVD's configurations use CPE
2.3 with an optional version range (``versionStartIncluding`` … ``versionEndExcluding``). A port
matches a range when part, vendor and product agree and its version is the range's version or
falls inside its bounds. A CPE without a version takes the version nmap printed for the port; a
port with no version at all is never matched (every version would be a guess of nothing).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Protocol
from urllib.parse import unquote

from feeds.models import CpeRange, CveRecord, Guess
from scanner.models import Port, Report

_VERSION = re.compile(r"\d+(?:\.\d+)*[a-z0-9.\-]*", re.IGNORECASE)
_TOKEN = re.compile(r"\d+|[a-z]+")
_ANY = ("*", "-", "")

Product = tuple[str, str, str]  # part, vendor, product
PortKey = tuple[str, int, str]  # address, port, protocol


class FeedLookup(Protocol):
    """What matching reads from a feed store."""

    def ranges_for(self, products: Iterable[Product]) -> list[CpeRange]:
        """Every vulnerable range of these (part, vendor, product) triples."""
        ...

    def cves(self, ids: Iterable[str]) -> dict[str, CveRecord]:
        """The stored CVEs among ``ids`` (without their ranges)."""
        ...

    def known_exploited(self, ids: Iterable[str]) -> set[str]:
        """Those of ``ids`` in the Known Exploited Vulnerabilities catalog."""
        ...


def version_key(version: str) -> tuple[tuple[int, int, str], ...]:
    """A sort key for a version string: numbers compare as numbers, letters as text."""
    return tuple(
        (1, int(t), "") if t.isdigit() else (0, 0, t) for t in _TOKEN.findall(version.lower())
    )


def in_range(version: str, r: CpeRange) -> bool:
    """Whether ``version`` is the range's own version or lies within its bounds."""
    v = version_key(version)
    if not v:
        return False
    if r.version not in _ANY:
        return v == version_key(r.version)
    if r.start_incl and v < version_key(r.start_incl):
        return False
    if r.start_excl and v <= version_key(r.start_excl):
        return False
    if r.end_incl and v > version_key(r.end_incl):
        return False
    return not (r.end_excl and v >= version_key(r.end_excl))


def port_products(port: Port) -> list[tuple[Product, str, str]]:
    """The (part, vendor, product), version and shown name of each of the port's CPEs."""
    out: list[tuple[Product, str, str]] = []
    fallback = _VERSION.search(port.version)
    for cpe in port.cpe:
        if cpe.startswith("cpe:/"):
            fields = [unquote(f) for f in cpe[5:].split(":")]
        elif cpe.startswith("cpe:2.3:"):
            from feeds.parse import split_cpe23

            fields = split_cpe23(cpe)[2:]
        else:
            continue
        if len(fields) < 3 or not fields[1] or not fields[2]:
            continue
        version = fields[3] if len(fields) > 3 and fields[3] not in _ANY else ""
        if not version and fields[0] == "a" and fallback:
            version = fallback.group(0)
        if version:
            product = (fields[0].lower(), fields[1].lower(), fields[2].lower())
            out.append((product, version, f"{cpe} (version {version})"))
    return out


def guesses(lookup: FeedLookup, report: Report) -> dict[PortKey, list[Guess]]:
    """Version guesses for every open port of the report, highest CVSS first."""
    wanted: list[tuple[PortKey, Product, str, str]] = []
    for h in report.hosts:
        for p in h.ports:
            if p.is_open and p.cpe:
                key = (h.address, p.port, p.protocol)
                wanted += [(key, prod, ver, shown) for prod, ver, shown in port_products(p)]
    if not wanted:
        return {}
    by_product: dict[Product, list[CpeRange]] = {}
    for r in lookup.ranges_for({w[1] for w in wanted}):
        by_product.setdefault((r.part, r.vendor, r.product), []).append(r)
    hits: dict[PortKey, dict[str, tuple[CpeRange, str]]] = {}
    for key, prod, version, shown in wanted:
        for r in by_product.get(prod, ()):
            if in_range(version, r):
                hits.setdefault(key, {}).setdefault(r.cve_id, (r, shown))
    ids = {cve for found in hits.values() for cve in found}
    records = lookup.cves(ids)
    exploited = lookup.known_exploited(ids)
    out: dict[PortKey, list[Guess]] = {}
    for key, found in hits.items():
        rows = [
            Guess(
                cve,
                records[cve].cvss if cve in records else None,
                cve in exploited,
                r.describe(),
                shown,
            )
            for cve, (r, shown) in found.items()
        ]
        rows.sort(
            key=lambda g: (
                -(g.cvss if g.cvss is not None else -1.0),
                not g.known_exploited,
                g.cve_id,
            )
        )
        out[key] = rows
    return out


def guess_json(g: Guess) -> dict[str, object]:
    """A guess as ``show --format json`` prints it."""
    return {
        "id": g.cve_id,
        "cvss": g.cvss,
        "known_exploited": g.known_exploited,
        "matched": g.matched,
        "service": g.service,
        "note": g.note,
    }
