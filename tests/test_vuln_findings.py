"""CVE findings from NSE vulnerability scripts: parsed per port, stored, rated, checked, shown.

Real files from the shared corpus (read in place): DefectDojo's vulners scan, a vulscan scan and
a HackTheBox ``--script vuln`` scan; the expected ids are taken from each file here, by
ElementTree and by regular expressions over the script text, independently of the parser.
"""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import orjson
import pytest

import config
from llm.factcheck import check
from reporting.pdf import render_pdf
from scanner import export
from scanner.cli import host_json
from scanner.importer import import_bytes
from scanner.models import Finding, Host, Port, Report, Script
from scanner.parser import parse_report
from scanner.risk import port_risk
from store.serialize import hosts_from_json, hosts_to_json, port_from_dict, port_to_dict
from store.sqlite import SQLiteStore
from tests.test_reports_cli import run

CORPUS = config.PROJECT_ROOT.parent / "shared" / "corpus" / "real-nmap" / "real"
VULNERS = CORPUS / "DefectDojo__nmap_issue4406.xml"
VULSCAN = CORPUS / "secureUAll_workers__api_web_out.xml"
VULN_SCRIPTS = CORPUS / "htb-valentine__vulnscan.xml"
NOT_VULNERABLE = CORPUS / "rails-ssl-scan__scan.xml"
CVE = re.compile(r"CVE-\d{4}-\d{4,7}")


def parsed(path: Path) -> Report:
    return parse_report(path.read_bytes(), report_id=path.stem)


def script_elements(path: Path, script_id: str) -> dict[str, ET.Element]:
    """``port/protocol`` -> that port's <script id=script_id> element, read by ElementTree."""
    root = ET.parse(path).getroot()
    out: dict[str, ET.Element] = {}
    for port in root.iter("port"):
        for script in port.findall("script"):
            if script.get("id") == script_id:
                out[f"{port.get('portid')}/{port.get('protocol')}"] = script
    return out


def findings_by_label(report: Report, source: str) -> dict[str, dict[str, Finding]]:
    return {
        p.label: {f.id: f for f in p.cves if f.source == source}
        for h in report.hosts
        for p in h.ports
        if any(f.source == source for f in p.cves)
    }


# -- parsing the real corpus ----------------------------------------------------------------------
def test_vulners_cves_on_each_port_equal_its_tables_and_text_with_scores() -> None:
    expected_tables: dict[str, dict[str, float]] = {}
    expected_text: dict[str, dict[str, float]] = {}
    exploited: dict[str, set[str]] = {}
    for label, script in script_elements(VULNERS, "vulners").items():
        entries = [
            {e.get("key"): (e.text or "") for e in t.findall("elem")}
            for t in script.iter("table")
            if t.find("elem[@key='id']") is not None
        ]
        expected_tables[label] = {
            e["id"]: float(e["cvss"]) for e in entries if CVE.fullmatch(e["id"])
        }
        exploited[label] = {
            c for e in entries if e.get("is_exploit") == "true" for c in CVE.findall(e["id"])
        }
        text = script.get("output", "")
        expected_text[label] = {
            m.group(1): float(m.group(2))
            for m in re.finditer(r"^\s*(CVE-\d{4}-\d+)\t([\d.]+)\t", text, re.MULTILINE)
        }
    assert expected_tables and all(expected_tables.values())
    assert expected_tables == expected_text

    got = findings_by_label(parsed(VULNERS), "vulners")
    assert {k: {i: f.cvss for i, f in v.items()} for k, v in got.items()} == expected_tables
    for label, found in got.items():
        assert {i for i, f in found.items() if f.exploit} == exploited[label] & set(found)
        assert all("cpe:/a:" in f.evidence for f in found.values())
    # The Metasploit module for CVE-2019-6111 flags that CVE as exploitable.
    assert got["22/tcp"]["CVE-2019-6111"].exploit is True


def test_vulscan_cves_on_each_port_equal_its_text() -> None:
    expected = {
        label: set(re.findall(r"^\[(CVE-\d{4}-\d+)\]", s.get("output", ""), re.MULTILINE))
        for label, s in script_elements(VULSCAN, "vulscan").items()
    }
    assert expected and all(expected.values())
    got = findings_by_label(parsed(VULSCAN), "vulscan")
    assert {k: set(v) for k, v in got.items()} == expected
    # vulscan prints no scores: none is made up.
    assert all(f.cvss is None for v in got.values() for f in v.values())


def test_vuln_library_scripts_give_state_and_the_cve_from_their_ids_or_references() -> None:
    report = parsed(VULN_SCRIPTS)
    [https] = [p for h in report.hosts for p in h.ports if p.label == "443/tcp"]
    got = {(f.id, f.source, f.state) for f in https.cves}
    assert got == {
        ("CVE-2014-0160", "ssl-heartbleed", "VULNERABLE"),  # CVE only in a reference URL
        ("CVE-2014-0224", "ssl-ccs-injection", "VULNERABLE"),
        ("CVE-2014-3566", "ssl-poodle", "VULNERABLE"),  # from its ids table
    }
    heartbleed = next(f for f in https.cves if f.source == "ssl-heartbleed")
    assert heartbleed.evidence.startswith("The Heartbleed Bug")


def test_not_vulnerable_results_are_not_findings() -> None:
    report = parsed(NOT_VULNERABLE)
    assert any(s.id == "ssl-heartbleed" for h in report.hosts for p in h.ports for s in p.scripts)
    assert [f for h in report.hosts for p in h.ports for f in p.cves] == []


SMB_XML = b"""<?xml version="1.0"?>
<nmaprun scanner="nmap" args="nmap --script smb-vuln-ms17-010 10.0.0.5" start="1700000000"
 version="7.94" xmloutputversion="1.05">
<host><status state="up" reason="arp-response"/><address addr="10.0.0.5" addrtype="ipv4"/>
<ports>
<port protocol="tcp" portid="139"><state state="open" reason="syn-ack"/>
<service name="netbios-ssn"/></port>
<port protocol="tcp" portid="445"><state state="open" reason="syn-ack"/>
<service name="microsoft-ds"/></port>
<port protocol="tcp" portid="3389"><state state="open" reason="syn-ack"/>
<service name="ms-wbt-server"/>
<script id="rdp-vuln-ms12-020" output="&#xa;  VULNERABLE:&#xa;  MS12-020 ...">
<table key="CVE-2012-0152"><elem key="title">MS12-020 Remote Desktop Protocol DoS</elem>
<elem key="state">LIKELY VULNERABLE</elem>
<table key="ids"><elem>CVE:CVE-2012-0152</elem></table>
<table key="scores"><elem key="CVSSv2">4.3</elem></table></table>
</script></port>
</ports>
<hostscript><script id="smb-vuln-ms17-010"
 output="&#xa;  VULNERABLE:&#xa;  Remote Code Execution vulnerability in Microsoft SMBv1 servers">
<table key="CVE-2017-0143">
<elem key="title">Remote Code Execution vulnerability in Microsoft SMBv1 servers (ms17-010)</elem>
<elem key="state">VULNERABLE</elem>
<table key="ids"><elem>CVE:CVE-2017-0143</elem></table>
<table key="scores"><elem key="CVSSv3">9.8</elem></table>
<table key="refs"><elem>https://technet.microsoft.com/en-us/library/security/ms17-010.aspx</elem></table>
</table>
</script></hostscript>
</host>
<runstats><finished time="1700000060" exit="success"/><hosts up="1" down="0" total="1"/></runstats>
</nmaprun>
"""


def smb_report() -> Report:
    return parse_report(SMB_XML, report_id="smb")


def test_smb_host_script_findings_land_on_port_445_with_score_and_state() -> None:
    [host] = smb_report().hosts
    by_port = {p.port: p for p in host.ports}
    assert by_port[139].cves == ()
    [ms17] = by_port[445].cves
    assert (ms17.id, ms17.cvss, ms17.state, ms17.source) == (
        "CVE-2017-0143",
        9.8,
        "VULNERABLE",
        "smb-vuln-ms17-010",
    )
    [rdp] = by_port[3389].cves
    assert (rdp.id, rdp.cvss, rdp.state) == ("CVE-2012-0152", 4.3, "LIKELY VULNERABLE")


# -- store ----------------------------------------------------------------------------------------
def test_findings_survive_both_serialized_shapes_and_old_records_read_without_them() -> None:
    report = parsed(VULNERS)
    back = hosts_from_json(hosts_to_json(report.hosts))
    assert tuple(back) == report.hosts
    [port22] = [p for p in report.hosts[0].ports if p.port == 22]
    assert port_from_dict(port_to_dict(port22)) == port22
    # A record saved before findings existed: no "cves" key anywhere.
    old = orjson.loads(hosts_to_json(report.hosts))
    for h in old:
        for p in h["ports"]:
            del p["cves"]
    again = hosts_from_json(orjson.dumps(old))
    assert [p.cves for h in again for p in h.ports] == [() for h in again for p in h.ports]
    assert port_from_dict({"port": 22, "protocol": "tcp", "state": "open"}).cves == ()


def test_sqlite_store_keeps_findings(db_path: Path) -> None:
    store = SQLiteStore(db_path)
    try:
        saved = import_bytes(store, VULNERS.read_bytes(), filename=VULNERS.name)
        assert store.get_report(saved.id).hosts == saved.hosts
    finally:
        store.close()


# -- risk -----------------------------------------------------------------------------------------
def test_a_reported_cve_scored_9_or_more_makes_the_port_critical_and_names_it() -> None:
    [host] = smb_report().hosts
    by_port = {p.port: p for p in host.ports}
    risk = port_risk(by_port[445], host)
    assert risk.level == "critical"
    assert "CVE-2017-0143" in risk.reason and "9.8" in risk.reason
    assert "smb-vuln-ms17-010" in risk.reason
    # CVSS 4.3 does not: the port keeps the level its service has.
    assert "CVE-2012-0152" not in port_risk(by_port[3389], host).reason
    below = Port(445, "tcp", "open", service="microsoft-ds", cves=(Finding("CVE-2017-0143", 8.9),))
    assert port_risk(below).rule != "reported-cve"


def test_real_vulners_scores_below_9_do_not_make_the_port_critical() -> None:
    [host] = parsed(VULNERS).hosts
    ssh = next(p for p in host.ports if p.port == 22)
    assert max(f.cvss or 0 for f in ssh.cves) < 9
    assert port_risk(ssh, host).level != "critical"


# -- fact check -----------------------------------------------------------------------------------
def test_fact_check_counts_reported_findings_as_in_the_scan() -> None:
    # The script's text is cut here, so the CVE is known only as a finding.
    port = Port(
        445,
        "tcp",
        "open",
        service="microsoft-ds",
        scripts=(Script("smb-vuln-ms17-010", "VULNERABLE: see the table"),),
        cves=(Finding("CVE-2017-0143", 9.8, False, "smb-vuln-ms17-010", "VULNERABLE"),),
    )
    report = Report(id="r", hosts=(Host("10.0.0.5", ports=(port,)),), targets=("10.0.0.5",))
    fc = check("10.0.0.5 is exposed to CVE-2017-0143; CVE-2099-0001 too.", report)
    verdicts = {c.value: c.supported for c in fc.claims if c.kind == "cve"}
    assert verdicts == {"CVE-2017-0143": True, "CVE-2099-0001": False}


# -- JSON and PDF ---------------------------------------------------------------------------------
def test_show_json_lists_each_ports_cves_highest_score_first(db_path: Path) -> None:
    store = SQLiteStore(db_path)
    try:
        rid = import_bytes(store, VULNERS.read_bytes(), filename=VULNERS.name).id
    finally:
        store.close()
    out = run(db_path, "show", rid, "--format", "json")
    assert out.returncode == 0, out.stderr
    [host] = json.loads(out.stdout)["hosts"]
    ports = {p["port"]: p for p in host["ports"]}
    cves = ports[22]["cves"]
    expected = script_elements(VULNERS, "vulners")["22/tcp"]
    ids = {
        e.text
        for e in expected.iter("elem")
        if e.get("key") == "id" and CVE.fullmatch(e.text or "")
    }
    assert {c["id"] for c in cves} == ids
    scores = [c["cvss"] for c in cves]
    assert scores == sorted(scores, reverse=True)
    assert cves[0] == {
        "id": "CVE-2019-6111",
        "cvss": 5.8,
        "exploit": True,
        "source": "vulners",
        "state": "",
        "evidence": "listed by vulners for cpe:/a:openbsd:openssh:7.4",
    }
    assert all(p["cves"] == [] for p in host["ports"] if p["port"] != 22)
    assert all(p["cve_guesses"] == [] for p in host["ports"])  # no feed imported


def _vulners_ids(label: str) -> set[str]:
    """The CVE ids of one port's vulners tables in the corpus file, read by ElementTree."""
    return {
        e.text or ""
        for e in script_elements(VULNERS, "vulners")[label].iter("elem")
        if e.get("key") == "id" and CVE.fullmatch(e.text or "")
    }


def test_exports_list_each_open_ports_cves_highest_score_first() -> None:
    """CSV, Markdown, HTML and the scan command's JSON name the same CVEs the vulners tables
    hold, with scores and exploit flags, highest score first."""
    report = parsed(VULNERS)
    ids = _vulners_ids("22/tcp")
    rows = list(csv.DictReader(io.StringIO(export.ports_csv(report))))
    ssh = next(r for r in rows if r["port"] == "22")
    cells = ssh["cves"].split("; ")
    assert {c.split(" ")[0] for c in cells} == ids
    assert cells[0] == "CVE-2019-6111 (5.8, exploit)"
    scores = [float(c.split("(")[1].split(",")[0].rstrip(")")) for c in cells if "(" in c]
    assert scores == sorted(scores, reverse=True)
    assert all(r["cves"] == "" for r in rows if r["port"] != "22")

    md = export.report_markdown(report)
    section = md.split("## CVE findings", 1)[1].split("## Script output", 1)[0]
    listed = re.findall(r"^\| [\d.]+ \| 22/tcp \| (CVE-[\d-]+) \| ([\d.]+) \|", section, re.M)
    assert {i for i, _ in listed} == ids
    assert [float(v) for _, v in listed] == sorted((float(v) for _, v in listed), reverse=True)

    page = export.report_html(report)
    table = page.split("<h2>CVE findings</h2>", 1)[1].split("<h2>", 1)[0]
    assert set(re.findall(r"<td>(CVE-[\d-]+)</td>", table)) == ids
    assert "<td>CVE-2019-6111</td><td>5.8</td><td>yes</td>" in table

    [host] = report.hosts
    scanned = {p["port"]: p for p in host_json(host)["ports"]}
    assert {c["id"] for c in scanned[22]["cves"]} == ids
    assert scanned[22]["cves"][0]["exploit"] is True


def test_a_report_without_findings_says_so_in_its_exports() -> None:
    report = parsed(NOT_VULNERABLE)
    assert "The scan's scripts reported no CVE on an open port." in export.report_markdown(report)
    assert "The scan's scripts reported no CVE on an open port." in export.report_html(report)
    assert all(r["cves"] == "" for r in csv.DictReader(io.StringIO(export.ports_csv(report))))


def test_hostile_finding_text_stays_inert_in_every_export() -> None:
    """A vuln script's table is scan data: an id shaped like a formula and evidence shaped like
    markup come out as text."""
    hostile = Finding(
        id='=HYPERLINK("http://127.0.0.1:9/x","y")',
        cvss=9.8,
        source="http-vuln-evil",
        state="VULNERABLE",
        evidence="<script>alert(1)</script> [x](http://127.0.0.1:9/) ![i](http://127.0.0.1:9/p)",
    )
    port = Port(80, "tcp", "open", service="http", cves=(hostile,))
    report = Report(id="r-hostile", hosts=(Host("10.0.0.9", ports=(port,)),))
    [row] = csv.DictReader(io.StringIO(export.ports_csv(report)))
    assert row["cves"].startswith("'=HYPERLINK")
    page = export.report_html(report)
    assert "<script" not in page and "<a " not in page and "<img" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    md = export.report_markdown(report)
    section = md.split("## CVE findings", 1)[1].split("## Script output", 1)[0]
    assert "](" not in section and "<script>" not in section


def test_pdf_names_the_cves_of_critical_findings(tmp_path: Path) -> None:
    pdf = tmp_path / "r.pdf"
    pdf.write_bytes(render_pdf(smb_report()))
    text = subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    findings = text.split("Critical and high findings", 1)[1].split("Appendix", 1)[0]
    assert "CRITICAL" in findings
    assert "CVE-2017-0143 (9.8)" in " ".join(findings.split())


@pytest.mark.parametrize("path", [VULNERS, VULSCAN, VULN_SCRIPTS])
def test_findings_do_not_change_what_else_the_parser_reads(path: Path) -> None:
    report = parsed(path)
    root = ET.parse(path).getroot()
    assert sum(len(h.ports) for h in report.hosts) == len(list(root.iter("port")))
    scripts = sum(len(p.scripts) for h in report.hosts for p in h.ports)
    assert scripts == sum(len(p.findall("script")) for p in root.iter("port"))


def test_an_endless_vulners_table_is_read_up_to_a_bound() -> None:
    entry = (
        '<table><elem key="cvss">5.0</elem><elem key="id">CVE-2020-%05d</elem>'
        '<elem key="is_exploit">false</elem><elem key="type">cve</elem></table>'
    )
    tables = "".join(entry % i for i in range(30_000))
    xml = SMB_XML.replace(
        b'<service name="netbios-ssn"/>',
        b'<service name="netbios-ssn"/><script id="vulners" output="many">'
        + f'<table key="cpe:/a:x:y:1">{tables}</table>'.encode()
        + b"</script>",
    )
    [host] = parse_report(xml, report_id="big").hosts
    by_port = {p.port: p for p in host.ports}
    # 50,000 nodes, five per entry after the CPE's table: the first 10,000 entries (the last
    # one without its type), and the rest of the file read as usual.
    assert len(by_port[139].cves) == 10_000
    assert by_port[139].cves[0].id == "CVE-2020-00000"
    assert [f.id for f in by_port[445].cves] == ["CVE-2017-0143"]
