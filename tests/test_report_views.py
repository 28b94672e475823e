"""Tables, filters and chart data of one report (the core behind the Reports page)."""

from __future__ import annotations

from pathlib import Path

import pytest

from scanner.models import Host, Port, Report
from scanner.parser import parse_report
from scanner.views import FilterError, PortFilter, ReportView, parse_port_filter

FIXTURES = Path(__file__).parent / "fixtures"


def test_port_filter_accepts_numbers_lists_and_ranges() -> None:
    assert parse_port_filter("") == frozenset()
    assert parse_port_filter(" 22 ") == {22}
    assert parse_port_filter("22,80, 443") == {22, 80, 443}
    assert parse_port_filter("8000-8002,22") == {8000, 8001, 8002, 22}


@pytest.mark.parametrize("text", ["x", "22-", "70000", "10-5", "22 --script=x", "-1"])
def test_port_filter_refuses_nonsense(text: str) -> None:
    with pytest.raises(FilterError):
        parse_port_filter(text)


def test_tables_put_the_worst_first_and_filters_combine() -> None:
    view = ReportView.build(
        parse_report((FIXTURES / "netns_after.xml").read_bytes(), report_id="a")
    )
    assert list(view.ports["risk"][:3]) == ["critical"] * 3
    assert view.hosts.iloc[0]["address"] == "10.231.7.2"
    open_web = view.filter_ports(PortFilter(services=("http",), states=("open",)))
    assert sorted(open_web["port"]) == [80, 18080]
    assert len(view.filter_ports(PortFilter(host="10.231.7.3"))) == 10
    assert list(
        view.filter_ports(PortFilter(ports=frozenset({6379}), risks=("critical",)))["address"]
    ) == ["10.231.7.2"]
    assert len(view.filter_ports(PortFilter())) == 20


def test_host_filter_matches_names_too() -> None:
    report = Report(
        id="r",
        hosts=(
            Host(
                "10.0.0.1",
                hostnames=("db.example.test",),
                ports=(Port(5432, "tcp", "open", service="postgresql"),),
            ),
            Host("10.0.0.2", ports=(Port(22, "tcp", "open", service="ssh"),)),
        ),
    )
    view = ReportView.build(report)
    assert list(view.filter_ports(PortFilter(host="DB.example"))["port"]) == [5432]
    assert list(view.filter_hosts("db.")["address"]) == ["10.0.0.1"]
    assert list(view.filter_hosts(risks=("low",))["address"]) == ["10.0.0.2"]


def test_script_output_is_listed_per_port_and_per_host() -> None:
    view = ReportView.build(
        parse_report((FIXTURES / "crafted_nmap6_scripts_ipv6.xml").read_bytes(), report_id="s")
    )
    shown, total = view.scripts(view.ports)
    assert total == len(shown) == 5  # heartbleed, ftp-anon, mysql-info, two host scripts
    assert {sid for _, p, sid, _ in shown if p is None} == {
        "smb-security-mode",
        "smb2-security-mode",
    }
    only_ftp = view.filter_ports(PortFilter(ports=frozenset({21})))
    shown, total = view.scripts(only_ftp, limit=1)
    assert total == 3 and len(shown) == 1  # the two host scripts come with the host
