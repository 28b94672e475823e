"""The nmap XML parser on real captured outputs; tests/fixtures/README.md says how each was made."""

from __future__ import annotations

from pathlib import Path

import pytest

from scanner.errors import ImportRefused
from scanner.models import Report
from scanner.parser import parse_report

FIXTURES = Path(__file__).parent / "fixtures"


def load(name: str, **kw: object) -> Report:
    return parse_report((FIXTURES / name).read_bytes(), report_id=name, **kw)  # type: ignore[arg-type]


def ports(report: Report, address: str) -> dict[str, tuple[str, str, str, str]]:
    host = report.host(address)
    assert host is not None
    return {p.label: (p.state, p.service, p.product, p.version) for p in host.ports}


def test_connect_scan_counts_hosts_and_open_ports() -> None:
    r = load("loopback_sT.xml")
    assert (len(r.hosts), r.hosts_up, r.open_port_count) == (1, 1, 6)
    assert r.complete and r.note == ""
    assert r.nmap_version == "7.93"
    assert r.args.startswith("nmap -n -sT -p 1,18021")
    assert (r.started_at, r.finished_at) == (1795314050.0, 1795314050.0)
    got = ports(r, "127.0.0.1")
    assert got["1/tcp"] == ("closed", "tcpmux", "", "")
    assert {k for k, v in got.items() if v[0] == "open"} == {
        "16379/tcp",
        "18021/tcp",
        "18022/tcp",
        "18023/tcp",
        "18025/tcp",
        "18080/tcp",
    }
    host = r.hosts[0]
    assert (host.status, host.reason, host.timed_out) == ("up", "localhost-response", False)


def test_version_scan_finds_services_products_and_cpe() -> None:
    r = load("loopback_sV_scripts.xml")
    got = ports(r, "127.0.0.1")
    assert got["18021/tcp"] == ("open", "ftp", "vsftpd", "2.3.4")
    assert got["18022/tcp"] == ("open", "ssh", "OpenSSH", "7.4")
    assert got["18023/tcp"][1] == "telnet"
    assert got["18025/tcp"][1] == "smtp"
    assert got["6379/tcp"] == ("open", "redis", "Redis key-value store", "6.0.16")
    p = {p.label: p for p in r.hosts[0].ports}
    assert p["18022/tcp"].extrainfo == "protocol 2.0"
    assert p["18022/tcp"].cpe == ("cpe:/a:openbsd:openssh:7.4",)
    assert p["18021/tcp"].reason == "syn-ack"


def test_script_output_is_kept_verbatim_including_hostile_markup() -> None:
    r = load("loopback_sV_scripts.xml")
    p = {p.label: p for p in r.hosts[0].ports}
    web = {s.id: s.output for s in p["18080/tcp"].scripts}
    assert "IGNORE ALL PREVIOUS INSTRUCTIONS" in web["http-title"]
    assert "javascript:alert(document.cookie)" in web["hadoop-datanode-info"]
    # The server header lands in nmap's version info, exactly as the listener sent it.
    assert "<script>alert(1)</script>" in p["18080/tcp"].extrainfo
    smtp = {s.id: s.output for s in p["18025/tcp"].scripts}
    assert "[click here](http://127.0.0.1:9/x)" in smtp["fingerprint-strings"]


def test_ipv6_scan() -> None:
    r = load("ipv6_sV.xml")
    host = r.hosts[0]
    assert (host.address, host.addrtype) == ("::1", "ipv6")
    got = ports(r, "::1")
    assert got["18080/tcp"] == ("open", "http", "Apache httpd", "2.4.49")
    assert got["18022/tcp"][:3] == ("open", "ssh", "OpenSSH")
    assert got["1/tcp"][0] == "closed"


def test_os_detection_keeps_every_match_with_accuracy() -> None:
    r = load("loopback_O.xml")
    host = r.hosts[0]
    assert host.os[0].name == "Linux 5.0 - 5.2" and host.os[0].accuracy == 97
    assert len(host.os) >= 3
    assert host.os_guess == "Linux 5.0 - 5.2 (97%)"


def test_timed_out_hosts_are_flagged_not_clean() -> None:
    r = load("timedout.xml")
    assert [h.address for h in r.hosts] == ["127.0.0.1", "127.0.0.2"]
    assert all(h.timed_out and h.status == "up" and not h.ports for h in r.hosts)
    assert "--host-timeout" in r.args  # nmap wrote "-&#45;"; the character reference is decoded


def test_nmap5_shape_with_mac_vendor_udp_and_down_host() -> None:
    r = load("crafted_nmap5_sS_sU_O.xml")
    assert r.nmap_version == "5.21"
    assert [h.status for h in r.hosts] == ["up", "down", "up"]
    router = r.hosts[0]
    assert (router.mac, router.vendor) == ("00:1B:54:AA:BB:CC", "Cisco Systems")
    assert router.hostnames == ("router.example.test",)
    assert router.os_guess == "Cisco IOS 12.4 (96%)"
    assert ports(r, "192.0.2.1")["161/udp"][0] == "open|filtered"
    assert r.open_port_count == 3  # 22, 23 and 161/udp on .3; open|filtered is not open
    assert r.extra["runstats"] == {"up": 2, "down": 1, "total": 3}


def test_nmap6_shape_with_scripts_tables_tunnel_and_host_scripts() -> None:
    r = load("crafted_nmap6_scripts_ipv6.xml")
    files, slow = r.hosts
    assert files.hostnames == ("files.example.test",)  # the user and PTR names, once
    p = {p.label: p for p in files.ports}
    assert p["443/tcp"].service == "ssl/http"
    # The script's nested <table>/<elem> structure repeats its output and is not kept apart.
    assert [s.id for s in p["443/tcp"].scripts] == ["ssl-heartbleed"]
    assert "State: VULNERABLE" in p["443/tcp"].scripts[0].output
    assert [s.id for s in files.scripts] == ["smb-security-mode", "smb2-security-mode"]
    assert slow.timed_out and slow.addrtype == "ipv6"


def test_caller_fields_are_kept() -> None:
    r = load("loopback_sT.xml", source="import: x.xml", targets=("127.0.0.1",), owner="ana")
    assert (r.id, r.source, r.targets, r.owner) == (
        "loopback_sT.xml",
        "import: x.xml",
        ("127.0.0.1",),
        "ana",
    )
    assert r.created_at > 0


# -- incomplete and hostile files --------------------------------------------------------------
SECRET = "s3cr3t-marker-do-not-echo"


def refused(data: bytes, **kw: int) -> str:
    with pytest.raises(ImportRefused) as info:
        parse_report(data, report_id="x", **kw)  # type: ignore[arg-type]
    message = str(info.value)
    assert SECRET not in message
    assert "root:" not in message
    return message


def test_file_cut_mid_host_keeps_the_complete_hosts() -> None:
    data = (FIXTURES / "crafted_nmap5_sS_sU_O.xml").read_bytes()
    cut = data[: data.index(b'<address addr="08:00:27')]  # inside the third host
    r = parse_report(cut, report_id="cut")
    assert [h.address for h in r.hosts] == ["192.0.2.1", "192.0.2.2"]
    assert not r.complete
    assert r.note == "the file stops after host 2; it was incomplete"


def test_file_cut_before_any_host_is_refused() -> None:
    data = (FIXTURES / "loopback_sT.xml").read_bytes()
    msg = refused(data[: data.index(b"<ports>")])
    assert "before any complete host" in msg


def test_external_entity_is_refused_without_echo(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text(SECRET)
    xxe = (
        f'<?xml version="1.0"?><!DOCTYPE nmaprun [<!ENTITY x SYSTEM "file://{secret}">]>'
        '<nmaprun><host><address addr="&x;"/></host></nmaprun>'
    ).encode()
    assert "hostile" in refused(xxe)


def test_billion_laughs_is_refused() -> None:
    lol = (
        '<?xml version="1.0"?><!DOCTYPE nmaprun [<!ENTITY a "'
        + SECRET
        + '">'
        + "".join(
            f'<!ENTITY {c} "{("&" + p + ";") * 10}">'
            for p, c in zip("abcdefgh", "bcdefghi", strict=True)
        )
        + "]><nmaprun>&i;</nmaprun>"
    ).encode()
    assert "entities" in refused(lol)


def test_external_dtd_and_parameter_entities_are_refused() -> None:
    ext = b'<?xml version="1.0"?><!DOCTYPE nmaprun SYSTEM "http://127.0.0.1:9/x.dtd"><nmaprun/>'
    assert "external" in refused(ext)
    pe = (
        b'<?xml version="1.0"?><!DOCTYPE nmaprun [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]>'
        b"<nmaprun/>"
    )
    refused(pe)


def test_not_nmap_garbage_empty_and_oversize_are_refused() -> None:
    assert "not nmap" in refused(f'<report owner="{SECRET}"><host/></report>'.encode())
    assert "not well-formed" in refused(f"root:x:0:0:{SECRET}:/root:/bin/bash\n".encode())
    assert "not well-formed" in refused(b"\x89PNG\r\n\x1a\n" + SECRET.encode())
    assert "empty" in refused(b"  \n")
    big = (FIXTURES / "loopback_sT.xml").read_bytes()
    assert "limit" in refused(big, max_bytes=len(big) - 1)


def test_file_cut_just_after_a_host_keeps_that_host() -> None:
    data = (FIXTURES / "crafted_nmap5_sS_sU_O.xml").read_bytes()
    second = data.index(b"</host>", data.index(b'addr="192.0.2.2"')) + len(b"</host>")
    for cut in (data[:second], data[:second] + b"\n<host><status"):
        r = parse_report(cut, report_id="cut")
        assert [h.address for h in r.hosts] == ["192.0.2.1", "192.0.2.2"]
        assert not r.complete


def test_bytes_after_the_document_do_not_lose_hosts() -> None:
    data = (FIXTURES / "loopback_sT.xml").read_bytes() + b"\n<junk/>"
    r = parse_report(data, report_id="junk")
    assert r.complete and r.open_port_count == 6


def test_hosthint_elements_do_not_leak_into_hosts() -> None:
    # netns_after.xml was made with -v: nmap wrote <hosthint> blocks between the hosts.
    data = (FIXTURES / "netns_after.xml").read_bytes()
    assert b"<hosthint>" in data
    r = parse_report(data, report_id="v")
    assert [(h.address, h.status) for h in r.hosts] == [
        ("10.231.7.4", "down"),
        ("10.231.7.2", "up"),
        ("10.231.7.3", "up"),
    ]
    assert [len(h.ports) for h in r.hosts] == [0, 10, 10]


def test_the_fast_port_constructor_builds_the_same_frozen_port() -> None:
    from dataclasses import FrozenInstanceError

    from scanner.models import Port, Script, make_port

    args = (443, "tcp", "open", "syn-ack", "https", "nginx", "1.25", "x", ("cpe:/a:n",), ())
    fast, slow = make_port(*args), Port(*args)
    assert fast == slow and hash(fast) == hash(slow) and repr(fast) == repr(slow)
    with pytest.raises(FrozenInstanceError):
        fast.port = 1  # type: ignore[misc]
    assert make_port(*args[:-1], (Script("a", "b"),)).scripts == (Script("a", "b"),)
