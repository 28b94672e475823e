"""The history as a whole: current exposure counts each target set once; the trend over time."""

from __future__ import annotations

from dataclasses import replace

from scanner.history import exposure_trend, latest_per_target_set, target_set
from scanner.models import ReportSummary


def row(
    rid: str, at: float, targets: tuple[str, ...], open_ports: int, source: str = "scan"
) -> ReportSummary:
    return ReportSummary(
        id=rid,
        targets=targets,
        profile="quick",
        source=source,
        created_at=at,
        started_at=None,
        finished_at=None,
        hosts_total=1,
        hosts_up=1,
        open_ports=open_ports,
        complete=True,
    )


def test_a_host_scanned_again_counts_once_at_its_newest_state() -> None:
    reports = [
        row("b", 20.0, ("10.0.0.1", "10.0.0.2"), 3),
        row("a", 10.0, ("10.0.0.2", "10.0.0.1"), 7),  # same targets, other order, older
        row("c", 15.0, ("127.0.0.1",), 1),
        row("i1", 5.0, (), 4, source="import"),
        row("i2", 6.0, (), 2, source="import"),  # no targets: each stands alone
    ]
    latest = latest_per_target_set(reports)
    assert [r.id for r in latest] == ["b", "c", "i2", "i1"]
    assert sum(r.open_ports for r in latest) == 10


def test_trend_is_in_time_order_and_keeps_the_most_scanned_sets() -> None:
    reports = [row(f"r{i}", float(100 - i), ("10.0.0.1",), i) for i in range(3)]
    reports += [row("x", 50.0, ("10.0.0.9",), 9)]
    trend = exposure_trend(reports, max_sets=1)
    assert trend["open ports"].tolist() == [2, 1, 0]
    assert set(trend["targets"]) == {target_set(reports[0])} == {"10.0.0.1"}
    assert trend["when"].is_monotonic_increasing


def test_trend_can_leave_out_sets_scanned_only_once() -> None:
    reports = [row("a", 1.0, ("10.0.0.1",), 1), row("b", 2.0, ("10.0.0.1",), 2)]
    reports += [row("once", 3.0, ("10.0.0.9",), 5)]
    assert exposure_trend(reports, min_reports=2)["targets"].unique().tolist() == ["10.0.0.1"]
    assert len(exposure_trend(reports)) == 3


def test_an_old_scan_imported_today_is_not_the_current_exposure() -> None:
    scanned_last_week = row("scan", 1_800_000_000.0, ("10.0.0.1",), 2)
    imported_today = replace(
        row("import-2016", 1_800_600_000.0, ("10.0.0.1",), 9, source="import: old.xml"),
        started_at=1_460_000_000.0,
    )
    assert imported_today.scanned_at == 1_460_000_000.0
    assert [r.id for r in latest_per_target_set([imported_today, scanned_last_week])] == ["scan"]
    trend = exposure_trend([scanned_last_week, imported_today])
    assert trend["open ports"].tolist() == [9, 2]
    assert trend["when"].iloc[0].year == 2016


def test_the_same_ipv6_target_written_two_ways_is_one_target_set() -> None:
    long_form = row("a", 1.0, ("0:0:0:0:0:0:0:1",), 1)
    short_form = row("b", 2.0, ("::1",), 3)
    assert target_set(long_form) == target_set(short_form) == "::1"
    assert [r.id for r in latest_per_target_set([long_form, short_form])] == ["b"]
