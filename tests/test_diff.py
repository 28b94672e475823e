"""Diff of two reports: crafted pairs with known answers, and a real before/after pair."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from scanner.diff import (
    Coverage,
    canonical,
    default_base,
    diff_reports,
    earlier_choices,
    mismatch,
    same_targets,
)
from scanner.models import Host, Port, Report, ReportSummary
from scanner.parser import parse_report
from store.sqlite import SQLiteStore

FIXTURES = Path(__file__).parent / "fixtures"
CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "real-nmap" / "real"


def port(
    n: int, state: str = "open", service: str = "", product: str = "", version: str = ""
) -> Port:
    return Port(n, "tcp", state, service=service, product=product, version=version)


def rep(
    rid: str, *hosts: Host, targets: tuple[str, ...] = ("10.0.0.0/29",), at: float = 0
) -> Report:
    return Report(id=rid, hosts=hosts, targets=targets, created_at=at)


def test_identical_reports_have_no_changes() -> None:
    h = Host("10.0.0.1", ports=(port(22, service="ssh", product="OpenSSH", version="9.2"),))
    d = diff_reports(rep("a", h), rep("b", h))
    assert d.empty
    assert d.as_dict() == {
        "new_hosts": [],
        "gone_hosts": [],
        "opened": [],
        "closed": [],
        "changed": [],
        "newly_scanned_open": [],
        "not_rescanned": [],
    }


def test_crafted_pair_finds_every_kind_of_change() -> None:
    old = rep(
        "old",
        Host(
            "10.0.0.1",
            ports=(
                port(22, service="ssh", product="OpenSSH", version="7.4"),
                port(23, service="telnet"),
                port(80, "closed"),
            ),
        ),
        Host("10.0.0.2", hostnames=("gone.example.test",), ports=(port(443, service="https"),)),
        Host("10.0.0.3", status="down"),
    )
    new = rep(
        "new",
        Host(
            "10.0.0.1",
            ports=(
                port(22, service="ssh", product="OpenSSH", version="9.2p1"),
                port(23, "closed", service="telnet"),
                port(80, service="http"),
                port(8080, service="http-proxy"),
            ),
        ),
        Host("10.0.0.3", ports=(port(3306, service="mysql"),)),
    )
    d = diff_reports(old, new)
    out = d.as_dict()
    assert out["newly_scanned_open"] == out["not_rescanned"] == []
    # A host that was down and is now up is new; one that vanished is gone.
    assert [h["address"] for h in out["new_hosts"]] == ["10.0.0.3"]
    assert out["new_hosts"][0]["open_ports"][0]["port"] == 3306
    assert out["gone_hosts"] == [
        {
            "address": "10.0.0.2",
            "hostnames": ["gone.example.test"],
            "open_ports": [
                {"port": 443, "protocol": "tcp", "service": "https", "product": "", "version": ""}
            ],
        }
    ]
    assert [(p["address"], p["port"], p["protocol"], p["state_before"]) for p in out["opened"]] == [
        ("10.0.0.1", 80, "tcp", "closed"),
        # Saved without its port lists: a port it does not list is taken as covered.
        ("10.0.0.1", 8080, "tcp", "not listed"),
    ]
    assert [(p["port"], p["state_after"], p["service"]) for p in out["closed"]] == [
        (23, "closed", "telnet")
    ]
    assert out["changed"] == [
        {
            "address": "10.0.0.1",
            "port": 22,
            "protocol": "tcp",
            "before": {"service": "ssh", "product": "OpenSSH", "version": "7.4"},
            "after": {"service": "ssh", "product": "OpenSSH", "version": "9.2p1"},
        }
    ]


def test_timed_out_host_is_not_reported_as_closing_its_ports() -> None:
    old = rep("old", Host("10.0.0.1", ports=(port(22, service="ssh"),)))
    new = rep("new", Host("10.0.0.1", timed_out=True))
    d = diff_reports(old, new)
    assert d.closed == () and d.gone_hosts == ()
    assert d.uncertain == ("10.0.0.1",)


def test_port_protocols_are_told_apart() -> None:
    old = rep("old", Host("10.0.0.1", ports=(Port(53, "udp", "open", service="domain"),)))
    new = rep("new", Host("10.0.0.1", ports=(Port(53, "tcp", "open", service="domain"),)))
    d = diff_reports(old, new)
    assert [(p.port, p.protocol) for p in d.opened] == [(53, "tcp")]
    assert [(p.port, p.protocol) for p in d.closed] == [(53, "udp")]


def test_real_before_and_after_scans_of_a_namespace() -> None:
    before = parse_report((FIXTURES / "netns_before.xml").read_bytes(), report_id="before")
    after = parse_report((FIXTURES / "netns_after.xml").read_bytes(), report_id="after")
    d = diff_reports(before, after)
    assert [h.address for h in d.new_hosts] == ["10.231.7.3"]
    assert d.gone_hosts == ()
    assert [(p.address, p.port) for p in d.opened] == [("10.231.7.2", 80)]
    assert d.opened[0].service.product == "SimpleHTTPServer"
    assert [(p.address, p.port, p.service.service) for p in d.closed] == [
        ("10.231.7.2", 18023, "telnet")
    ]
    assert [(c.port, c.before.version, c.after.version) for c in d.changed] == [
        (18022, "7.4", "9.2p1")
    ]


def test_default_base_is_the_previous_scan_of_the_same_targets(sqlite_store: SQLiteStore) -> None:
    a = rep("rep-a", targets=("10.0.0.0/29",), at=100)
    other = rep("rep-b", targets=("192.0.2.1",), at=200)
    c = rep("rep-c", targets=("10.0.0.0/29",), at=300)
    d = rep("rep-d", targets=("10.0.0.0/29",), at=400)
    for r in (a, other, c, d):
        sqlite_store.save_report(r)
    assert default_base(sqlite_store, d).id == "rep-c"  # type: ignore[union-attr]
    assert default_base(sqlite_store, c).id == "rep-a"  # type: ignore[union-attr]
    assert default_base(sqlite_store, a) is None
    assert default_base(sqlite_store, other) is None


def nmap_xml(services: str, *ports: tuple[int, str], address: str = "10.0.0.1") -> bytes:
    """A minimal nmap run that covered ``services`` (nmap's list) and listed ``ports``."""
    listed = "".join(
        f'<port protocol="tcp" portid="{n}"><state state="{state}"/></port>' for n, state in ports
    )
    return (
        '<?xml version="1.0"?><nmaprun scanner="nmap" args="nmap" start="1700000000">'
        f'<scaninfo type="syn" protocol="tcp" numservices="9" services="{services}"/>'
        f'<host><status state="up"/><address addr="{address}" addrtype="ipv4"/>'
        f"<ports>{listed}</ports></host>"
        '<runstats><finished time="1700000010"/></runstats></nmaprun>'
    ).encode()


def test_a_port_the_later_scan_never_covered_is_not_scanned_not_closed() -> None:
    # A scan of 1-1024 found 22 and 80 open; the next scanned only port 22.
    old = parse_report(nmap_xml("1-1024", (22, "open"), (80, "open")), report_id="old")
    new = parse_report(nmap_xml("22", (22, "open")), report_id="new")
    d = diff_reports(old, new)
    assert d.closed == ()
    assert [(p.port, p.state_before, p.state_after) for p in d.not_rescanned] == [
        (80, "open", "not scanned")
    ]
    # Port 80 was scanned again and not listed: that is a close.
    again = parse_report(nmap_xml("1-1024", (22, "open")), report_id="again")
    d = diff_reports(old, again)
    assert [(p.port, p.state_after) for p in d.closed] == [(80, "closed or filtered")]
    assert d.not_rescanned == ()


def test_open_on_a_port_the_earlier_scan_never_covered_is_not_counted_as_opened() -> None:
    old = parse_report(nmap_xml("22,80", (22, "open")), report_id="old")
    new = parse_report(
        nmap_xml("1-65535", (22, "open"), (80, "open"), (8443, "open")), report_id="new"
    )
    d = diff_reports(old, new)
    # 80 was probed before and not listed: it opened. 8443 was never probed: it was found.
    assert [(p.port, p.state_before) for p in d.opened] == [(80, "closed or filtered")]
    assert [(p.port, p.state_before) for p in d.newly_scanned_open] == [(8443, "not scanned")]
    out = d.as_dict()
    assert [p["port"] for p in out["newly_scanned_open"]] == [8443]
    assert [p["port"] for p in out["opened"]] == [80]


def test_the_parser_keeps_the_scans_port_lists() -> None:
    r = parse_report(nmap_xml("1,3-4,6-7", (22, "open")), report_id="r")
    assert r.extra["scaninfo"] == [{"protocol": "tcp", "services": "1,3-4,6-7"}]
    cover = Coverage.of(r)
    assert cover is not None
    assert [cover.covers(n, "tcp") for n in (1, 2, 3, 4, 5, 7, 8)] == [
        True,
        False,
        True,
        True,
        False,
        True,
        False,
    ]
    assert not cover.covers(1, "udp")


def test_real_files_say_which_ports_they_covered() -> None:
    def coverage(name: str) -> Coverage:
        report = parse_report((CORPUS / name).read_bytes(), report_id=name)
        cover = Coverage.of(report)
        assert cover is not None, name
        return cover

    full_tcp = coverage("DefectDojo__nmap_issue4406.xml")
    assert full_tcp.covers(1, "tcp") and full_tcp.covers(65535, "tcp")
    assert not full_tcp.covers(53, "udp")
    all_udp = coverage("jakhin03_AD-LAB__old_alludp.xml")
    assert all_udp.covers(65535, "udp") and not all_udp.covers(22, "tcp")
    top_1000 = coverage("Chirag107_Elevate-Labs__scan_results.xml")
    assert top_1000.covers(22, "tcp") and not top_1000.covers(2, "tcp")


def test_ipv6_addresses_are_matched_in_canonical_form() -> None:
    old = rep("old", Host("0:0:0:0:0:0:0:1", addrtype="ipv6", ports=(port(22),)))
    new = rep("new", Host("::1", addrtype="ipv6", ports=(port(22), port(443))))
    d = diff_reports(old, new)
    assert d.new_hosts == () and d.gone_hosts == ()
    assert [(p.address, p.port) for p in d.opened] == [("::1", 443)]
    assert canonical("0:0:0:0:0:0:0:1") == canonical("::1/128") == "::1"
    assert same_targets(rep("a", targets=("0:0:0:0:0:0:0:1",)), rep("b", targets=("::1",)))


def test_default_base_needs_the_same_profile_and_ports(sqlite_store: SQLiteStore) -> None:
    def scan(rid: str, services: str, profile: str, at: float) -> Report:
        r = parse_report(nmap_xml(services, (22, "open")), report_id=rid)
        return replace(r, targets=("10.0.0.1",), profile=profile, started_at=at, created_at=at)

    full = scan("rep-full", "1-65535", "full-tcp", 100)
    quick = scan("rep-quick", "1-1024", "quick", 200)
    two_ports = scan("rep-two", "22,80", "quick", 300)
    quick2 = scan("rep-quick2", "1-1024", "quick", 400)
    for r in (full, quick, two_ports, quick2):
        sqlite_store.save_report(r)
    # Same targets, but only rep-quick has the same profile and the same ports.
    assert default_base(sqlite_store, quick2).id == "rep-quick"  # type: ignore[union-attr]
    assert default_base(sqlite_store, two_ports) is None
    full2 = scan("rep-full2", "1-65535", "full-tcp", 500)
    assert default_base(sqlite_store, full2).id == "rep-full"  # type: ignore[union-attr]


def test_default_base_goes_by_scan_time_not_import_time(sqlite_store: SQLiteStore) -> None:
    # Scanned yesterday; then a 2016 scan of the same targets is imported today.
    recent = rep("rep-recent", targets=("10.0.0.1",), at=1_800_000_000)
    old_import = replace(
        rep("rep-2016", targets=("10.0.0.1",), at=1_800_086_400), started_at=1_460_000_000
    )
    sqlite_store.save_report(recent)
    sqlite_store.save_report(old_import)
    assert default_base(sqlite_store, old_import) is None
    assert default_base(sqlite_store, recent).id == "rep-2016"  # type: ignore[union-attr]
    assert [r.id for r in sqlite_store.list_reports()] == ["rep-recent", "rep-2016"]


def test_earlier_choices_are_older_scans_whose_targets_overlap() -> None:
    def row(rid: str, targets: tuple[str, ...], started: float, created: float) -> ReportSummary:
        return ReportSummary.of(replace(rep(rid, targets=targets, at=created), started_at=started))

    now = row("now", ("10.0.0.0/24",), 300, 300)
    rows = [
        now,
        row("inside", ("10.0.0.5",), 200, 200),
        row("elsewhere", ("192.0.2.1",), 100, 100),
        row("later-scan", ("10.0.0.0/24",), 400, 100),
        row("old-import", ("10.0.0.0/24",), 50, 900),
    ]
    assert [r.id for r in earlier_choices(rows, now)] == ["inside", "old-import"]
    assert mismatch(rows[1], now) == [
        "the targets differ (10.0.0.5 before, 10.0.0.0/24 now)",
    ]
    assert mismatch(rows[3], now) == ["the earlier report's scan ran after this one"]
    assert mismatch(rows[4], now) == []
