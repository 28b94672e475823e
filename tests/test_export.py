"""Exports: CSV, JSON, Markdown and HTML, with scan data that tries to be markup."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from scanner import export
from scanner.models import Host, Port, Report, Script
from scanner.parser import parse_report
from store.records import Summary
from store.serialize import report_from_dict

FIXTURES = Path(__file__).parent / "fixtures"
HOSTILE = "<script>alert(1)</script> [click](javascript:alert(1)) ![x](http://127.0.0.1:9/b.gif)"


def hostile_report() -> Report:
    web = Port(
        80,
        "tcp",
        "open",
        service="http",
        product="Apache httpd",
        version="2.4.49",
        extrainfo=HOSTILE,
        scripts=(Script("http-title", HOSTILE + "\n```\nbreak out of the fence"),),
    )
    return Report(
        id="rep-x",
        hosts=(
            Host("10.0.0.1", hostnames=(HOSTILE,), ports=(web, Port(23, "tcp", "closed"))),
            Host("10.0.0.2", timed_out=True),
        ),
        targets=("10.0.0.0/30",),
        args="nmap -sV 10.0.0.0/30",
    )


def summary() -> Summary:
    return Summary(
        id="sum-1",
        report_id="rep-x",
        model="mistral:7b",
        audience="executive",
        text="Patch the web server.\n" + HOSTILE,
        status="complete",
        created_at=1.0,
    )


def test_ports_csv_has_risk_and_reason_for_every_port() -> None:
    report = parse_report((FIXTURES / "netns_after.xml").read_bytes(), report_id="r")
    rows = list(csv.DictReader(io.StringIO(export.ports_csv(report))))
    assert len(rows) == sum(len(h.ports) for h in report.hosts) == 20
    redis = next(r for r in rows if r["port"] == "6379" and r["address"] == "10.231.7.2")
    assert (redis["service"], redis["risk"]) == ("redis", "critical")
    assert redis["risk_reason"].startswith("Redis exposed")
    assert all(r["risk"] and r["risk_reason"] for r in rows)


def test_hosts_csv_marks_timed_out_hosts() -> None:
    rows = list(csv.DictReader(io.StringIO(export.hosts_csv(hostile_report()))))
    assert [r["address"] for r in rows] == ["10.0.0.1", "10.0.0.2"]
    assert rows[1]["status"] == "timed out" and rows[1]["risk"] == "medium"
    assert rows[0]["risk"] == "critical"


def test_json_round_trips_with_summaries() -> None:
    report = hostile_report()
    data = json.loads(export.report_json(report, [summary()]))
    assert report_from_dict(data).hosts == report.hosts
    assert data["summaries"][0]["model"] == "mistral:7b"


def test_html_escapes_scan_data_and_summaries() -> None:
    html = export.report_html(hostile_report(), [summary()])
    assert "<script" not in html
    assert "<a " not in html and "<img" not in html and "href=" not in html
    assert (
        html.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 4
    )  # hostnames, extrainfo, script, summary
    assert "Patch the web server." in html
    assert "timed out (ports unknown)" in html


def test_markdown_escapes_scan_data_and_keeps_code_fences_closed() -> None:
    md = export.report_markdown(hostile_report(), [summary()])
    # No live link or image can form outside a code block.
    outside = md.split("````text")[0]
    assert "](" not in outside and "<script>" not in outside
    assert r"\<script\>" in outside
    # The script output holds three backticks, so its fence is longer and stays closed.
    assert "````text\n" + HOSTILE + "\n```\nbreak out of the fence\n````" in md
    assert "Patch the web server." in md


def test_md_code_fence_is_longer_than_any_backtick_run() -> None:
    assert export.md_code("plain").startswith("```text\n")
    assert export.md_code("a ````` b").startswith("``````text\n")


def test_csv_cells_cannot_start_a_spreadsheet_formula() -> None:
    evil = Port(80, "tcp", "open", service="http", product='=HYPERLINK("http://x","y")')
    report = Report(id="r", hosts=(Host("10.0.0.1", hostnames=("@SUM(1)",), ports=(evil,)),))
    ports = list(csv.DictReader(io.StringIO(export.ports_csv(report))))
    assert ports[0]["product"] == '\'=HYPERLINK("http://x","y")'
    hosts = list(csv.DictReader(io.StringIO(export.hosts_csv(report))))
    assert hosts[0]["hostnames"] == "'@SUM(1)"
    assert hosts[0]["address"] == "10.0.0.1"


def fabricated_summary(**kw: Any) -> Summary:
    fields: dict[str, Any] = {
        "id": "sum-f",
        "report_id": "rep-x",
        "model": "mistral:7b",
        "audience": "executive",
        "text": "Host 10.0.0.1 runs Apache 2.4.49.\nPatch CVE-2099-0001 on 10.0.0.99 now.",
        "status": "complete",
        "created_at": 1.0,
    }
    fields.update(kw)
    return Summary(**fields)


def test_markdown_export_marks_invented_claims_and_lists_them_in_a_box() -> None:
    md = export.report_markdown(hostile_report(), [fabricated_summary()])
    assert "> Patch **⚠ CVE-2099-0001** on **⚠ 10.0.0.99** now." in md
    assert "> Host 10.0.0.1 runs" in md, "a claim the scan supports is not marked"
    assert "**2 claim(s) are not in the scan data — verify them before acting" in md
    assert "- cve CVE-2099-0001: not in the scan data — verify" in md
    assert "- host 10.0.0.99: not in the scan data — verify" in md


def test_html_export_marks_invented_claims_and_lists_them_in_a_box() -> None:
    page = export.report_html(hostile_report(), [fabricated_summary()])
    mark = '<mark title="not in the scan data — verify">⚠ {}</mark>'
    assert f"Patch {mark.format('CVE-2099-0001')} on {mark.format('10.0.0.99')} now." in page
    assert "Host 10.0.0.1 runs" in page
    box = page.split('<div class="factcheck">')[1].split("</div>")[0]
    assert "2 claim(s) are not in the scan data" in box
    assert "<li>cve CVE-2099-0001: not in the scan data — verify</li>" in box
    assert "<li>host 10.0.0.99: not in the scan data — verify</li>" in box


def test_a_summary_with_every_claim_in_the_scan_says_so() -> None:
    fine = fabricated_summary(text="Fix 10.0.0.1 port 80.")
    md = export.report_markdown(hostile_report(), [fine])
    assert "⚠" not in md
    assert "Fact check: all 2 host, port and CVE claims are in the scan data." in md


def test_a_diff_summary_is_checked_against_its_earlier_report_even_once_it_is_gone() -> None:
    earlier = Report(id="rep-old", hosts=(Host("10.0.0.7", ports=(Port(22, "tcp", "open"),)),))
    diff_summary = fabricated_summary(
        base_report_id="rep-old",
        text="10.0.0.7 is gone and 10.0.0.98 is new.",
        # What was checked when the summary was saved, with both reports there.
        fact_check={"checked": 2, "unsupported": [{"kind": "host", "value": "10.0.0.98"}]},
    )
    with_base = export.report_markdown(hostile_report(), [diff_summary], {"rep-old": earlier})
    base_gone = export.report_markdown(hostile_report(), [diff_summary])
    for md in (with_base, base_gone):
        assert "> 10.0.0.7 is gone and **⚠ 10.0.0.98** is new." in md
        assert "- host 10.0.0.98: not in the scan data — verify" in md
        assert "10.0.0.7:" not in md
