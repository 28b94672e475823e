"""The fact check flags hosts, ports and CVE ids that the scan does not support, and only those."""

from __future__ import annotations

from dataclasses import replace

from llm.factcheck import FactCheck, check
from scanner.models import Host, Port, Report
from tests.fixtures_ollama import sample_report


def _flags(fc: FactCheck) -> set[tuple[str, str]]:
    return {(c.kind, c.value) for c in fc.unsupported}


def _ok(fc: FactCheck) -> set[tuple[str, str]]:
    return {(c.kind, c.value) for c in fc.supported}


def test_planted_fabrications_are_flagged_and_true_facts_are_not(report: Report) -> None:
    text = (
        "Host 10.0.0.5 (web01.corp.example) runs SSH on 22/tcp, Telnet on port 23 and Apache on "
        "port 80, which is vulnerable to CVE-2021-41773. 10.0.0.6 answers DNS on udp/53.\n"
        "Fabricated: the database 10.0.0.99 (db01.corp.example) exposes port 3306 and "
        "10.0.0.5:8080 is open; see CVE-2024-99999."
    )
    fc = check(text, report)
    assert _flags(fc) == {
        ("host", "10.0.0.99"),
        ("host", "db01.corp.example"),
        ("port", "3306"),
        ("port", "10.0.0.5:8080"),
        ("cve", "CVE-2024-99999"),
    }
    assert _ok(fc) >= {
        ("host", "10.0.0.5"),
        ("host", "10.0.0.6"),
        ("host", "web01.corp.example"),
        ("port", "22"),
        ("port", "23"),
        ("port", "80"),
        ("port", "53"),
        ("cve", "CVE-2021-41773"),
    }
    spans = [text[a:b] for a, b in fc.unsupported_spans()]
    assert "10.0.0.99" in spans and "CVE-2024-99999" in spans


def test_port_lists_and_scanned_but_closed_ports(report: Report) -> None:
    fc = check("Ports 22, 23 and 443 were seen; ports 8443/9000 were not.", report)
    assert _ok(fc) == {("port", "22"), ("port", "23"), ("port", "443")}
    assert _flags(fc) == {("port", "8443"), ("port", "9000")}


def test_versions_times_and_file_names_are_not_claims(report: Report) -> None:
    text = (
        "Upgrade OpenSSH 8.9p1 and Apache 2.4.49 (see index.html and Node.js docs, e.g. the "
        "ASP.NET guide) before 10:30:00 on 2026-11-22; 3 hosts were scanned in 30 seconds.Then "
        "the report ended.Next steps follow."
    )
    assert check(text, report).claims == ()


def test_ipv6_and_single_label_names() -> None:
    r = Report(
        id="v6",
        hosts=(
            Host(
                "fe80::1", addrtype="ipv6", hostnames=("router",), ports=(Port(53, "udp", "open"),)
            ),
        ),
    )
    fc = check("The router at fe80::1 (FE80:0:0::1) serves DNS; 2001:db8::7 does not.", r)
    assert ("host", "fe80::1") in _ok(fc) and ("host", "router") in _ok(fc)
    assert _flags(fc) == {("host", "2001:db8::7")}


def test_cve_ids_are_matched_case_insensitively_and_only_from_the_scan(report: Report) -> None:
    fc = check("cve-2021-41773 is confirmed by the scan; CVE-2021-42013 is a guess.", report)
    assert _ok(fc) == {("cve", "CVE-2021-41773")}
    assert _flags(fc) == {("cve", "CVE-2021-42013")}


def test_a_diff_is_checked_against_both_reports(report: Report) -> None:
    later = replace(report, id="r2", hosts=(Host("10.0.0.8", ports=(Port(3389, "tcp", "open"),)),))
    fc = check(
        "10.0.0.5 is gone, 10.0.0.8 is new with 3389/tcp; 10.0.0.9 is invented.", report, later
    )
    assert _flags(fc) == {("host", "10.0.0.9")}


def test_the_check_round_trips_through_its_stored_form() -> None:
    fc = check("10.0.0.99 port 9999", sample_report())
    again = FactCheck.from_dict(fc.to_dict())
    assert _flags(again) == _flags(fc) == {("host", "10.0.0.99"), ("port", "9999")}
    assert fc.to_dict()["unsupported"] == [
        {"kind": "host", "value": "10.0.0.99"},
        {"kind": "port", "value": "9999"},
    ]
