"""The report history as a whole: the current exposure and how it moved over time."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from scanner.diff import canonical
from scanner.models import ReportSummary

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


def exposure_trend(
    reports: Sequence[ReportSummary], max_sets: int = 8, min_reports: int = 1
) -> pd.DataFrame:
    """Open ports and hosts up of every report at its scan time, for the sets scanned most.

    Only sets with at least ``min_reports`` reports are drawn, ``max_sets`` of them at most, so
    that the chart stays readable.
    """
    import pandas as pd

    counts: dict[str, int] = {}
    for r in reports:
        counts[target_set(r)] = counts.get(target_set(r), 0) + 1
    often = [k for k in counts if counts[k] >= min_reports]
    keep = set(sorted(often, key=lambda k: (-counts[k], k))[:max_sets])
    rows = [
        (pd.Timestamp(r.scanned_at, unit="s"), target_set(r), r.open_ports, r.hosts_up)
        for r in sorted(reports, key=lambda r: (r.scanned_at, r.id))
        if target_set(r) in keep
    ]
    return pd.DataFrame.from_records(rows, columns=["when", "targets", "open ports", "hosts up"])
