"""Large nmap XML for the benchmarks, grown from a real captured scan used as a template."""

from __future__ import annotations

import re
from pathlib import Path

TEMPLATE = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "netns_after.xml"
_PORT = re.compile(rb"<port .*?</port>", re.S)
_PORTID = re.compile(rb'portid="\d+"')
_HOST = re.compile(rb"<host .*?</host>", re.S)


def big_scan(hosts: int, ports_per_host: int, template: Path = TEMPLATE) -> bytes:
    """nmap XML with ``hosts`` up hosts of ``ports_per_host`` ports each, cut from a real scan."""
    src = template.read_bytes()
    # The richest host of the template: MAC and vendor, OS matches, services with versions.
    host = max(_HOST.findall(src), key=len)
    head = src[: src.index(b"<host")]
    tail = src[src.index(b"<runstats>") :]
    ports_open = host.index(b"<ports>") + len(b"<ports>")
    ports_close = host.index(b"</ports>")
    before, after = host[:ports_open], host[ports_close:]
    templates = _PORT.findall(host[ports_open:ports_close])
    port_blocks = []
    for j in range(ports_per_host):
        block = templates[j % len(templates)]
        if j >= len(templates):
            block = _PORTID.sub(b'portid="%d"' % (20000 + j), block, count=1)
        port_blocks.append(block)
    body = b"\n".join(port_blocks)
    out = [head]
    for i in range(hosts):
        addr = b"10.%d.%d.%d" % ((i >> 16) & 255, (i >> 8) & 255, i & 255)
        out.append(before.replace(b"10.231.7.2", addr) + body + after + b"\n")
    out.append(tail)
    return b"".join(out)


SCRIPTS_TEMPLATE = TEMPLATE.parent / "loopback_sV_scripts.xml"
_SCRIPT = re.compile(rb"<script .*?</script>", re.S)


def script_heavy_scan(hosts: int, repeat: int = 8, template: Path = SCRIPTS_TEMPLATE) -> bytes:
    """nmap XML of ``hosts`` copies of a real -sV --script scan's host, most of it script output.

    Each port's script elements are repeated ``repeat`` times (the way vulners or vulscan fill a
    port with results), so script output is most of the file.
    """
    src = template.read_bytes()
    host = _HOST.findall(src)[0]
    head = src[: src.index(b"<host")]
    tail = src[src.index(b"<runstats>") :]
    host = _SCRIPT.sub(lambda m: m.group(0) * repeat, host)
    out = [head]
    for i in range(hosts):
        addr = b"10.%d.%d.%d" % ((i >> 16) & 255, (i >> 8) & 255, i & 255)
        out.append(host.replace(b"127.0.0.1", addr) + b"\n")
    out.append(tail)
    return b"".join(out)
