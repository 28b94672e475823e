"""Overview numbers: a port's state comes from the newest scan that probed it; lines per profile."""

from __future__ import annotations

from scanner.diff import Coverage
from scanner.history import current_exposure, exposure_trend, ports_text
from scanner.models import Host, Port, Report, ReportSummary

FULL = [{"protocol": "tcp", "services": "1-65535"}]
QUICK = [{"protocol": "tcp", "services": "22,80,443"}]
TWO = [{"protocol": "tcp", "services": "22,80"}]
SIX = (22, 80, 443, 3306, 6379, 8080)


def report(
    rid: str,
    at: float,
    profile: str,
    scaninfo: list[dict[str, str]] | None,
    open_ports: tuple[int, ...],
    status: str = "up",
    timed_out: bool = False,
    source: str = "scan",
) -> Report:
    ports = tuple(Port(p, "tcp", "open", service=f"s{p}") for p in open_ports)
    return Report(
        id=rid,
        targets=("10.0.0.5",),
        profile=profile,
        source=source,
        started_at=at,
        created_at=at,
        hosts=(Host("10.0.0.5", status=status, timed_out=timed_out, ports=ports),),
        extra={"scaninfo": scaninfo} if scaninfo is not None else {},
    )


def exposure(*reports: Report) -> tuple[int, list[int]]:
    by_id = {r.id: r for r in reports}
    ex = current_exposure([ReportSummary.of(r) for r in reports], by_id.__getitem__)
    return ex.hosts_up, [p.port.port for p in ex.open_ports]


def test_a_two_port_rescan_does_not_hide_what_a_full_scan_found() -> None:
    full = report("full", 100.0, "full-tcp", FULL, SIX)
    narrow = report("two", 200.0, "", TWO, (), source="import: two.xml")
    assert exposure(full, narrow) == (1, [443, 3306, 6379, 8080])
    # The narrow scan found 22 and 80 closed: those are closed now, the rest stands.
    ex = current_exposure(
        [ReportSummary.of(full), ReportSummary.of(narrow)],
        {"full": full, "two": narrow}.__getitem__,
    )
    assert {p.report_id for p in ex.open_ports} == {"full"}


def test_a_newer_scan_of_a_port_overrides_an_older_one() -> None:
    full = report("full", 100.0, "full-tcp", FULL, SIX)
    quick = report("quick", 300.0, "quick", QUICK, (22,))
    # 22 still open, 80 and 443 closed by the quick scan; 3306, 6379, 8080 as the full scan saw.
    assert exposure(full, quick) == (1, [22, 3306, 6379, 8080])
    # Scan order, not list order, decides: the quick scan before the full one changes nothing.
    early_quick = report("quick", 50.0, "quick", QUICK, (22,))
    assert exposure(early_quick, full) == (1, list(SIX))


def test_a_host_down_now_exposes_nothing_and_a_timed_out_scan_decides_nothing() -> None:
    full = report("full", 100.0, "full-tcp", FULL, SIX)
    assert exposure(full, report("down", 200.0, "full-tcp", FULL, (), status="down")) == (0, [])
    timed_out = report("slow", 200.0, "full-tcp", FULL, (), timed_out=True)
    assert exposure(full, timed_out) == (1, list(SIX))


def test_a_report_without_port_lists_counts_as_probing_every_port() -> None:
    full = report("full", 100.0, "full-tcp", FULL, SIX)
    assert exposure(full, report("old", 200.0, "full-tcp", None, (80,))) == (1, [80])


def test_trend_draws_one_line_per_profile_and_port_list() -> None:
    reports = [
        report("q1", 100.0, "quick", QUICK, (22,)),
        report("f1", 200.0, "full-tcp", FULL, SIX),
        report("two", 300.0, "", TWO, (), source="import: two.xml"),
        report("q2", 400.0, "quick", QUICK, (22, 80)),
    ]
    coverage = {r.id: Coverage.of(r) for r in reports}
    trend = exposure_trend([ReportSummary.of(r) for r in reports], coverage=coverage)
    lines = {s: g["open ports"].tolist() for s, g in trend.groupby("series")}
    assert lines == {
        "10.0.0.5 · quick · tcp 22,80,443": [1, 2],
        "10.0.0.5 · full-tcp · tcp 1-65535": [6],
        "10.0.0.5 · imported · tcp 22,80": [0],
    }


def test_port_lists_are_named_short() -> None:
    assert ports_text(Coverage({"tcp": ((1, 1000),) * 1})) == "tcp 1-1000"
    many = Coverage({"tcp": ((1, 1), (3, 3), (5, 5), (7, 9)), "udp": ((53, 53),)})
    assert ports_text(many) == "6 tcp ports + udp 53"
    assert ports_text(None) == "ports not recorded"
