"""nmap XML in, Report out: a streaming, defused parse of nmap 5.x-7.x output.

The document is fed to expat in chunks and the frozen report objects are built as the elements
go by, so no element tree is ever held. The expat parser is defused the way
``defusedxml.ElementTree`` does it (entity declarations and external references raise
defusedxml's own exceptions), but the ``<!DOCTYPE nmaprun>`` that real nmap output carries is
allowed. Every refusal is an :class:`ImportRefused` whose message never quotes the file.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from typing import Any
from xml.parsers import expat

from defusedxml.common import EntitiesForbidden, ExternalReferenceForbidden

from scanner.errors import ImportRefused
from scanner.models import Host, OSMatch, Port, Report, Script, acyclic_build, make_port

log = logging.getLogger(__name__)

MAX_IMPORT_BYTES = 256 * 1024 * 1024
CHUNK_BYTES = 1 << 20

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


def _doctype(name: str, sysid: str | None, pubid: str | None, has_internal_subset: bool) -> None:
    # nmap writes a bare <!DOCTYPE nmaprun>; a DTD fetched from elsewhere is an external reference.
    if sysid or pubid:
        raise ExternalReferenceForbidden(name, None, sysid, pubid)


class _NotNmap(Exception):
    """The root element is not ``nmaprun``."""


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


class _Builder:
    """Expat start-element callbacks that build hosts and ports as nmap's elements go by.

    Only start tags are handled (half the Python calls of start+end): a port ends when an element
    that cannot be inside a port starts, a host ends when a top-level element starts. Repeated
    values ("open", "tcp", "syn-ack", "http") are interned, so a big report holds one copy. The
    per-element path is a closure over local cells, the cheapest state Python offers, because it
    runs once for every element of files with hundreds of thousands of them.
    """

    def __init__(self, parser: Any) -> None:
        self.parser = parser
        self.hosts: list[Host] = []
        self.run: Attrs = {}
        self.finished: Attrs = {}
        self.runstats: Attrs = {}
        self.scaninfo: list[Attrs] = []
        self.seen_root = False
        self.host_offset = -1
        self.start, self.finish, self.drop_open_host = self._make()

    def root(self, name: str, attrs: Attrs) -> None:
        """The first element: it must be <nmaprun>; later elements go to ``start``."""
        if name != "nmaprun":
            raise _NotNmap
        self.seen_root = True
        self.run = attrs
        self.parser.StartElementHandler = self.start

    def _make(
        self,
    ) -> tuple[Callable[[str, Attrs], None], Callable[[], None], Callable[[], None]]:
        parser = self.parser
        hosts = self.hosts
        intern = _intern
        port_children = _PORT_CHILDREN
        after_host = _AFTER_HOST
        host: dict[str, Any] | None = None
        host_ports: list[Port] = []
        pa: Attrs | None = None
        st: Attrs | None = None
        sv: Attrs | None = None
        cpes: list[str] = []
        scripts: list[Script] = []
        text: list[str] | None = None

        def end_cpe() -> None:
            nonlocal text
            parser.CharacterDataHandler = None
            value = "".join(text or ()).strip()
            text = None
            if value and pa is not None:
                cpes.append(intern(value))

        def end_port() -> None:
            nonlocal pa, st, sv, cpes, scripts
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
                )
            )
            pa = st = sv = None
            if cpes:
                cpes = []
            if scripts:
                scripts = []

        def end_host() -> None:
            nonlocal host, host_ports
            if pa is not None:
                end_port()
            h = host
            host = None
            if h is None:
                return
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

        def start(name: str, attrs: Attrs) -> None:
            nonlocal host, pa, st, sv, text
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
                    parser.CharacterDataHandler = text.append
                    return
                if name == "script":
                    scripts.append(Script(intern(attrs.get("id", "")), attrs.get("output", "")))
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
                    end_host()
                if name == "host":
                    self.host_offset = parser.CurrentByteIndex
                    host = {
                        "address": "",
                        "addrtype": "ipv4",
                        "status": "unknown",
                        "reason": "",
                        "hostnames": [],
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
                    host["hostnames"].append(hostname)
            elif name == "osmatch":
                host["os"].append(
                    OSMatch(intern(attrs.get("name", "")), _int(attrs.get("accuracy")))
                )
            elif name == "script":
                host["scripts"].append(Script(intern(attrs.get("id", "")), attrs.get("output", "")))

        def finish() -> None:
            """The document ended: close whatever host is still open."""
            if text is not None:
                end_cpe()
            if host is not None:
                end_host()

        def drop_open_host() -> None:
            """The document broke inside a host: forget it and its half-read port."""
            nonlocal host, host_ports, pa, text
            parser.CharacterDataHandler = None
            text = None
            pa = None
            host = None
            host_ports = []

        return start, finish, drop_open_host


def _new_parser() -> tuple[Any, _Builder]:
    parser = expat.ParserCreate()
    # The same defusing as defusedxml.ElementTree: no entity declarations, no external
    # references. The DOCTYPE itself is allowed because every nmap XML file carries one.
    parser.EntityDeclHandler = _forbid_entity
    parser.UnparsedEntityDeclHandler = _forbid_unparsed_entity
    parser.ExternalEntityRefHandler = _forbid_external
    parser.StartDoctypeDeclHandler = _doctype
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    builder = _Builder(parser)
    parser.StartElementHandler = builder.root
    return parser, builder


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
    parser, b = _new_parser()
    complete = True
    note = ""
    try:
        view = memoryview(data)
        for offset in range(0, len(data), CHUNK_BYTES):
            parser.Parse(bytes(view[offset : offset + CHUNK_BYTES]), False)
        parser.Parse(b"", True)
        b.finish()
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
