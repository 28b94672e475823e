"""Diff of two reports: crafted pairs with known answers, and a real before/after pair."""

from __future__ import annotations

from pathlib import Path

from scanner.diff import default_base, diff_reports
from scanner.models import Host, Port, Report
from scanner.parser import parse_report
from store.sqlite import SQLiteStore

FIXTURES = Path(__file__).parent / "fixtures"


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
    assert set(out) == {"new_hosts", "gone_hosts", "opened", "closed", "changed"}
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
        ("10.0.0.1", 8080, "tcp", "not scanned"),
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
