"""Typed, frozen scan report objects: report -> hosts -> ports -> scripts.

These are the language of the core. pandas only appears in ``*_frame`` helpers used by pages.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd


@contextmanager
def acyclic_build() -> Iterator[None]:
    """Pause the cyclic garbage collector while a large acyclic structure is built.

    A report is a tree of frozen objects, and the rows built from it are tuples of strings: no
    reference cycles anywhere, so the collector has nothing to find. Left on, it re-walks the
    growing heap many times while tens of thousands of objects are made.
    """
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


@dataclass(frozen=True, slots=True)
class Script:
    """The output of one NSE script, on a port or on a host."""

    id: str
    output: str


@dataclass(frozen=True, slots=True)
class Finding:
    """One known vulnerability an NSE script reported on a port.

    ``id`` is a CVE id where the script gave one (else the script's own id for the problem),
    ``cvss`` the score the script printed (None when it printed none), ``exploit`` whether it
    flagged a public exploit, ``source`` the script id, ``state`` the script's verdict
    (``VULNERABLE``, ``LIKELY VULNERABLE``; empty for version lookups such as vulners, which
    test nothing) and ``evidence`` a short line of what the script said.
    """

    id: str
    cvss: float | None = None
    exploit: bool = False
    source: str = ""
    state: str = ""
    evidence: str = ""


@dataclass(frozen=True, slots=True)
class OSMatch:
    """One OS guess from nmap's OS detection, with its accuracy in percent."""

    name: str
    accuracy: int


@dataclass(frozen=True, slots=True)
class Port:
    """One scanned port of one host."""

    port: int
    protocol: str
    state: str
    reason: str = ""
    service: str = ""
    product: str = ""
    version: str = ""
    extrainfo: str = ""
    cpe: tuple[str, ...] = ()
    scripts: tuple[Script, ...] = ()
    cves: tuple[Finding, ...] = ()

    @property
    def is_open(self) -> bool:
        """True for ``open`` (not ``open|filtered``, which nmap could not confirm)."""
        return self.state == "open"

    @property
    def label(self) -> str:
        """``22/tcp`` style name of the port."""
        return f"{self.port}/{self.protocol}"


def _port_maker() -> Callable[..., Port]:
    """A constructor for Port that sets its slots straight through their descriptors.

    The parser builds one Port per ``<port>`` element, tens of thousands for a large scan. A
    frozen dataclass's ``__init__`` goes through ``object.__setattr__`` by name for every field;
    setting the slot descriptors directly gives the identical object in about half the time.
    Port has no ``__post_init__``, so nothing is skipped.
    """
    new = object.__new__
    set_port, set_protocol, set_state, set_reason, set_service = (
        Port.__dict__[f].__set__ for f in ("port", "protocol", "state", "reason", "service")
    )
    set_product, set_version, set_extrainfo, set_cpe, set_scripts = (
        Port.__dict__[f].__set__ for f in ("product", "version", "extrainfo", "cpe", "scripts")
    )
    set_cves = Port.__dict__["cves"].__set__

    def make(
        port: int,
        protocol: str,
        state: str,
        reason: str,
        service: str,
        product: str,
        version: str,
        extrainfo: str,
        cpe: tuple[str, ...],
        scripts: tuple[Script, ...],
        cves: tuple[Finding, ...] = (),
    ) -> Port:
        obj: Port = new(Port)
        set_port(obj, port)
        set_protocol(obj, protocol)
        set_state(obj, state)
        set_reason(obj, reason)
        set_service(obj, service)
        set_product(obj, product)
        set_version(obj, version)
        set_extrainfo(obj, extrainfo)
        set_cpe(obj, cpe)
        set_scripts(obj, scripts)
        set_cves(obj, cves)
        return obj

    return make


make_port = _port_maker()


@dataclass(frozen=True, slots=True)
class Host:
    """One host in a report. A timed-out host is never the same as a clean one."""

    address: str
    addrtype: str = "ipv4"
    status: str = "up"
    reason: str = ""
    hostnames: tuple[str, ...] = ()
    mac: str = ""
    vendor: str = ""
    timed_out: bool = False
    os: tuple[OSMatch, ...] = ()
    ports: tuple[Port, ...] = ()
    scripts: tuple[Script, ...] = ()

    @property
    def open_ports(self) -> tuple[Port, ...]:
        """The ports nmap found open."""
        return tuple(p for p in self.ports if p.is_open)

    @property
    def os_guess(self) -> str:
        """The best OS match as ``name (accuracy%)``, or an empty string."""
        if not self.os:
            return ""
        best = max(self.os, key=lambda m: m.accuracy)
        return f"{best.name} ({best.accuracy}%)"


@dataclass(frozen=True, slots=True)
class Report:
    """One nmap run, scanned here or imported from a file."""

    id: str
    hosts: tuple[Host, ...] = ()
    targets: tuple[str, ...] = ()
    profile: str = ""
    source: str = "scan"
    started_at: float | None = None
    finished_at: float | None = None
    nmap_version: str = ""
    args: str = ""
    complete: bool = True
    note: str = ""
    created_at: float = 0.0
    owner: str = ""
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def hosts_up(self) -> int:
        """How many hosts nmap saw up."""
        return sum(1 for h in self.hosts if h.status == "up")

    @property
    def open_port_count(self) -> int:
        """How many open ports across all hosts."""
        return sum(len(h.open_ports) for h in self.hosts)

    @property
    def scanned_at(self) -> float:
        """When the scan ran (nmap's own start time), else when the report was saved."""
        return self.started_at or self.created_at

    def host(self, address: str) -> Host | None:
        """The host with this address, if the report has it."""
        for h in self.hosts:
            if h.address == address:
                return h
        return None


@dataclass(frozen=True, slots=True)
class ReportSummary:
    """One row of the report history, without the hosts."""

    id: str
    targets: tuple[str, ...]
    profile: str
    source: str
    created_at: float
    started_at: float | None
    finished_at: float | None
    hosts_total: int
    hosts_up: int
    open_ports: int
    complete: bool
    owner: str = ""
    summaries: int = 0

    @property
    def scanned_at(self) -> float:
        """When the scan ran (nmap's own start time), else when the report was saved.

        An imported file keeps the time its scan ran; ``created_at`` is when it was imported.
        """
        return self.started_at or self.created_at

    @classmethod
    def of(cls, report: Report, summaries: int = 0) -> ReportSummary:
        """Summarize a full report for the history list."""
        return cls(
            id=report.id,
            targets=report.targets,
            profile=report.profile,
            source=report.source,
            created_at=report.created_at,
            started_at=report.started_at,
            finished_at=report.finished_at,
            hosts_total=len(report.hosts),
            hosts_up=report.hosts_up,
            open_ports=report.open_port_count,
            complete=report.complete,
            owner=report.owner,
            summaries=summaries,
        )


HOST_COLUMNS = ("address", "hostnames", "status", "timed_out", "os", "open_ports", "mac", "vendor")
PORT_COLUMNS = (
    "address",
    "port",
    "protocol",
    "state",
    "reason",
    "service",
    "product",
    "version",
    "extrainfo",
    "cpe",
    "scripts",
)


def host_frame(report: Report) -> pd.DataFrame:
    """One row per host, for tables and CSV export."""
    import pandas as pd

    rows = [
        (
            h.address,
            ", ".join(h.hostnames),
            "timed out" if h.timed_out else h.status,
            h.timed_out,
            h.os_guess,
            len(h.open_ports),
            h.mac,
            h.vendor,
        )
        for h in report.hosts
    ]
    return pd.DataFrame.from_records(rows, columns=list(HOST_COLUMNS))


def port_frame(report: Report) -> pd.DataFrame:
    """One row per port of every host, for tables and CSV export."""
    import pandas as pd

    with acyclic_build():
        return pd.DataFrame.from_records(_port_rows(report), columns=list(PORT_COLUMNS))


def _port_rows(report: Report) -> list[tuple[Any, ...]]:
    return [
        (
            h.address,
            p.port,
            p.protocol,
            p.state,
            p.reason,
            p.service,
            p.product,
            p.version,
            p.extrainfo,
            " ".join(p.cpe) if p.cpe else "",
            ", ".join([s.id for s in p.scripts]) if p.scripts else "",
        )
        for h in report.hosts
        for p in h.ports
    ]
