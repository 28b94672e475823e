"""The report history as a whole: the current exposure and how it moved over time.

Scans of the same targets differ in what they probed: a quick scan, a full TCP scan and a scan of
two ports are three different measurements. The trend draws each (targets, profile, ports) as a
line of its own, and the current exposure takes each port's state from the newest scan that
probed it, so a narrow rescan does not hide what a wider scan found.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from scanner.diff import Coverage, canonical
from scanner.models import Port, Report, ReportSummary

if TYPE_CHECKING:
    import pandas as pd


def target_set(report: ReportSummary) -> str:
    """A stable name for what a report scanned; a report with no targets stands alone."""
    return (
        " ".join(sorted({canonical(t) for t in report.targets}))
        or f"({report.source or 'report'} {report.id})"
    )


def latest_per_target_set(reports: Sequence[ReportSummary]) -> list[ReportSummary]:
    """The newest scan of each set of targets, newest first, by when each scan ran.

    Summing hosts or ports over every report would count a host scanned ten times ten times;
    the newest scan of each target set is what is exposed now. An old scan imported today is
    not the newest.
    """
    newest: dict[str, ReportSummary] = {}
    for r in reports:
        key = target_set(r)
        seen = newest.get(key)
        if seen is None or (r.scanned_at, r.id) > (seen.scanned_at, seen.id):
            newest[key] = r
    return sorted(newest.values(), key=lambda r: (r.scanned_at, r.id), reverse=True)


def ports_text(coverage: Coverage | None) -> str:
    """What a scan probed, short: ``tcp 22,80``, ``tcp 1-65535`` or ``100 tcp ports``."""
    if coverage is None:
        return "ports not recorded"
    parts = []
    for protocol, ranges in sorted(coverage.ranges.items()):
        if len(ranges) <= 3:
            spans = ",".join(str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in ranges)
            parts.append(f"{protocol} {spans}")
        else:
            parts.append(f"{sum(hi - lo + 1 for lo, hi in ranges)} {protocol} ports")
    return " + ".join(parts) or "no ports"


def profile_text(report: ReportSummary) -> str:
    """The profile a report ran with; an imported file has none of ScanScribe's profiles."""
    return report.profile or ("imported" if report.source.startswith("import") else report.source)


TREND_COLUMNS = ["when", "series", "targets", "profile", "ports", "open ports", "hosts up", "id"]


def exposure_trend(
    reports: Sequence[ReportSummary],
    max_sets: int = 8,
    min_reports: int = 1,
    coverage: Mapping[str, Coverage | None] | None = None,
) -> pd.DataFrame:
    """Open ports and hosts up of every report at its scan time, one series per measurement.

    A series is one set of targets scanned with one profile over one port list (``coverage``
    gives each report's port list by id; without it the profile alone tells scans apart), so a
    2-port rescan never draws a drop in a line of full scans. Only series with at least
    ``min_reports`` reports are kept, ``max_sets`` of them at most, so the chart stays readable.
    """
    import pandas as pd

    def key(r: ReportSummary) -> tuple[str, str, str]:
        ports = ports_text(coverage.get(r.id)) if coverage is not None else ""
        return (target_set(r), profile_text(r), ports)

    counts: dict[tuple[str, str, str], int] = {}
    for r in reports:
        counts[key(r)] = counts.get(key(r), 0) + 1
    often = [k for k in counts if counts[k] >= min_reports]
    keep = set(sorted(often, key=lambda k: (-counts[k], k))[:max_sets])
    rows = []
    for r in sorted(reports, key=lambda r: (r.scanned_at, r.id)):
        k = key(r)
        if k in keep:
            series = " · ".join(x for x in k if x)
            when = pd.Timestamp(r.scanned_at, unit="s")
            rows.append((when, series, *k, r.open_ports, r.hosts_up, r.id))
    return pd.DataFrame.from_records(rows, columns=TREND_COLUMNS)


@dataclass(frozen=True, slots=True)
class OpenPort:
    """A port open now: the host, the port and the report whose scan last probed it."""

    address: str
    port: Port
    report_id: str
    scanned_at: float


@dataclass(frozen=True, slots=True)
class Exposure:
    """What is exposed now across the target sets: hosts up and the ports open on them."""

    hosts_up: int
    open_ports: tuple[OpenPort, ...]
    reports_read: int


def current_exposure(
    summaries: Sequence[ReportSummary],
    load: Callable[[str], Report],
    per_set: int = 10,
) -> Exposure:
    """Hosts up and open ports now, each port as the newest scan that probed it found it.

    Hosts up come from the newest scan of each target set. A port's state comes from the newest
    of that set's last ``per_set`` scans whose port list covered it (and in which the host was up
    and did not time out): a 2-port rescan leaves the ports only a full scan probed as that scan
    found them. A report saved without its port list counts as having probed every port.
    """
    groups: dict[str, list[ReportSummary]] = {}
    for r in summaries:
        groups.setdefault(target_set(r), []).append(r)
    hosts_up = 0
    found: list[OpenPort] = []
    read = 0
    for rows in groups.values():
        rows.sort(key=lambda r: (r.scanned_at, r.id), reverse=True)
        reports = [load(r.id) for r in rows[:per_set]]
        read += len(reports)
        hosts_up += reports[0].hosts_up
        found += _open_now(reports)
    found.sort(key=lambda p: (p.address, p.port.protocol, p.port.port))
    return Exposure(hosts_up, tuple(found), read)


def _open_now(reports: Sequence[Report]) -> list[OpenPort]:
    """The open ports of one target set, newest report first in ``reports``."""
    newest = reports[0]
    scans = [(r, Coverage.of(r), {canonical(h.address): h for h in r.hosts}) for r in reports]
    out = []
    for host in newest.hosts:
        if host.status != "up":
            continue  # down in the newest scan: nothing of it is exposed now
        address = canonical(host.address)
        seen = [
            (r, cov, {(p.port, p.protocol): p for p in h.ports})
            for r, cov, hosts in scans
            if (h := hosts.get(address)) is not None and h.status == "up" and not h.timed_out
        ]
        keys = {key for _, _, ports in seen for key in ports}
        for key in sorted(keys, key=lambda k: (k[1], k[0])):
            for r, cov, ports in seen:
                if key in ports or cov is None or cov.covers(*key):
                    port = ports.get(key)
                    if port is not None and port.is_open:
                        out.append(OpenPort(host.address, port, r.id, r.scanned_at))
                    break
    return out
