"""nmap XML in, Report out: a streaming, defused parse of nmap 5.x-7.x output.

The document is fed to expat in chunks and the frozen report objects are built as the elements
go by, so no element tree is ever held. The expat parser is defused the way
``defusedxml.ElementTree`` does it (entity declarations and external references raise
defusedxml's own exceptions), but the ``<!DOCTYPE nmaprun>`` that real nmap output carries is
allowed, and so is nmap 5-6's reference to its own DTD, which expat never fetches. Every refusal
is an :class:`ImportRefused` whose message never quotes the file.

The ``<table>``/``<elem>`` output of vulners and the vulns-library scripts (and vulscan's text)
becomes :class:`~scanner.models.Finding` objects on the port (:mod:`scanner.vulns`); only the
script being read has its tables held, and only until its end tag.

Memory is bounded: what the report keeps is counted as it is built and a file whose report would
outgrow 1.5 times its size (plus a constant) is refused, as is a single element over 32 MiB
(expat buffers a whole tag, attributes and all, before it calls back). Together with the bytes
themselves that keeps a parse under 3 times the file's size plus 100 MB.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from collections.abc import Callable
from typing import Any
from xml.parsers import expat

from defusedxml.common import EntitiesForbidden, ExternalReferenceForbidden

from scanner.errors import ImportRefused
from scanner.models import (
    Finding,
    Host,
    OSMatch,
    Port,
    Report,
    Script,
    acyclic_build,
    make_port,
)
from scanner.vulns import TableCollector, collects, merge, script_findings
from scanner.xml_encoding import source_codec, to_utf8

log = logging.getLogger(__name__)

MAX_IMPORT_BYTES = 256 * 1024 * 1024
CHUNK_BYTES = 1 << 20
MiB = 1 << 20
# What the report may keep, in estimated bytes: KEEP_FACTOR times the file's size plus KEEP_FLOOR.
# Real nmap output keeps well under its own size (interned keywords, no element tree).
KEEP_FACTOR = 1.5
KEEP_FLOOR = 32 * MiB
MAX_ELEMENT_BYTES = 32 * MiB
# Estimated bytes each kept object costs (its slots, a list and a tuple slot, a port number).
_PORT_COST = 160
_HOST_COST = 320
_SCRIPT_COST = 64
_ITEM_COST = 16
_MAX_CPE = 4096
_size = sys.getsizeof

Attrs = dict[str, str]
_JUNK_AFTER_ROOT = expat.errors.codes[expat.errors.XML_ERROR_JUNK_AFTER_DOC_ELEMENT]


def _forbid_entity(
    name: str,
    is_parameter_entity: bool,
    value: str | None,
    base: str | None,
    sysid: str | None,
    pubid: str | None,
    notation_name: str | None,
) -> None:
    raise EntitiesForbidden(name, value, base, sysid, pubid, notation_name)


def _forbid_unparsed_entity(
    name: str, base: str | None, sysid: str | None, pubid: str | None, notation: str | None
) -> None:
    raise EntitiesForbidden(name, None, base, sysid, pubid, notation)


def _forbid_external(context: str, base: str | None, sysid: str | None, pubid: str | None) -> int:
    raise ExternalReferenceForbidden(context, base, sysid, pubid)


# nmap 5.x-6.x named its own DTD: <!DOCTYPE nmaprun PUBLIC "-//IDN nmap.org//DTD Nmap XML 1.04//EN"
# "https://svn.nmap.org/nmap/docs/nmap.dtd">. expat never loads an external DTD subset here
# (parameter entity parsing is off), so accepting that exact reference fetches nothing.
_NMAP_DTD_PUBID = re.compile(r"-//IDN nmap\.org//DTD Nmap XML \d+\.\d+//EN")
_NMAP_DTD_SYSIDS = frozenset(
    ("https://svn.nmap.org/nmap/docs/nmap.dtd", "http://svn.nmap.org/nmap/docs/nmap.dtd")
)


def _doctype(name: str, sysid: str | None, pubid: str | None, has_internal_subset: bool) -> None:
    # nmap 7 writes a bare <!DOCTYPE nmaprun>; any DTD but nmap's own is an external reference.
    if not sysid and not pubid:
        return
    if (
        name == "nmaprun"
        and sysid in _NMAP_DTD_SYSIDS
        and pubid is not None
        and _NMAP_DTD_PUBID.fullmatch(pubid)
    ):
        return
    raise ExternalReferenceForbidden(name, None, sysid, pubid)


class _NotNmap(Exception):
    """The root element is not ``nmaprun``."""


class _OverBudget(Exception):
    """The report being built would outgrow the memory allowed for this file."""


def _float(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        return None


def _int(value: str | None, default: int = 0) -> int:
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        return default


# The only protocols nmap writes for a <port> (its DTD says so); interned once, looked up per port.
_PROTOCOLS = {p: sys.intern(p) for p in ("tcp", "udp", "sctp", "ip")}


def _protocol(value: str) -> str:
    """nmap's protocol keyword, lower-cased; anything else refuses the file (it becomes a label)."""
    known = _PROTOCOLS.get(value) or _PROTOCOLS.get(value.lower())
    if known is not None:
        return known
    # Name the value only when it is a plain word: a refusal message never quotes markup.
    plain = value.isascii() and value.isalnum() and len(value) <= 16
    shown = f'"{value}"' if plain else f"a {len(value)}-character value"
    raise ImportRefused(
        f"A port's protocol is {shown}; nmap only writes tcp, udp, sctp or ip there, so the file "
        "was refused as hostile or damaged. Nothing was imported."
    )


# Elements that may sit inside a <port> (script output tables included). Any other element
# starting while a port is open means the port has ended.
_PORT_CHILDREN = frozenset(("state", "owner", "service", "cpe", "script", "elem", "table"))
# Top-level elements that may follow a host: when one starts, the host before it has ended.
_AFTER_HOST = frozenset(
    (
        "host",
        "hosthint",
        "runstats",
        "taskbegin",
        "taskprogress",
        "taskend",
        "prescript",
        "postscript",
        "output",
        "scaninfo",
        "verbose",
        "debugging",
        "target",
    )
)
_intern = sys.intern
# A <host .../> start tag that is also its end.
_EMPTY_HOST_TAG = re.compile(rb"""<host(?:\s+[^\s=/>]+\s*=\s*(?:"[^"]*"|'[^']*'))*\s*/>""")


class _Builder:
    """Expat start-element callbacks that build hosts and ports as nmap's elements go by.

    Only start tags are handled (half the Python calls of start+end): a port ends when an element
    that cannot be inside a port starts, a host ends when a top-level element starts. Repeated
    values ("open", "tcp", "syn-ack", "http") are interned, so a big report holds one copy. The
    per-element path is a closure over local cells, the cheapest state Python offers, because it
    runs once for every element of files with hundreds of thousands of them.

    Every kept object is charged against ``budget`` (estimated bytes); running out raises
    :class:`_OverBudget`. ``data`` is the UTF-8 or native text expat is fed, so that the builder
    can tell a nested ``<host>`` (hand-edited files have them) from the next one.
    """

    def __init__(self, parser: Any, data: bytes, budget: int) -> None:
        self.parser = parser
        self.data = data
        self.budget = budget
        self.hosts: list[Host] = []
        self.run: Attrs = {}
        self.finished: Attrs = {}
        self.runstats: Attrs = {}
        self.scaninfo: list[Attrs] = []
        self.seen_root = False
        self.host_offset = -1
        self.closed_from = 0
        self.start, self.finish, self.drop_open_host = self._make()

    def root(self, name: str, attrs: Attrs) -> None:
        """The first element: it must be <nmaprun>; later elements go to ``start``."""
        if name != "nmaprun":
            raise _NotNmap
        self.seen_root = True
        self.run = attrs
        self.parser.StartElementHandler = self.start

    def _host_closed(self, now: int) -> bool:
        """Whether the open host ended before byte ``now`` (a </host>, or it was <host/>)."""
        since = max(self.host_offset, self.closed_from)
        if self.data.rfind(b"</host>", since, now) >= 0:
            return True
        return _EMPTY_HOST_TAG.match(self.data, self.host_offset) is not None

    def _skip_nested_host(self) -> None:
        """Ignore a <host> inside an open <host>, up to its end tag (end tags watched only here)."""
        parser = self.parser
        depth = 1

        def skip_start(name: str, attrs: Attrs) -> None:
            nonlocal depth
            depth += 1

        def skip_end(name: str) -> None:
            nonlocal depth
            depth -= 1
            if depth == 0:
                parser.StartElementHandler = self.start
                parser.EndElementHandler = None
                # The outer host's own </host> is searched for only after this point.
                self.closed_from = parser.CurrentByteIndex + 1

        log.info("nmap XML holds a <host> inside another; the inner one is ignored")
        parser.StartElementHandler = skip_start
        parser.EndElementHandler = skip_end

    def _make(
        self,
    ) -> tuple[Callable[[str, Attrs], None], Callable[[], None], Callable[[], None]]:
        parser = self.parser
        hosts = self.hosts
        intern = _intern
        size = _size
        port_cost, host_cost, script_cost, item_cost = (
            _PORT_COST,
            _HOST_COST,
            _SCRIPT_COST,
            _ITEM_COST,
        )
        left = self.budget
        port_children = _PORT_CHILDREN
        after_host = _AFTER_HOST
        host: dict[str, Any] | None = None
        host_ports: list[Port] = []
        pa: Attrs | None = None
        st: Attrs | None = None
        sv: Attrs | None = None
        cpes: list[str] = []
        scripts: list[Script] = []
        found: list[Finding] = []
        host_found: list[Finding] = []
        text: list[str] | None = None
        text_len = 0

        def cpe_text(piece: str) -> None:
            nonlocal text_len
            text_len += len(piece)
            if text is not None and text_len <= _MAX_CPE:
                text.append(piece)

        def end_cpe() -> None:
            nonlocal text, left
            parser.CharacterDataHandler = None
            value = "".join(text or ()).strip()
            text = None
            # A CPE name is short; an endless one is dropped, not kept.
            if value and pa is not None and text_len <= _MAX_CPE:
                cpes.append(intern(value))
                left -= item_cost + size(value)

        def end_port() -> None:
            nonlocal pa, st, sv, cpes, scripts, found, left
            assert pa is not None
            if sv is None:
                name = product = version = extrainfo = ""
            else:
                name = sv.get("name", "")
                # nmap's own listings call a service found inside TLS "ssl/<name>"; keep that.
                if name and sv.get("tunnel") == "ssl":
                    name = "ssl/" + name
                name = intern(name)
                product = intern(sv.get("product", ""))
                version = intern(sv.get("version", ""))
                extrainfo = intern(sv.get("extrainfo", ""))
            portid = pa.get("portid", "")
            host_ports.append(
                make_port(
                    int(portid) if portid.isdigit() else 0,
                    _protocol(pa.get("protocol", "tcp")),
                    intern(st.get("state", "unknown")) if st else "unknown",
                    intern(st.get("reason", "")) if st else "",
                    name,
                    product,
                    version,
                    extrainfo,
                    tuple(cpes) if cpes else (),
                    tuple(scripts) if scripts else (),
                    merge(found) if found else (),
                )
            )
            pa = st = sv = None
            if cpes:
                cpes = []
            if scripts:
                scripts = []
            if found:
                found = []
            left -= port_cost
            if left < 0:
                raise _OverBudget

        def end_host() -> None:
            nonlocal host, host_ports, host_found, left
            if pa is not None:
                end_port()
            h = host
            host = None
            if h is None:
                return
            if host_found:
                _attach_host_findings(host_ports, host_found)
                host_found = []
            hosts.append(
                Host(
                    h["address"],
                    h["addrtype"],
                    h["status"],
                    h["reason"],
                    tuple(h["hostnames"]),
                    h["mac"],
                    h["vendor"],
                    h["timed_out"],
                    tuple(h["os"]),
                    tuple(host_ports),
                    tuple(h["scripts"]),
                )
            )
            host_ports = []
            left -= host_cost
            if left < 0:
                raise _OverBudget

        def start(name: str, attrs: Attrs) -> None:
            nonlocal host, pa, st, sv, text, text_len, left
            if text is not None:
                end_cpe()
            if pa is not None:
                if name == "state":
                    st = attrs
                    return
                if name == "service":
                    sv = attrs
                    return
                if name == "cpe":
                    text = []
                    text_len = 0
                    parser.CharacterDataHandler = cpe_text
                    return
                if name == "script":
                    script_id = intern(attrs.get("id", ""))
                    output = attrs.get("output", "")
                    scripts.append(Script(script_id, output))
                    left -= script_cost + size(output)
                    if left < 0:
                        raise _OverBudget
                    if script_id == "vulscan" or collects(script_id, output):
                        collect(script_id, output, found)
                    return
                if name not in port_children:
                    end_port()
            if name == "port":
                if host is not None:
                    if pa is not None:
                        end_port()
                    pa = attrs
                return
            if name in after_host:
                if host is not None:
                    if name == "host" and not self._host_closed(parser.CurrentByteIndex):
                        self._skip_nested_host()
                        return
                    end_host()
                if name == "host":
                    self.host_offset = parser.CurrentByteIndex
                    host = {
                        "address": "",
                        "addrtype": "ipv4",
                        "status": "unknown",
                        "reason": "",
                        "hostnames": {},
                        "mac": "",
                        "vendor": "",
                        "timed_out": attrs.get("timedout") == "true",
                        "os": [],
                        "scripts": [],
                    }
                elif name == "scaninfo":
                    self.scaninfo.append(attrs)
                return
            if host is None:
                if name == "finished":
                    self.finished = attrs
                elif name == "hosts":
                    self.runstats = attrs
                return
            if name == "status":
                host["status"] = intern(attrs.get("state", "unknown"))
                host["reason"] = intern(attrs.get("reason", ""))
            elif name == "address":
                kind = attrs.get("addrtype", "ipv4")
                if kind == "mac":
                    host["mac"] = attrs.get("addr", "")
                    host["vendor"] = intern(attrs.get("vendor", ""))
                elif not host["address"]:
                    host["address"] = attrs.get("addr", "")
                    host["addrtype"] = intern(kind)
            elif name == "hostname":
                hostname = attrs.get("name")
                if hostname and hostname not in host["hostnames"]:
                    host["hostnames"][hostname] = None
                    left -= item_cost + size(hostname)
            elif name == "osmatch":
                os_name = intern(attrs.get("name", ""))
                host["os"].append(OSMatch(os_name, _int(attrs.get("accuracy"))))
                left -= script_cost + size(os_name)
            elif name == "script":
                script_id = intern(attrs.get("id", ""))
                output = attrs.get("output", "")
                host["scripts"].append(Script(script_id, output))
                left -= script_cost + size(output)
                if collects(script_id, output):
                    collect(script_id, output, host_found)
            if left < 0:
                raise _OverBudget

        def collect(script_id: str, output: str, sink: list[Finding]) -> None:
            """Hand the script's table and elem events to a collector until the script ends."""
            collector = TableCollector()

            def end(name: str) -> None:
                nonlocal left
                if not collector.end(name):
                    return
                parser.StartElementHandler = start
                parser.EndElementHandler = None
                parser.CharacterDataHandler = None
                for f in script_findings(script_id, output, collector.root):
                    sink.append(f)
                    left -= script_cost + size(f.evidence)
                if left < 0:
                    raise _OverBudget

            parser.StartElementHandler = collector.start
            parser.EndElementHandler = end
            parser.CharacterDataHandler = collector.text

        def finish() -> None:
            """The document ended: close whatever host is still open."""
            if text is not None:
                end_cpe()
            if host is not None:
                end_host()

        def drop_open_host() -> None:
            """The document broke inside a host: forget it and its half-read port."""
            nonlocal host, host_ports, pa, text, found, host_found
            parser.CharacterDataHandler = None
            text = None
            pa = None
            host = None
            host_ports = []
            found = []
            host_found = []

        return start, finish, drop_open_host


# Host-rule vulnerability scripts (smb-vuln-*, samba-vuln-*) test the SMB service: their findings
# go on that port, the first of these the host has.
_SMB_PORTS = ((445, "tcp"), (139, "tcp"))


def _attach_host_findings(ports: list[Port], found: list[Finding]) -> None:
    """Put a host script's findings on the host's SMB port; without one they are not kept."""
    for number, protocol in _SMB_PORTS:
        for i, p in enumerate(ports):
            if p.port == number and p.protocol == protocol:
                ports[i] = make_port(
                    p.port, p.protocol, p.state, p.reason, p.service, p.product, p.version,
                    p.extrainfo, p.cpe, p.scripts, merge((*p.cves, *found)),
                )  # fmt: skip
                return
    log.info("host script findings without an SMB port are kept only as script output")


def _new_parser(data: bytes, budget: int, encoding: str | None) -> tuple[Any, _Builder]:
    # An encoding given here overrides the file's declaration (used for transcoded text).
    parser = expat.ParserCreate(encoding)
    # The same defusing as defusedxml.ElementTree: no entity declarations, no external
    # references. The DOCTYPE itself is allowed because every nmap XML file carries one.
    parser.EntityDeclHandler = _forbid_entity
    parser.UnparsedEntityDeclHandler = _forbid_unparsed_entity
    parser.ExternalEntityRefHandler = _forbid_external
    parser.StartDoctypeDeclHandler = _doctype
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    # Text (CPE names, and the elems of vulnerability scripts) arrives in pieces of up to 8 KiB,
    # not one per line.
    parser.buffer_text = True
    builder = _Builder(parser, data, budget)
    parser.StartElementHandler = builder.root
    return parser, builder


def _release(parser: Any) -> None:
    """Drop the handlers: they close over the parser, a cycle that would keep expat's buffers."""
    parser.StartElementHandler = None
    parser.EndElementHandler = None
    parser.CharacterDataHandler = None


class _ElementTooBig(Exception):
    """expat has been holding one unfinished tag, comment or text run for too long."""


def parse_report(
    data: bytes,
    *,
    report_id: str,
    source: str = "scan",
    targets: tuple[str, ...] = (),
    profile: str = "",
    owner: str = "",
    max_bytes: int = MAX_IMPORT_BYTES,
) -> Report:
    """Parse nmap XML into a Report, or raise ImportRefused with a message safe to show."""
    with acyclic_build():
        return _parse_report(
            data,
            report_id=report_id,
            source=source,
            targets=targets,
            profile=profile,
            owner=owner,
            max_bytes=max_bytes,
        )


def _parse_report(
    data: bytes,
    *,
    report_id: str,
    source: str,
    targets: tuple[str, ...],
    profile: str,
    owner: str,
    max_bytes: int,
) -> Report:
    if len(data) > max_bytes:
        raise ImportRefused(
            f"The file is {len(data) / 1048576:.1f} MiB, over the {max_bytes / 1048576:.0f} MiB "
            "limit for nmap XML; nothing was imported."
        )
    if not data or data.isspace():
        raise ImportRefused("The file is empty; it is not nmap XML. Nothing was imported.")
    codec = source_codec(data)
    if codec is not None:
        data = to_utf8(data, codec)
    budget = int(len(data) * KEEP_FACTOR) + KEEP_FLOOR
    parser, b = _new_parser(data, budget, "UTF-8" if codec else None)
    complete = True
    note = ""
    try:
        view = memoryview(data)
        for offset in range(0, len(data), CHUNK_BYTES):
            chunk = view[offset : offset + CHUNK_BYTES]
            parser.Parse(chunk, False)
            if offset + len(chunk) - parser.CurrentByteIndex > MAX_ELEMENT_BYTES:
                raise _ElementTooBig
        parser.Parse(b"", True)
        b.finish()
    except _OverBudget:
        raise ImportRefused(
            f"The file would need more than {budget / MiB:.0f} MiB of memory to hold "
            f"({KEEP_FACTOR:g} times its size plus {KEEP_FLOOR // MiB} MiB is the limit): it "
            "holds far more hosts, ports or script results per byte than nmap writes. Nothing "
            "was imported."
        ) from None
    except _ElementTooBig:
        raise ImportRefused(
            f"The file has a single tag, comment or text over {MAX_ELEMENT_BYTES // MiB} MiB "
            f"(from line {parser.CurrentLineNumber}), which nmap does not write; it was refused "
            "so that the import stays within memory. Nothing was imported."
        ) from None
    except _NotNmap:
        raise ImportRefused(
            "This is XML but not nmap output (its root element is not <nmaprun>); "
            "nothing was imported."
        ) from None
    except EntitiesForbidden:
        raise ImportRefused(
            "The file declares XML entities, which nmap never writes; it was refused as "
            "hostile (entity expansion or external entities). Nothing was imported."
        ) from None
    except ExternalReferenceForbidden:
        raise ImportRefused(
            "The file refers to an external resource, which nmap never writes; it was refused "
            "as hostile. Nothing was imported."
        ) from None
    except expat.ExpatError as exc:
        where = f"line {exc.lineno}, column {exc.offset}"
        log.info("nmap XML stops being well-formed at %s (%s)", where, expat.ErrorString(exc.code))
        if not b.seen_root:
            raise ImportRefused(
                f"The file is not well-formed XML (the error is at {where}); it is not nmap "
                "output. Nothing was imported."
            ) from None
        if exc.code == _JUNK_AFTER_ROOT:
            # Trailing bytes after </nmaprun>: every host was already read.
            b.finish()
        elif (
            b.host_offset >= 0 and data.find(b"</host>", b.host_offset, parser.ErrorByteIndex) >= 0
        ):
            # The break came after the last host had closed: that host is whole.
            b.finish()
        else:
            b.drop_open_host()
        if exc.code == _JUNK_AFTER_ROOT:
            pass
        elif not b.hosts:
            raise ImportRefused(
                f"The nmap XML breaks off or is malformed at {where}, before any complete host; "
                "nothing was imported."
            ) from None
        else:
            complete = False
            note = f"the file stops after host {len(b.hosts)}; it was incomplete"
    except RecursionError:
        raise ImportRefused("The file nests too deeply to be nmap output.") from None
    finally:
        _release(parser)
    if complete and not b.seen_root:
        raise ImportRefused("The file holds no XML element; it is not nmap output.")

    run = b.run
    extra: dict[str, Any] = {}
    if run.get("xmloutputversion"):
        extra["xmloutputversion"] = run["xmloutputversion"]
    if b.finished.get("exit"):
        extra["exit"] = b.finished["exit"]
    if b.finished.get("errormsg"):
        extra["errormsg"] = b.finished["errormsg"]
    if b.scaninfo:
        # Which ports the scan covered, per protocol: a port it never covered is "not scanned".
        extra["scaninfo"] = [
            {"protocol": s.get("protocol", "tcp"), "services": s.get("services", "")}
            for s in b.scaninfo
        ]
    if b.runstats:
        extra["runstats"] = {
            k: _int(b.runstats.get(k)) for k in ("up", "down", "total") if k in b.runstats
        }
    return Report(
        id=report_id,
        hosts=tuple(b.hosts),
        targets=targets,
        profile=profile,
        source=source,
        started_at=_float(run.get("start")),
        finished_at=_float(b.finished.get("time")),
        nmap_version=run.get("version", ""),
        args=run.get("args", ""),
        complete=complete,
        note=note,
        created_at=time.time(),
        owner=owner,
        extra=extra,
    )
