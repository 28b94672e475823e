"""The fact check flags hosts, ports and CVE ids that the scan does not support, and only those."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from llm.factcheck import FactCheck, check
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
