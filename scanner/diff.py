"""What changed between two reports: new and gone hosts, opened and closed ports, changed services.

Hosts are matched by address and ports by number and protocol. A host that timed out in either
report is left out of the port comparison (its ports are unknown, not closed) and listed in
``uncertain`` instead.
"""

from __future__ import annotations

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

    @property
    def empty(self) -> bool:
        """True when nothing changed."""
        return not (self.new_hosts or self.gone_hosts or self.opened or self.closed or self.changed)

    def as_dict(self) -> dict[str, Any]:
        """The diff as JSON: new_hosts, gone_hosts, opened, closed, changed."""
        return {
            "new_hosts": [h.as_dict() for h in self.new_hosts],
            "gone_hosts": [h.as_dict() for h in self.gone_hosts],
            "opened": [p.as_dict() for p in self.opened],
            "closed": [p.as_dict() for p in self.closed],
            "changed": [c.as_dict() for c in self.changed],
        }


def _up(report: Report) -> dict[str, Host]:
    return {h.address: h for h in report.hosts if h.status == "up"}


def _entry(h: Host) -> HostEntry:
    return HostEntry(h.address, h.hostnames, h.open_ports)


def _addr_key(address: str) -> tuple[int, str]:
    # Numeric order for IPv4 so 10.0.0.9 comes before 10.0.0.10; anything else after, by text.
    parts = address.split(".")
    if len(parts) == 4 and all(p.isdigit() for p in parts):
        return (0, ".".join(f"{int(p):03d}" for p in parts))
    return (1, address)


def diff_reports(old: Report, new: Report) -> ReportDiff:
    """Compare an older report with a newer one."""
    before, after = _up(old), _up(new)
    new_hosts = [_entry(after[a]) for a in sorted(after.keys() - before.keys(), key=_addr_key)]
    gone_hosts = [_entry(before[a]) for a in sorted(before.keys() - after.keys(), key=_addr_key)]
    opened: list[PortEntry] = []
    closed: list[PortEntry] = []
    changed: list[ChangeEntry] = []
    uncertain: list[str] = []
    for address in sorted(before.keys() & after.keys(), key=_addr_key):
        h0, h1 = before[address], after[address]
        if h0.timed_out or h1.timed_out:
            uncertain.append(address)
            continue
        p0 = {(p.port, p.protocol): p for p in h0.ports}
        p1 = {(p.port, p.protocol): p for p in h1.ports}
        for key in sorted(p0.keys() | p1.keys()):
            a, b = p0.get(key), p1.get(key)
            was_open = a is not None and a.is_open
            is_open = b is not None and b.is_open
            state_a = a.state if a is not None else "not scanned"
            state_b = b.state if b is not None else "not scanned"
            if is_open and not was_open:
                assert b is not None
                opened.append(
                    PortEntry(address, key[0], key[1], ServiceInfo.of(b), state_a, state_b)
                )
            elif was_open and not is_open:
                assert a is not None
                closed.append(
                    PortEntry(address, key[0], key[1], ServiceInfo.of(a), state_a, state_b)
                )
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
    )


def same_targets(a: ReportSummary | Report, b: ReportSummary | Report) -> bool:
    """True when two reports name the same targets (order and repeats ignored)."""
    return bool(a.targets) and set(a.targets) == set(b.targets)


def default_base(store: Store, report: Report | ReportSummary) -> ReportSummary | None:
    """The newest report older than ``report`` that scanned the same targets, if any."""
    for row in store.list_reports():
        if row.id == report.id:
            continue
        older = (row.created_at, row.id) < (report.created_at, report.id)
        if older and same_targets(row, report):
            return row
    return None
