"""The nmap XML parser on real captured outputs; tests/fixtures/README.md says how each was made."""

from __future__ import annotations

import http.server
import threading
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


# -- nmap's own DTD, other DTDs --------------------------------------------------------------------
NMAP6_DOCTYPE = (
    b'<!DOCTYPE nmaprun PUBLIC "-//IDN nmap.org//DTD Nmap XML 1.04//EN" '
    b'"https://svn.nmap.org/nmap/docs/nmap.dtd">'
)
ONE_HOST = (
    b'<nmaprun version="6.45"><host><status state="up"/><address addr="192.0.2.7"/>'
    b'<ports><port protocol="tcp" portid="22"><state state="open"/></port></ports></host>'
    b"</nmaprun>"
)


def test_nmap6_reference_to_its_own_dtd_is_accepted() -> None:
    r = parse_report(b'<?xml version="1.0"?>\n' + NMAP6_DOCTYPE + b"\n" + ONE_HOST, report_id="x")
    assert [(h.address, [p.label for p in h.ports]) for h in r.hosts] == [("192.0.2.7", ["22/tcp"])]


def test_an_undeclared_entity_under_nmaps_dtd_expands_to_nothing() -> None:
    # With the DTD unread, expat skips an unknown entity instead of fetching anything for it.
    doc = NMAP6_DOCTYPE + ONE_HOST.replace(b'addr="192.0.2.7"', b'addr="192.0.2.7&x;"')
    assert parse_report(doc, report_id="x").hosts[0].address == "192.0.2.7"


@pytest.mark.parametrize(
    "doctype",
    [
        # nmap's public id with somebody else's DTD (served below; it must never be asked for)
        b'<!DOCTYPE nmaprun PUBLIC "-//IDN nmap.org//DTD Nmap XML 1.04//EN" "{url}">',
        b'<!DOCTYPE nmaprun SYSTEM "{url}">',
        # nmap's URL under a public id that is not nmap's
        b'<!DOCTYPE nmaprun PUBLIC "-//EVIL//DTD X//EN" "https://svn.nmap.org/nmap/docs/nmap.dtd">',
        # nmap's DTD named for another root element
        b'<!DOCTYPE report PUBLIC "-//IDN nmap.org//DTD Nmap XML 1.04//EN" '
        b'"https://svn.nmap.org/nmap/docs/nmap.dtd">',
        b'<!DOCTYPE nmaprun PUBLIC "-//IDN nmap.org//DTD Nmap XML 1.04//EN" "file:///etc/passwd">',
    ],
)
def test_any_other_dtd_reference_is_refused_and_never_fetched(doctype: bytes) -> None:
    asked: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.append(self.path)
            body = b'<!ENTITY x "' + SECRET.encode() + b'">'
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/nmap.dtd".encode()
        doc = doctype.replace(b"{url}", url) + ONE_HOST.replace(b"192.0.2.7", b"&x;")
        assert "external resource" in refused(doc)
    finally:
        server.shutdown()
        server.server_close()
    assert asked == []


# -- declared encodings ----------------------------------------------------------------------------
ENCODED = (
    '<?xml version="1.0" encoding="{enc}"?>\n<nmaprun version="7.94"><host><status state="up"/>'
    '<address addr="192.0.2.9"/><hostnames><hostname name="{name}"/></hostnames>'
    '<ports><port protocol="tcp" portid="80"><state state="open"/>'
    '<service name="http" product="{product}"/></port></ports></host></nmaprun>'
)


@pytest.mark.parametrize(
    ("declared", "codec", "name", "product"),
    [
        ("UTF-32", "utf-32", "ホスト.example", "Serveur Web Ünï 😀"),  # with a byte order mark
        ("UTF-32BE", "utf-32-be", "ホスト.example", "Serveur Web Ünï 😀"),
        ("UTF-32LE", "utf-32-le", "ホスト.example", "Serveur Web Ünï 😀"),
        ("Shift_JIS", "shift_jis", "ホスト.example", "ウェブサーバ"),
        ("EUC-JP", "euc_jp", "ホスト.example", "ウェブサーバ"),
        ("GB2312", "gb2312", "主机.example", "网页服务器"),
        ("windows-1252", "cp1252", "h\u00f4te.example", "Serveur \u20ac \u00e9t\u00e9"),
        ("UTF8", "utf-8", "ホスト.example", "Serveur Web Ünï 😀"),
    ],
)
def test_a_file_in_another_encoding_is_decoded_correctly(
    declared: str, codec: str, name: str, product: str
) -> None:
    data = ENCODED.format(enc=declared, name=name, product=product).encode(codec)
    [host] = parse_report(data, report_id="x").hosts
    assert host.hostnames == (name,)
    assert (host.ports[0].label, host.ports[0].product) == ("80/tcp", product)


@pytest.mark.parametrize(
    ("declared", "codec", "expect"),
    [
        ("UTF-7", "utf-7", 'declares the encoding "UTF-7", which nmap never writes'),
        ("x-klingon-9", "utf-8", 'declares the encoding "x-klingon-9", which is not'),
        ("base64", "utf-8", 'declares the encoding "base64", which is not'),
        ("UTF-32", "utf-8", 'declares the encoding "UTF-32" but is written in an 8-bit'),
        ("Shift_JIS", "utf-32-le", 'declares the encoding "Shift_JIS" but is written in UTF-32'),
    ],
)
def test_an_unusable_encoding_is_refused_naming_it(declared: str, codec: str, expect: str) -> None:
    data = ENCODED.format(enc=declared, name="+ADw-script+AD4-", product=SECRET).encode(codec)
    msg = refused(data)
    assert expect in msg
    assert "convert it to UTF-8" in msg


def test_an_encoding_name_that_is_not_a_name_is_refused_without_quoting_it() -> None:
    data = ENCODED.format(enc="**bold** [x](http://127.0.0.1:9/)", name="h", product="p").encode()
    msg = refused(data)
    assert "not a valid encoding name" in msg and "http" not in msg


def test_bytes_invalid_in_the_declared_encoding_end_the_file_there() -> None:
    good = ENCODED.format(enc="Shift_JIS", name="ホスト", product="p").encode("shift_jis")
    second = good[good.index(b"<host>") : good.index(b"</nmaprun>")].replace(
        b"192.0.2.9", b"192.0.2.10"
    )
    broken = good.replace(b"</nmaprun>", second[:40] + b"\x81\x20" + second[40:] + b"</nmaprun>")
    r = parse_report(broken, report_id="x")
    assert [h.address for h in r.hosts] == ["192.0.2.9"]
    assert not r.complete


# -- odd shapes and memory -------------------------------------------------------------------------
def test_a_host_nested_in_a_host_is_ignored() -> None:
    # Hand-edited files (the Nmap::Parser fixture of nmap 3.27) hold one; ET counts only the
    # children of <nmaprun>, and so does ScanScribe, so the outer host keeps its own status.
    doc = (
        b'<nmaprun><host><status state="up"/><address addr="192.0.2.1"/>'
        b'<host><status state="down"/><address addr="192.0.2.99"/></host>'
        b'<ports><port protocol="tcp" portid="22"><state state="open"/></port></ports></host>'
        b'<host><status state="down"/><address addr="192.0.2.2"/></host></nmaprun>'
    )
    r = parse_report(doc, report_id="x")
    assert [(h.address, h.status, len(h.ports)) for h in r.hosts] == [
        ("192.0.2.1", "up", 1),
        ("192.0.2.2", "down", 0),
    ]


def test_a_file_of_tiny_elements_is_refused_before_it_outgrows_memory() -> None:
    # 300,000 empty hosts are 2 MB of XML but would be 100 MB of objects (about 50x): refused.
    doc = b"<nmaprun>" + b"<host/>" * 300_000 + b"</nmaprun>"
    msg = refused(doc)
    assert "would need more than" in msg and "times its size" in msg


def test_one_element_over_the_limit_is_refused() -> None:
    doc = (
        b'<nmaprun><host><status state="up"/><address addr="192.0.2.1"/><hostscript>'
        b'<script id="x" output="' + b"a" * (33 << 20) + b'"/></hostscript></host></nmaprun>'
    )
    assert "single tag, comment or text over 32 MiB (from line 1)" in refused(doc)


def test_a_script_heavy_file_within_the_bound_imports() -> None:
    # A 1 MB script output is what nmap's vulscan writes; it stays well inside the limits.
    doc = (
        b'<nmaprun><host><status state="up"/><address addr="192.0.2.1"/><ports>'
        + b"".join(
            b'<port protocol="tcp" portid="%d"><state state="open"/>'
            b'<script id="vulscan" output="%s"/></port>' % (p, b"CVE-2021-0001&#xa;" * 60_000)
            for p in range(1, 6)
        )
        + b"</ports></host></nmaprun>"
    )
    [host] = parse_report(doc, report_id="x").hosts
    assert [len(p.scripts[0].output) for p in host.ports] == [len("CVE-2021-0001\n") * 60_000] * 5
