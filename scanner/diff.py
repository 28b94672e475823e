"""What changed between two reports: new and gone hosts, opened and closed ports, changed services.

Hosts are matched by address (IPv6 in canonical form) and ports by number and protocol. A host
that timed out in either report is left out of the port comparison (its ports are unknown, not
closed) and listed in ``uncertain`` instead. A port missing from a report is "not scanned" when
that scan never covered it (its ``scaninfo`` port lists), so it is neither opened nor closed.
"""

from __future__ import annotations

import bisect
import datetime as dt
import ipaddress
from dataclasses import dataclass
from typing import Any

from scanner.models import Host, Port, Report, ReportSummary
from store.base import Store


@dataclass(frozen=True, slots=True)
class ServiceInfo:
    """The service fields compared between two scans of one port."""

    service: str
    product: str
    version: str

    @classmethod
    def of(cls, port: Port) -> ServiceInfo:
        """The service fields of ``port``."""
        return cls(port.service, port.product, port.version)

    def as_dict(self) -> dict[str, str]:
        """The fields as a JSON-ready dict."""
        return {"service": self.service, "product": self.product, "version": self.version}

    def text(self) -> str:
        """``service product version`` on one line, for tables."""
        return " ".join(x for x in (self.service, self.product, self.version) if x) or "—"


@dataclass(frozen=True, slots=True)
class HostEntry:
    """A host that appeared or disappeared, with its open ports."""

    address: str
    hostnames: tuple[str, ...]
    open_ports: tuple[Port, ...]

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "address": self.address,
            "hostnames": list(self.hostnames),
            "open_ports": [
                {"port": p.port, "protocol": p.protocol, **ServiceInfo.of(p).as_dict()}
                for p in self.open_ports
            ],
        }


@dataclass(frozen=True, slots=True)
class PortEntry:
    """A port that opened or closed on a host present in both reports."""

    address: str
    port: int
    protocol: str
    service: ServiceInfo
    state_before: str
    state_after: str

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "address": self.address,
            "port": self.port,
            "protocol": self.protocol,
            **self.service.as_dict(),
            "state_before": self.state_before,
            "state_after": self.state_after,
        }


@dataclass(frozen=True, slots=True)
class ChangeEntry:
    """An open port whose service, product or version changed."""

    address: str
    port: int
    protocol: str
    before: ServiceInfo
    after: ServiceInfo

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "address": self.address,
            "port": self.port,
            "protocol": self.protocol,
            "before": self.before.as_dict(),
            "after": self.after.as_dict(),
        }


@dataclass(frozen=True, slots=True)
class ReportDiff:
    """The difference between an older and a newer report."""

    old_id: str
    new_id: str
    new_hosts: tuple[HostEntry, ...]
    gone_hosts: tuple[HostEntry, ...]
    opened: tuple[PortEntry, ...]
    closed: tuple[PortEntry, ...]
    changed: tuple[ChangeEntry, ...]
    uncertain: tuple[str, ...] = ()
    # Open now, on a port the earlier scan never covered: found, not necessarily opened.
    newly_scanned_open: tuple[PortEntry, ...] = ()
    # Open before, on a port the later scan never covered: unknown now, not closed.
    not_rescanned: tuple[PortEntry, ...] = ()

    @property
    def empty(self) -> bool:
        """True when nothing changed."""
        return not (
            self.new_hosts
            or self.gone_hosts
            or self.opened
            or self.closed
            or self.changed
            or self.newly_scanned_open
            or self.not_rescanned
        )

    def as_dict(self) -> dict[str, Any]:
        """The diff as JSON: new and gone hosts, opened, closed, changed and not-scanned ports."""
        return {
            "new_hosts": [h.as_dict() for h in self.new_hosts],
            "gone_hosts": [h.as_dict() for h in self.gone_hosts],
            "opened": [p.as_dict() for p in self.opened],
            "closed": [p.as_dict() for p in self.closed],
            "changed": [c.as_dict() for c in self.changed],
            "newly_scanned_open": [p.as_dict() for p in self.newly_scanned_open],
            "not_rescanned": [p.as_dict() for p in self.not_rescanned],
        }


NOT_SCANNED = "not scanned"
# A port the scan covered but did not list: nmap folds closed and filtered ports into a count.
NOT_LISTED = "closed or filtered"
# A port missing from a report whose port lists are unknown (saved before they were kept).
UNKNOWN = "not listed"


@dataclass(frozen=True, slots=True)
class Coverage:
    """The ports one scan covered, per protocol, as sorted inclusive ranges."""

    ranges: dict[str, tuple[tuple[int, int], ...]]

    @classmethod
    def of(cls, report: Report) -> Coverage | None:
        """What ``report`` scanned, from nmap's ``scaninfo``; None when the report does not say."""
        infos = report.extra.get("scaninfo")
        if not isinstance(infos, list) or not infos:
            return None
        spans: dict[str, list[tuple[int, int]]] = {}
        for info in infos:
            if not isinstance(info, dict):
                return None
            protocol = str(info.get("protocol") or "tcp")
            spans.setdefault(protocol, []).extend(_ranges(str(info.get("services") or "")))
        return cls({k: tuple(_merge(v)) for k, v in spans.items()})

    def covers(self, port: int, protocol: str) -> bool:
        """True when this scan probed ``port``/``protocol``."""
        ranges = self.ranges.get(protocol, ())
        i = bisect.bisect_right(ranges, (port, 65536)) - 1
        return i >= 0 and ranges[i][0] <= port <= ranges[i][1]


def _ranges(services: str) -> list[tuple[int, int]]:
    """nmap's ``1,3-4,6-7`` as ranges; anything unreadable is skipped."""
    out = []
    for part in services.split(","):
        lo, _, hi = part.strip().partition("-")
        if lo.isdigit() and (not hi or hi.isdigit()):
            out.append((int(lo), int(hi or lo)))
    return out


def _merge(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for lo, hi in sorted(ranges):
        if merged and lo <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(hi, merged[-1][1]))
        else:
            merged.append((lo, hi))
    return merged


def canonical(address: str) -> str:
    """An address or network in one spelling: ``0:0:0:0:0:0:0:1`` and ``::1`` are the same host.

    A single-address network (``::1/128``) is written as the address; a name or an nmap range
    is only stripped and lower-cased.
    """
    text = address.strip()
    try:
        net = ipaddress.ip_network(text, strict=False)
    except ValueError:
        return text.lower()
    if net.num_addresses == 1:
        return str(net.network_address)
    return str(net)


def _up(report: Report) -> dict[str, Host]:
    return {canonical(h.address): h for h in report.hosts if h.status == "up"}


def _entry(h: Host) -> HostEntry:
    return HostEntry(h.address, h.hostnames, h.open_ports)


def _addr_key(address: str) -> tuple[int, str]:
    # Numeric order for IPv4 so 10.0.0.9 comes before 10.0.0.10; anything else after, by text.
    parts = address.split(".")
    if len(parts) == 4 and all(p.isdigit() for p in parts):
        return (0, ".".join(f"{int(p):03d}" for p in parts))
    return (1, address)


def _missing(coverage: Coverage | None, key: tuple[int, str]) -> str:
    """The state of a port a report does not list."""
    if coverage is None:
        return UNKNOWN
    return NOT_LISTED if coverage.covers(*key) else NOT_SCANNED


def diff_reports(old: Report, new: Report) -> ReportDiff:
    """Compare an older report with a newer one.

    A port only one report lists counts as opened or closed when the other scan covered it;
    when the other scan never probed it, it goes to ``newly_scanned_open`` or
    ``not_rescanned`` instead. A report saved without its port lists is taken to have covered
    every port it is compared on, as before those lists were kept.
    """
    before, after = _up(old), _up(new)
    cover0, cover1 = Coverage.of(old), Coverage.of(new)
    new_hosts = [_entry(after[a]) for a in sorted(after.keys() - before.keys(), key=_addr_key)]
    gone_hosts = [_entry(before[a]) for a in sorted(before.keys() - after.keys(), key=_addr_key)]
    opened: list[PortEntry] = []
    closed: list[PortEntry] = []
    changed: list[ChangeEntry] = []
    found: list[PortEntry] = []
    unknown_now: list[PortEntry] = []
    uncertain: list[str] = []
    for key_address in sorted(before.keys() & after.keys(), key=_addr_key):
        h0, h1 = before[key_address], after[key_address]
        address = h1.address
        if h0.timed_out or h1.timed_out:
            uncertain.append(address)
            continue
        p0 = {(p.port, p.protocol): p for p in h0.ports}
        p1 = {(p.port, p.protocol): p for p in h1.ports}
        for key in sorted(p0.keys() | p1.keys()):
            a, b = p0.get(key), p1.get(key)
            was_open = a is not None and a.is_open
            is_open = b is not None and b.is_open
            state_a = a.state if a is not None else _missing(cover0, key)
            state_b = b.state if b is not None else _missing(cover1, key)
            if is_open and not was_open:
                assert b is not None
                entry = PortEntry(address, key[0], key[1], ServiceInfo.of(b), state_a, state_b)
                (found if state_a == NOT_SCANNED else opened).append(entry)
            elif was_open and not is_open:
                assert a is not None
                entry = PortEntry(address, key[0], key[1], ServiceInfo.of(a), state_a, state_b)
                (unknown_now if state_b == NOT_SCANNED else closed).append(entry)
            elif was_open and is_open:
                assert a is not None and b is not None
                s0, s1 = ServiceInfo.of(a), ServiceInfo.of(b)
                if s0 != s1:
                    changed.append(ChangeEntry(address, key[0], key[1], s0, s1))
    return ReportDiff(
        old_id=old.id,
        new_id=new.id,
        new_hosts=tuple(new_hosts),
        gone_hosts=tuple(gone_hosts),
        opened=tuple(opened),
        closed=tuple(closed),
        changed=tuple(changed),
        uncertain=tuple(uncertain),
        newly_scanned_open=tuple(found),
        not_rescanned=tuple(unknown_now),
    )


def _targets(r: ReportSummary | Report) -> set[str]:
    return {canonical(t) for t in r.targets}


def same_targets(a: ReportSummary | Report, b: ReportSummary | Report) -> bool:
    """True when two reports name the same targets (order, repeats and spelling ignored)."""
    return bool(a.targets) and _targets(a) == _targets(b)


def targets_overlap(a: ReportSummary | Report, b: ReportSummary | Report) -> bool:
    """True when two reports scanned at least one address in common, as far as their targets say.

    Addresses and CIDR blocks are compared as networks (``10.0.0.5`` is inside ``10.0.0.0/24``);
    names and nmap ranges only when written the same way.
    """
    ta, tb = _targets(a), _targets(b)
    if ta & tb:
        return True
    na, nb = _networks(ta), _networks(tb)
    return any(x.version == y.version and x.overlaps(y) for x in na for y in nb)


def _networks(targets: set[str]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    out = []
    for t in targets:
        try:
            out.append(ipaddress.ip_network(t, strict=False))
        except ValueError:
            continue
    return out


def is_older(a: ReportSummary | Report, b: ReportSummary | Report) -> bool:
    """True when ``a``'s scan ran before ``b``'s (the id breaks a tie)."""
    return (a.scanned_at, a.id) < (b.scanned_at, b.id)


def earlier_choices(
    reports: list[ReportSummary], report: ReportSummary | Report
) -> list[ReportSummary]:
    """The reports a diff of ``report`` may start from: scanned before it, targets overlapping.

    Newest scan first. A report without targets (an import whose command line named none)
    matches only another such report, since nothing says what it covered.
    """
    rows = [
        r
        for r in reports
        if r.id != report.id
        and is_older(r, report)
        and (targets_overlap(r, report) or not (r.targets or report.targets))
    ]
    return sorted(rows, key=lambda r: (r.scanned_at, r.id), reverse=True)


def mismatch(old: ReportSummary | Report, new: ReportSummary | Report) -> list[str]:
    """What makes two reports a doubtful pair for a diff, in words; empty when they match."""
    problems = []
    if not same_targets(old, new):
        problems.append(
            f"the targets differ ({' '.join(old.targets) or 'none named'} before, "
            f"{' '.join(new.targets) or 'none named'} now)"
        )
    if old.profile != new.profile:
        problems.append(
            f"the profiles differ ({old.profile or 'none'} before, {new.profile or 'none'} now)"
        )
    if not is_older(old, new):
        problems.append("the earlier report's scan ran after this one")
    return problems


def pair_text(old: ReportSummary | Report, new: ReportSummary | Report) -> str:
    """Which two reports a diff compares, in one line: ids, targets and when each scan ran."""

    def one(r: ReportSummary | Report) -> str:
        targets = " ".join(r.targets)[:120] or "no targets named"
        scanned = dt.datetime.fromtimestamp(r.scanned_at, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        return f"{r.id} ({targets}; scanned {scanned})"

    return f"changes from {one(old)} to {one(new)}"


# How many candidate reports default_base reads in full to compare their port lists.
BASE_CANDIDATES = 10


def default_base(store: Store, report: Report | ReportSummary) -> ReportSummary | None:
    """The newest report scanned before ``report`` with the same targets, profile and ports.

    Order is by scan time, so a file imported today of a 2016 scan is never "newer". The port
    lists come from each scan's ``scaninfo``: a quick scan is not the baseline of a full one.
    """
    candidates = [
        row
        for row in store.list_reports()
        if row.id != report.id
        and is_older(row, report)
        and same_targets(row, report)
        and row.profile == report.profile
    ]
    candidates.sort(key=lambda r: (r.scanned_at, r.id), reverse=True)
    if not candidates:
        return None
    full = report if isinstance(report, Report) else store.get_report(report.id)
    ports = Coverage.of(full)
    for row in candidates[:BASE_CANDIDATES]:
        if Coverage.of(store.get_report(row.id)) == ports:
            return row
    return None
