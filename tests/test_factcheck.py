"""The fact check flags hosts, ports and CVE ids that the scan does not support, and only those."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from llm.factcheck import FactCheck, check, scanned_ranges
from scanner.models import Host, Port, Report, Script
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


def test_scanned_ranges_target_networks_and_version_numbers_are_not_claims_of_hosts(
    report: Report,
) -> None:
    scanned = replace(
        report,
        args="nmap -sT -p 1-1024 -oX - 10.0.0.0/24",
        hosts=(
            *report.hosts,
            Host(
                "10.0.0.9",
                ports=(Port(8443, "tcp", "open", product="Tomcat", extrainfo="OpenJDK 11.0.12.7"),),
            ),
        ),
    )
    text = (
        "Ports 1-1024 were scanned on the target 10.0.0.0/24. 10.0.0.9 runs OpenJDK "
        "11.0.12.7, which should be upgraded to 11.0.20.1."
    )
    fc = check(text, scanned)
    assert fc.unsupported == ()
    assert _ok(fc) == {("port", "1-1024"), ("host", "10.0.0.0/24"), ("host", "10.0.0.9")}
    # Claims of a wider scan are still flagged.
    wider = check("Ports 1-65535 were scanned on 10.0.0.0/16.", scanned)
    assert _flags(wider) == {("port", "1-65535"), ("host", "10.0.0.0/16")}


def test_both_ends_of_a_port_range_are_checked(report: Report) -> None:
    assert _flags(check("Ports 22-3389 are open on 10.0.0.5.", report)) == {
        ("port", "10.0.0.5:3389")
    }
    assert _flags(check("Ports 22\u20133389 are open.", report)) == {("port", "3389")}
    assert check("Ports 22-80 are open on 10.0.0.5.", report).unsupported == ()


def test_ports_written_after_bracketed_ipv6_addresses_and_host_names_are_checked() -> None:
    r = Report(
        id="v6",
        hosts=(
            Host("::1", addrtype="ipv6", ports=(Port(3306, "tcp", "open"),)),
            Host("10.0.0.6", hostnames=("db.corp.example",), ports=(Port(5432, "tcp", "open"),)),
        ),
    )
    text = "MySQL on [::1]:3306 and [::1]:3307; PostgreSQL on db.corp.example:5432 and :3306."
    fc = check(text.replace(" and :3306", " and db.corp.example:3306"), r)
    assert _flags(fc) == {("port", "[::1]:3307"), ("port", "db.corp.example:3306")}
    assert {("port", "[::1]:3306"), ("port", "db.corp.example:5432")} <= _ok(fc)


def test_cve_ids_written_with_typographic_dashes_are_checked(report: Report) -> None:
    nb, en = "\u2011", "\u2013"
    fc = check(f"CVE{nb}2021{nb}41773 is confirmed; CVE{en}2021{en}42013 is not.", report)
    assert _ok(fc) == {("cve", "CVE-2021-41773")}
    assert _flags(fc) == {("cve", "CVE-2021-42013")}


def test_zero_padded_addresses_are_read_as_the_address_they_pad(report: Report) -> None:
    fc = check("010.0.0.99 and 010.000.000.005 answered.", report)
    assert _flags(fc) == {("host", "10.0.0.99")}
    assert _ok(fc) == {("host", "10.0.0.5")}


def test_host_names_in_any_case_and_single_label_names_are_checked(report: Report) -> None:
    text = (
        "WEB01.CORP.EXAMPLE and Web01.Corp.Example (web01) are fine; DB02.Corp.Example, the "
        "server db03 and 10.0.0.99 (FILESRV01) are not in the scan."
    )
    fc = check(text, report)
    assert _ok(fc) == {("host", "web01.corp.example"), ("host", "web01")}
    assert _flags(fc) == {
        ("host", "db02.corp.example"),
        ("host", "db03"),
        ("host", "10.0.0.99"),
        ("host", "filesrv01"),
    }


def test_a_port_open_on_another_host_is_flagged_for_the_host_the_sentence_names(
    report: Report,
) -> None:
    # 22 is open on 10.0.0.5 only, 53 on 10.0.0.6 only.
    fc = check("10.0.0.6 accepts SSH on port 22. Port 53 is open on 10.0.0.5.", report)
    assert _flags(fc) == {("port", "10.0.0.6:22"), ("port", "10.0.0.5:53")}
    fc = check("Both 10.0.0.5 and 10.0.0.6 run SSH on 22/tcp.", report)
    assert _flags(fc) == {("port", "10.0.0.6:22")}
    fine = "10.0.0.5 runs SSH on port 22, while 10.0.0.6 (DNS) answers on udp/53."
    assert check(fine, report).unsupported == ()
    assert check("Unlike 10.0.0.5, 10.0.0.6 answers on port 53.", report).unsupported == ()


def test_cve_ids_known_beyond_the_scan_output_are_an_input(report: Report) -> None:
    text = "Apache 2.4.49 on 10.0.0.5 is also exposed to CVE-2021-42013."
    assert _flags(check(text, report)) == {("cve", "CVE-2021-42013")}
    assert check(text, report, cves=["CVE-2021-42013"]).unsupported == ()


def test_scanned_ports_come_from_scaninfo_else_the_nmap_arguments_else_the_profile() -> None:
    base = Report(id="r", hosts=(Host("10.0.0.5", ports=(Port(53, "udp", "open"),)),))
    scaninfo = replace(base, extra={"scaninfo": [{"protocol": "udp", "services": "53,161-162"}]})
    assert scanned_ranges(scaninfo) == [("udp", 53, 53), ("udp", 161, 162)]
    args = replace(base, args="nmap -sS -sU -p T:1-1024,U:53 10.0.0.5")
    assert scanned_ranges(args) == [("tcp", 1, 1024), ("udp", 53, 53)]
    assert scanned_ranges(replace(base, args="nmap -p- 10.0.0.5")) == [("tcp", 1, 65535)]
    assert scanned_ranges(replace(base, args="nmap --top-ports 100 10.0.0.5")) == []
    assert scanned_ranges(replace(base, profile="full-tcp")) == [("tcp", 1, 65535)]
    assert check("UDP ports 161-162 were probed.", scaninfo).unsupported == ()
    assert _flags(check("TCP ports 161-162 were probed.", scaninfo)) == {("port", "161-162")}


# --- The labelled set: precision and recall of the flags ------------------------------------

LABELLED = Path(__file__).parent / "data" / "factcheck_labelled.json"


def _port(d: dict[str, Any]) -> Port:
    scripts = tuple(Script(s["id"], s["output"]) for s in d.get("scripts", ()))
    return Port(
        d["port"],
        d["protocol"],
        d["state"],
        service=d.get("service", ""),
        product=d.get("product", ""),
        version=d.get("version", ""),
        extrainfo=d.get("extrainfo", ""),
        scripts=scripts,
    )


def _labelled_report(d: dict[str, Any]) -> Report:
    hosts = tuple(
        Host(
            h["address"],
            addrtype=h.get("addrtype", "ipv4"),
            status=h.get("status", "up"),
            hostnames=tuple(h.get("hostnames", ())),
            ports=tuple(_port(p) for p in h.get("ports", ())),
        )
        for h in d["hosts"]
    )
    extra = {"scaninfo": d["scaninfo"]} if "scaninfo" in d else {}
    return Report(
        id=d["id"],
        hosts=hosts,
        targets=tuple(d["targets"]),
        profile=d["profile"],
        args=d["args"],
        extra=extra,
    )


def test_precision_and_recall_on_the_labelled_sentences_are_complete() -> None:
    doc = json.loads(LABELLED.read_text(encoding="utf-8"))
    contexts = doc["reports"]
    reports = {name: _labelled_report(d) for name, d in contexts.items()}
    sentences = doc["sentences"]
    assert len(sentences) >= 60
    tp = fp = fn = 0
    misses: list[str] = []
    for s in sentences:
        known = contexts[s["report"]].get("known_cves", ())
        flagged = _flags(check(s["text"], reports[s["report"]], cves=known))
        expected = {(k, v) for k, v in s["unsupported"]}
        tp += len(flagged & expected)
        fp += len(flagged - expected)
        fn += len(expected - flagged)
        if flagged != expected:
            misses.append(f"{s['text']!r}: flagged {sorted(flagged)}, expected {sorted(expected)}")
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    print(
        f"fact check on {len(sentences)} labelled sentences: precision {precision:.1%}, "
        f"recall {recall:.1%} ({tp} true flags, {fp} false flags, {fn} missed)"
    )
    assert not misses, "\n".join(misses)
    assert (precision, recall) == (1.0, 1.0)


def test_the_labelled_set_covers_true_and_false_claims_of_every_case() -> None:
    sentences = json.loads(LABELLED.read_text(encoding="utf-8"))["sentences"]
    cases = {
        "scanned range",
        "network",
        "version",
        "range ends",
        "host:port",
        "cve dash",
        "known cve",
        "leading zeros",
        "host name",
        "port on host",
    }
    for case in cases:
        of_case = [s for s in sentences if s["case"] == case]
        assert any(s["unsupported"] for s in of_case), f"{case}: no false claim"
        assert any(not s["unsupported"] for s in of_case), f"{case}: no true claim"
