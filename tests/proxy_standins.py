"""Stand-ins that log where a scan asks them to go: HTTP proxy, SOCKS4/5 proxy, FTP, DNS.

They answer just enough of each protocol for nmap's scripts to state a destination, log it and
refuse: none of them ever opens a connection anywhere. Run each role inside a test namespace:

    python -m tests.proxy_standins services LOG ADDRESS         # HTTP 3128, SOCKS 1080, FTP 21
    python -m tests.proxy_standins resolver LOG ADDRESS ANSWER  # DNS on 53/udp, every A is ANSWER

LOG gets one JSON object per line: ``{"ready": ...}`` once every port listens, then one
``{"service", "destination", "line"}`` per request, where destination is the host asked for
(``None`` when the request names none).
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import re
import signal
import socket
import socketserver
import struct
import sys
import threading
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

HTTP_PORT, SOCKS_PORT, FTP_PORT, DNS_PORT = 3128, 1080, 21, 53
HEAD_LIMIT = 16 * 1024
# Banners nmap's version detection knows, so that it stops probing early.
SERVER = b"Server: squid/5.7\r\n"
FTP_BANNER = "220 (vsFTPd 3.0.3)"


class Log:
    """Appends JSON lines to a file, one writer at a time."""

    def __init__(self, path: Path) -> None:
        self._file = path.open("a", encoding="utf-8")
        self._lock = threading.Lock()

    def write(self, **entry: Any) -> None:
        with self._lock:
            self._file.write(json.dumps(entry) + "\n")
            self._file.flush()


def host_of(authority: str) -> str | None:
    """The host part of ``host``, ``host:port`` or ``[v6]:port``; None when empty."""
    authority = authority.strip()
    if authority.startswith("["):
        return authority[1:].split("]", 1)[0] or None
    if authority.count(":") == 1:
        authority = authority.split(":", 1)[0]
    return authority or None


def _text(raw: bytes) -> str:
    return raw.decode("latin-1").rstrip("\r\n")[:300]


class _Handler(socketserver.StreamRequestHandler):
    timeout = 5  # nmap's version probes may send half a request and wait
    log: ClassVar[Log]

    def handle(self) -> None:
        # Probes reset connections and send garbage on purpose.
        with contextlib.suppress(OSError, ValueError, struct.error):
            self.converse()

    def converse(self) -> None:
        raise NotImplementedError


class HttpProxy(_Handler):
    """Reads one request head, logs the host it names (CONNECT, absolute URI or Host), says 403."""

    def converse(self) -> None:
        first = self.rfile.readline(HEAD_LIMIT)
        if not first:
            return
        if not re.match(rb"[A-Z]+ \S+ HTTP/\d", first):
            # Not HTTP (a version probe): answer at once, as a proxy would, without waiting.
            self.log.write(service="http-proxy", destination=None, line=_text(first), host=None)
            self.wfile.write(b"HTTP/1.0 400 Bad Request\r\n" + SERVER + b"\r\n")
            return
        host_header = None
        for _ in range(100):
            line = self.rfile.readline(HEAD_LIMIT)
            if line in (b"", b"\r\n", b"\n"):
                break
            name, _sep, value = _text(line).partition(":")
            if name.strip().lower() == "host":
                host_header = value.strip()
        parts = _text(first).split()
        target = None
        if len(parts) >= 2 and parts[0].upper() == "CONNECT":
            target = parts[1]
        elif len(parts) >= 2 and "://" in parts[1]:
            target = urlsplit(parts[1]).netloc
        target = target or host_header
        self.log.write(
            service="http-proxy",
            destination=host_of(target) if target else None,
            line=_text(first),
            host=host_header,
        )
        self.wfile.write(b"HTTP/1.0 403 Forbidden\r\n" + SERVER + b"Content-Length: 0\r\n\r\n")


class SocksProxy(_Handler):
    """Reads a SOCKS4/4a or SOCKS5 request, logs its destination, refuses it."""

    def converse(self) -> None:
        version = self.rfile.read(1)
        if version == b"\x04":
            self._socks4()
        elif version == b"\x05":
            self._socks5()
        elif version:
            self.log.write(service="socks", destination=None, line=_text(version))

    def _until_nul(self) -> bytes:
        out = b""
        while len(out) < 256 and (byte := self.rfile.read(1)) not in (b"", b"\0"):
            out += byte
        return out

    def _socks4(self) -> None:
        _cmd, port, raw_ip = struct.unpack("!BH4s", self.rfile.read(7))
        self._until_nul()  # the user id
        ip = ipaddress.IPv4Address(raw_ip)
        # SOCKS4a: 0.0.0.x (x > 0) means the name follows the user id.
        dest = _text(self._until_nul()) if str(ip).startswith("0.0.0.") else str(ip)
        self.log.write(service="socks", destination=dest, line=f"SOCKS4 {dest}:{port}")
        self.wfile.write(b"\x00\x5b" + bytes(6))  # request rejected

    def _socks5(self) -> None:
        (count,) = struct.unpack("!B", self.rfile.read(1))
        self.rfile.read(count)
        self.wfile.write(b"\x05\x00")  # no authentication: the client goes on to name its target
        _ver, _cmd, _rsv, kind = struct.unpack("!BBBB", self.rfile.read(4))
        if kind == 1:
            dest = str(ipaddress.IPv4Address(self.rfile.read(4)))
        elif kind == 4:
            dest = str(ipaddress.IPv6Address(self.rfile.read(16)))
        else:
            (length,) = struct.unpack("!B", self.rfile.read(1))
            dest = _text(self.rfile.read(length))
        (port,) = struct.unpack("!H", self.rfile.read(2))
        self.log.write(service="socks", destination=dest, line=f"SOCKS5 {dest}:{port}")
        self.wfile.write(b"\x05\x02\x00\x01" + bytes(6))  # not allowed by ruleset


class FtpServer(_Handler):
    """Lets anyone log in, logs each command (and where PORT and EPRT point), refuses data."""

    def converse(self) -> None:
        self.log.write(service="ftp", destination=None, line="(connected)")
        self._reply(FTP_BANNER)
        for _ in range(50):
            line = _text(self.rfile.readline(HEAD_LIMIT))
            if not line:
                return
            verb, _sep, arg = line.partition(" ")
            verb = verb.upper()
            dest = _data_host(verb, arg) if verb in ("PORT", "EPRT") else None
            self.log.write(service="ftp", destination=dest, line=line)
            if verb in ("PORT", "EPRT"):
                self._reply("500 data connections refused")
            elif verb == "USER":
                self._reply("331 password please")
            elif verb == "PASS":
                self._reply("230 logged in")
            elif verb == "QUIT":
                self._reply("221 bye")
                return
            else:
                self._reply("502 not implemented")

    def _reply(self, text: str) -> None:
        self.wfile.write(text.encode() + b"\r\n")


def _data_host(verb: str, arg: str) -> str | None:
    """The host of ``PORT h1,h2,h3,h4,p1,p2`` or ``EPRT |1|host|port|``."""
    if verb == "PORT":
        fields = arg.strip().split(",")
        return ".".join(fields[:4]) if len(fields) == 6 else None
    fields = arg.strip().split(arg.strip()[:1] or "|")
    return fields[2] if len(fields) > 3 else None


class Resolver(socketserver.BaseRequestHandler):
    """Answers every DNS question; an A record is always the configured decoy address."""

    log: ClassVar[Log]
    answer: ClassVar[bytes]

    def handle(self) -> None:
        data, sock = self.request
        try:
            name, end = _question(data)
        except (IndexError, ValueError):
            return
        (qtype,) = struct.unpack("!H", data[end - 4 : end - 2])
        self.log.write(service="dns", destination=name, line=f"query {name} type {qtype}")
        records = b""
        if qtype == 1:
            records = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + self.answer
        header = data[:2] + struct.pack("!HHHHH", 0x8180, 1, 1 if records else 0, 0, 0)
        sock.sendto(header + data[12:end] + records, self.client_address)


def _question(data: bytes) -> tuple[str, int]:
    """The name asked for and where the question section ends."""
    labels, at = [], 12
    while data[at]:
        length = data[at]
        labels.append(data[at + 1 : at + 1 + length].decode("ascii"))
        at += 1 + length
    if at + 5 > len(data):
        raise ValueError("short question")
    return ".".join(labels), at + 5


class _TCPServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass


class _UDPServer(socketserver.ThreadingUDPServer):
    daemon_threads = True


def _serve(servers: list[socketserver.BaseServer]) -> None:
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()


def main(argv: list[str]) -> None:
    """Start one role and serve until SIGTERM."""
    role, log_path, address = argv[:3]
    log = Log(Path(log_path))
    _Handler.log = log
    Resolver.log = log
    servers: list[socketserver.BaseServer]
    if role == "services":
        servers = [
            _TCPServer((address, port), handler)
            for port, handler in (
                (HTTP_PORT, HttpProxy),
                (SOCKS_PORT, SocksProxy),
                (FTP_PORT, FtpServer),
            )
        ]
    elif role == "resolver":
        Resolver.answer = socket.inet_aton(argv[3])
        servers = [_UDPServer((address, DNS_PORT), Resolver)]
    else:
        raise SystemExit(f"unknown role {role!r}: use services or resolver")
    _serve(servers)
    log.write(ready=role)
    signal.sigwait({signal.SIGTERM, signal.SIGINT})


if __name__ == "__main__":
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    main(sys.argv[1:])
