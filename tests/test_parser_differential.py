"""ScanScribe's streaming parser agrees with python-nmap's parser on every real nmap fixture.

python-nmap is kept as an independent reading of the same XML: hosts, their status, every
port's state, service, product and version, and script ids must match. The one place they
must differ is a timed-out host, which python-nmap reports as up and clean.
"""

from __future__ import annotations

from pathlib import Path

import nmap
import pytest

from scanner.parser import parse_report

FIXTURES = Path(__file__).resolve().parent / "fixtures"
REAL = sorted(
    p.name
    for p in FIXTURES.glob("*.xml")
    if not p.name.startswith("crafted") and "truncated" not in p.name
)


def _python_nmap(data: bytes) -> dict[str, dict[str, object]]:
    scan = nmap.PortScanner().analyse_nmap_xml_scan(data.decode())["scan"]
    out: dict[str, dict[str, object]] = {}
    for address, host in scan.items():
        ports = {
            (proto, int(port)): (
                d["state"],
                d.get("name", ""),
                d.get("product", ""),
                d.get("version", ""),
                tuple(sorted(d.get("script", {}))),
            )
            for proto in ("tcp", "udp", "sctp")
            for port, d in host.get(proto, {}).items()
        }
        out[address] = {"status": host["status"]["state"], "ports": ports}
    return out


def _ours(data: bytes) -> dict[str, dict[str, object]]:
    report = parse_report(data, report_id="diff")
    return {
        h.address: {
            "status": h.status,
            "timed_out": h.timed_out,
            "ports": {
                (p.protocol, p.port): (
                    p.state,
                    p.service.removeprefix("ssl/"),
                    p.product,
                    p.version,
                    tuple(sorted(s.id for s in p.scripts)),
                )
                for p in h.ports
            },
        }
        for h in report.hosts
    }


@pytest.mark.parametrize("name", REAL)
def test_parsers_agree_on_real_nmap_output(name: str) -> None:
    data = (FIXTURES / name).read_bytes()
    theirs, ours = _python_nmap(data), _ours(data)
    assert theirs, f"{name} has no host"
    for address, host in theirs.items():
        assert address in ours, f"{address} missing from ScanScribe's reading of {name}"
        mine = ours[address]
        if mine["timed_out"]:
            # python-nmap calls a timed-out host up with no ports; ScanScribe flags it instead.
            assert host["status"] == "up" and not host["ports"]
            continue
        assert mine["status"] == host["status"]
        assert mine["ports"] == host["ports"]


def test_the_fixture_set_includes_a_timed_out_host() -> None:
    data = (FIXTURES / "timedout.xml").read_bytes()
    assert any(h["timed_out"] for h in _ours(data).values())
    assert all(h["status"] == "up" and not h["ports"] for h in _python_nmap(data).values())
