"""Explained risk from the knowledge base: every open port gets a level and a reason."""

from __future__ import annotations

import json
from pathlib import Path

from scanner.models import Host, Port, Script
from scanner.parser import parse_report
from scanner.risk import KB_PATH, LEVELS, host_risk, knowledge_base, port_risk

FIXTURES = Path(__file__).parent / "fixtures"


def op(port: int, service: str = "", product: str = "", version: str = "", **kw: object) -> Port:
    return Port(port, "tcp", "open", service=service, product=product, version=version, **kw)  # type: ignore[arg-type]


def test_knowledge_base_is_documented_and_valid() -> None:
    data = json.loads(KB_PATH.read_text())
    rules = [*data["services"], *data["versions"], *data["scripts"]]
    ids = [r["id"] for r in rules]
    assert len(ids) == len(set(ids)), "rule ids are unique"
    for r in rules:
        assert r["level"] in LEVELS, r["id"]
        assert len(r["why"]) > 20, f"{r['id']} says why in a sentence"
    knowledge_base()  # compiles every pattern


def test_cleartext_remote_admin_and_databases() -> None:
    assert port_risk(op(23, "telnet")).level == "high"
    assert "cleartext" in port_risk(op(21, "ftp")).reason
    assert port_risk(op(3389, "ms-wbt-server")).level == "high"
    assert port_risk(op(445, "microsoft-ds")).level == "high"
    assert port_risk(op(5900, "vnc")).level == "high"
    assert port_risk(op(3306, "mysql")).level == "high"
    assert port_risk(op(5432, "postgresql")).level == "high"
    for name, port in (("redis", 6379), ("memcached", 11211), ("mongodb", 27017)):
        assert port_risk(op(port, name)).level == "critical", name


def test_tls_lowers_cleartext_rules() -> None:
    assert port_risk(op(990, "ssl/ftp")).level == "low"
    assert "inside TLS" in port_risk(op(990, "ssl/ftp")).reason
    assert port_risk(op(443, "ssl/http")).level == "info"


def test_port_number_is_the_fallback_when_nmap_named_no_service() -> None:
    r = port_risk(op(6379, ""))
    assert (r.level, r.rule) == ("critical", "redis")


def test_known_bad_versions() -> None:
    r = port_risk(op(21, "ftp", "vsftpd", "2.3.4"))
    assert r.level == "critical" and "CVE-2011-2523" in r.reason
    assert port_risk(op(21, "ftp", "vsftpd", "3.0.3")).level == "high"  # still cleartext FTP
    assert port_risk(op(80, "http", "Apache httpd", "2.4.49")).level == "critical"
    assert port_risk(op(80, "http", "Apache httpd", "2.4.51")).level == "low"
    assert port_risk(op(22, "ssh", "OpenSSH", "7.4")).level == "medium"
    assert port_risk(op(22, "ssh", "OpenSSH", "7.10")).level == "low"
    by_cpe = op(8080, "weird", cpe=("cpe:/a:apache:http_server:2.4.50",))
    assert port_risk(by_cpe).rule == "apache-2449"


def test_script_findings() -> None:
    vuln = op(443, "ssl/http", scripts=(Script("ssl-heartbleed", "State: VULNERABLE"),))
    r = port_risk(vuln)
    assert r.level == "critical" and "ssl-heartbleed" in r.reason
    safe = op(443, "ssl/http", scripts=(Script("ssl-heartbleed", "State: NOT VULNERABLE"),))
    assert port_risk(safe).level == "info"
    cve = op(80, "http", scripts=(Script("vulners", "  CVE-2021-44228  10.0  https://..."),))
    r = port_risk(cve)
    assert r.level == "high" and "CVE-2021-44228" in r.reason
    anon = op(
        21, "ftp", scripts=(Script("ftp-anon", "Anonymous FTP login allowed (FTP code 230)"),)
    )
    assert "anonymously" in port_risk(anon).reason


def test_unusual_high_port_default_open_and_not_open() -> None:
    r = port_risk(op(31337, "unknown"))
    assert r.level == "medium" and "high port" in r.reason
    assert port_risk(op(631, "ipp")).level == "low"
    closed = Port(23, "tcp", "closed", service="telnet")
    assert port_risk(closed).level == "info"
    assert "closed" in port_risk(closed).reason


def test_host_risk_is_the_worst_port_with_where_it_is() -> None:
    h = Host("10.0.0.5", ports=(op(22, "ssh"), op(23, "telnet"), Port(80, "tcp", "closed")))
    r = host_risk(h)
    assert r.level == "high" and r.reason.startswith("23/tcp: Telnet")


def test_timed_out_host_never_looks_clean() -> None:
    r = host_risk(Host("10.0.0.6", timed_out=True))
    assert r.level == "medium" and "timed out" in r.reason
    worse = host_risk(Host("10.0.0.7", timed_out=True, ports=(op(23, "telnet"),)))
    assert worse.level == "high" and "timed out" in worse.reason
    assert host_risk(Host("10.0.0.8")).level == "info"
    assert host_risk(Host("10.0.0.9", status="down")).reason.startswith("Host is down")


def test_every_open_port_of_real_fixtures_gets_a_reason() -> None:
    for path in FIXTURES.glob("*.xml"):
        report = parse_report(path.read_bytes(), report_id=path.name)
        for h in report.hosts:
            assert host_risk(h).reason
            for p in h.open_ports:
                r = port_risk(p, h)
                assert r.level in LEVELS and r.reason, (path.name, p.label)
