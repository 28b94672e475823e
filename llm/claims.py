"""Find the hosts, networks, ports, scanned ranges and CVE ids that a piece of prose names.

Pure text work, no scan data beyond a few hints (known single-label names, targets written as
ranges, the services' version strings and product words): :mod:`llm.factcheck` decides which
mentions the scan supports.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Collection, Iterator
from dataclasses import dataclass


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Hyphen, non-breaking hyphen, figure dash, en dash, em dash, minus sign, small and full-width
# hyphen-minus: typesetting and language models put any of them inside a CVE id.
_DASHES = "\\-\u2010\u2011\u2012\u2013\u2014\u2212\ufe63\uff0d"
CVE = re.compile(rf"\bCVE[{_DASHES}](\d{{4}})[{_DASHES}](\d{{4,7}})\b", re.IGNORECASE)

_IPV4 = re.compile(
    r"(?<![\w.])((?:\d{1,3}\.){3}\d{1,3})(?!\w|\.\d)"
    r"(?:/(\d{1,2})(?![\w/]|\.\d)|:(\d{1,5})(?![\w:]|\.\d))?"
)
_HEX6 = r"(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}"
_IPV6_BRACKET = re.compile(rf"\[({_HEX6})\](?::(\d{{1,5}})(?![\w:]|\.\d))?")
_IPV6 = re.compile(rf"(?<![\w:.\[])({_HEX6})(?![\w:])(?:/(\d{{1,3}})(?![\w/]))?")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
# A name right after "scheme://" is a URL's host; after any other "/" it is part of a path.
_HOSTNAME = re.compile(
    rf"(?:(?<=://)|(?<![\w@.\-/]))((?:{_LABEL}\.)+[A-Za-z][A-Za-z0-9-]{{0,61}}[A-Za-z0-9])"
    r"(?![\w-]|\.[A-Za-z0-9])(?::(\d{1,5})(?![\w:]|\.\d))?"
)
_SINGLE = r"[A-Za-z][A-Za-z0-9-]{0,62}"
# A single-label name is only a host claim where the prose says it is one.
_NAMED_HOST = re.compile(
    rf"\b(?:host(?:name)?|server|machine|workstation|node|named|called)\s+({_SINGLE})"
    r"(?![\w-]|\.[A-Za-z0-9])",
    re.IGNORECASE,
)
# A word that could be a single-label host name: not part of a dotted name or a hyphenated word.
_WORD_TOKEN = re.compile(r"(?<![\w.-])[A-Za-z0-9][\w-]*(?![\w-]|\.\w)")
_PAREN_NAME_AFTER = re.compile(rf"\s*\(\s*({_SINGLE})\s*[),]")
_PAREN_NAME_BEFORE = re.compile(rf"(?<![\w.-])({_SINGLE})\s*\(\s*$")
# Tokens with a digit that are technology names, not host names.
_TECH_TOKEN = re.compile(
    r"(?:(?:ipv|tlsv|sslv|smbv|snmpv|sshv|nfsv|http/?|v)\d[\w.]*|x86|x64|win(?:32|64)|sha\d+|md5|"
    r"pop3|imap4|utf-?8|3des|aes\d+|rc4|log4j|base64|s3|ec2|l[234]|p2p|k8s|h2|mp[34])",
    re.IGNORECASE,
)
# Dotted words that are not host names: file types and product names a summary may mention.
_NOT_HOSTS = _words(
    "html htm php asp aspx jsp js css txt pdf xml json yaml yml conf cfg ini log sh py exe "
    "dll so bin zip gz tar md csv nse db sql bak old key pem crt cer"
)
_PRODUCTS = frozenset({"asp.net", "node.js", "vue.js", "next.js", "socket.io", "express.js"})

_N = r"\d{1,5}(?!\d|\.\d)"
_TO = r"(?:\s*[\-\u2010-\u2013]\s*|\s+(?:to|through|thru)\s+)"
_ITEM = re.compile(rf"({_N})(?:{_TO}({_N}))?")
_SEP = r"(?:\s*,\s*(?:and\s+|or\s+)?|\s+and\s+|\s+or\s+|\s*&\s*|\s*/\s*)"
_PORT_WORDS = re.compile(
    r"\b(?:(tcp|udp|sctp)\s+)?ports?\s*(?:numbers?\s*|ranges?\s*)?[:#]?\s*"
    rf"({_N}(?:{_TO}{_N})?(?:{_SEP}{_N}(?:{_TO}{_N})?\b(?!/))*)",
    re.IGNORECASE,
)
_PORT_PROTO = re.compile(
    rf"\b(\d{{1,5}})(?:{_TO}(\d{{1,5}}))?/(tcp|udp|sctp)\b(?!/)", re.IGNORECASE
)
_PROTO_PORT = re.compile(
    rf"\b(tcp|udp|sctp)/(\d{{1,5}})(?:{_TO}(\d{{1,5}}))?(?!\d|\.\d)", re.IGNORECASE
)
# "ports 1-1024 were scanned", "the scan covered ports 1-1024": what the scan asked for, not
# what it found.
_SCAN_BEFORE = re.compile(
    r"(?:scann(?:ed|ing)|prob(?:ed|ing)|cover(?:ed|ing|s)?|swept|sweep(?:ing)?(?:\s+of)?|"
    r"checked|checking|scans?\s+(?:of|on|over|across|covering)|range(?:\s+of)?)"
    r"\s+(?:all\s+|the\s+)*(?:(?:tcp|udp|sctp)\s+)?(?:ports?\s+)?(?:ranges?\s+)?$"
    r"|\bscan\s*\(\s*$",
    re.IGNORECASE,
)
_SCAN_AFTER = re.compile(
    r"\s*(?:(?:on|of|across|at|for)\s+(?:[^\s;,]+\s+){1,3}?)?"
    r"(?:(?:were|was|are|is|have\s+been|has\s+been|got|being)\s+)?(?:all\s+|fully\s+)?"
    r"(?:scanned|probed|covered|swept|checked|in\s+scope)\b",
    re.IGNORECASE,
)
_CLAUSE_END = re.compile(
    r"[.!?](?=\s|$)|[;\n]|(?<![\s,]),?\s+(?:while|whereas|but|although|though|however)\b",
    re.IGNORECASE,
)
_TIE_LINK = re.compile(
    r"\s*\)?\s*(?:\([^()]*\)\s*)?,?\s*"
    r"(?:(?:is|are|was|were|remains?|stays?)\s+(?:also\s+|only\s+|still\s+)?)?"
    r"(?:(?:open|closed|filtered|unfiltered|listening|exposed|reachable|answering|running|served|"
    r"available|enabled|reported|found)\s+)?(?:only\s+)?(?:on|at|of|for|from|by|via)\s+"
    r"(?:the\s+)?(?:(?:host|server|machine|address)\s+)?",
    re.IGNORECASE,
)
_JOINED = re.compile(
    r"[\s,()&]*(?:(?:and|or|as\s+well\s+as|plus)[\s,()]*)?(?:(?:the\s+)?(?:hosts?|servers?)\s+)?",
    re.IGNORECASE,
)
_VERSION_WORDS = _words(
    "version versions ver v build release firmware revision rev runtime jdk jre"
)
# Nouns that introduce an address, never a product whose version follows.
_HOST_NOUNS = _words(
    "host hosts server servers address addresses ip ipv4 target targets node nodes machine "
    "machines device devices system systems gateway router firewall box vm instance peer "
    "client dmz lan wan vlan subnet network range scope"
)
_WORD_BEFORE = re.compile(r"([A-Za-z][\w+-]*)[ \t]+$")
# "upgrade the runtime to 11.0.20.1", "from 11.0.12.7 to 11.0.20.1": the target of a change.
_CHANGE_TO = re.compile(
    r"(?:\b(?:upgrad|updat|patch|bump)\w*\s+(?:[\w.-]+\s+){0,6}?|\bfrom\s+\d+(?:\.\d+)+\s+)"
    r"to\s+$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Mention:
    """One thing the prose names, where, and for a port where its list ends."""

    kind: str  # "cve", "host", "network", "pair", "port" or "scanned"
    value: str
    span: tuple[int, int]
    group_end: int = 0
    protocol: str = ""


def cve_id(m: re.Match[str]) -> str:
    """The CVE id of a :data:`CVE` match, written with ASCII hyphens."""
    return f"CVE-{m.group(1)}-{m.group(2)}"


def ipv4_address(text: str) -> str | None:
    """A dotted quad read the way a person reads it, zero-padded octets included (010 is 10)."""
    parts = text.split(".")
    if len(parts) != 4 or not all(p.isdigit() and len(p) <= 3 for p in parts):
        return None
    octets = [int(p) for p in parts]
    if any(o > 255 for o in octets):
        return None
    return ".".join(map(str, octets))


def clause_bounds(text: str) -> list[int]:
    """Where each clause of ``text`` ends: ports and hosts are tied within one clause."""
    return [m.end() for m in _CLAUSE_END.finditer(text)]


def tie_link(between: str) -> bool:
    """True when the words after a port lead to a host: "22/tcp is open on 10.0.0.5"."""
    return _TIE_LINK.fullmatch(between) is not None


def separator(between: str) -> str | None:
    """How two host mentions are joined into one list, or None when they are not.

    "and" (also "or", "&", "as well as"), "paren" for "10.0.0.5 (web01)", "comma" for a bare
    comma, which only continues a list that an "and" closes.
    """
    if _JOINED.fullmatch(between) is None:
        return None
    if re.search(r"\b(?:and|or|plus|as\s+well\s+as)\b|&", between, re.IGNORECASE):
        return "and"
    return "paren" if "(" in between or ")" in between else "comma"


def _is_version(
    text: str, start: int, quad: str, versions: Collection[str], products: Collection[str]
) -> bool:
    """True when a dotted quad is a version number ("OpenJDK 11.0.12.7"), not an address."""
    if quad in versions:
        return True
    before = text[max(0, start - 80) : start]
    if _CHANGE_TO.search(before):
        return True
    m = _WORD_BEFORE.search(before)
    if m is None:
        return False
    word = m.group(1)
    lower = word.lower()
    if lower in _VERSION_WORDS or lower in products:
        return True
    if lower in _HOST_NOUNS or word.islower() or word.isupper():
        return False
    if any(c.isupper() for c in word[1:]):
        return True  # OpenJDK, ESXi, FortiOS: a product name even at the start of a sentence
    # A capitalised word in mid-sentence ("runs Java 11.0.12.7") names a product; at the start
    # of a sentence it is just the first word ("Only 10.0.0.5 ...").
    rest = before[: m.start()].rstrip()
    return bool(rest) and rest[-1] not in ".!?:;\n"


def _scan_context(text: str, start: int, end: int) -> bool:
    """True when the ports between ``start`` and ``end`` are said to be scanned, not found."""
    return bool(
        _SCAN_BEFORE.search(text[max(0, start - 60) : start])
        or _SCAN_AFTER.match(text, end, min(len(text), end + 60))
    )


class _Finder:
    """Mentions found so far, and the characters they take so later patterns skip them."""

    def __init__(self, size: int) -> None:
        self.taken = bytearray(size)
        self.found: list[Mention] = []

    def free(self, a: int, b: int) -> bool:
        return not any(self.taken[a:b])

    def take(self, span: tuple[int, int]) -> None:
        a, b = span
        self.taken[a:b] = b"\x01" * (b - a)

    def add(self, mention: Mention, take: tuple[int, int] | None = None) -> None:
        self.take(take or mention.span)
        self.found.append(mention)

    def host(self, value: str, span: tuple[int, int], port: str | None, whole: int) -> None:
        """A host, and the host:port pair when a port is written after it."""
        self.add(Mention("host", value, span), (span[0], whole))
        if port is not None:
            label = f"[{value}]" if ":" in value else value
            self.found.append(Mention("pair", f"{label}:{int(port)}", (span[0], whole)))


def _ports(text: str, f: _Finder) -> None:
    """Port numbers: 22/tcp, tcp/22, "ports 22, 80 and 8000-8100", ranges by both ends."""

    def emit(
        items: list[tuple[re.Match[str], int]], start: int, end: int, proto: str, ranged: bool
    ) -> None:
        scanned = ranged or _scan_context(text, start, end)
        for m, base in items:
            lo, hi = m.group(1), m.group(2)
            if scanned:
                value = str(int(lo)) if hi is None else f"{int(lo)}-{int(hi)}"
                f.found.append(
                    Mention("scanned", value, (base + m.start(), base + m.end()), end, proto)
                )
                continue
            for g in (1, 2) if hi is not None else (1,):
                span = (base + m.start(g), base + m.end(g))
                f.found.append(Mention("port", str(int(m.group(g))), span, end, proto))

    for rx, proto_group, first in ((_PORT_PROTO, 3, 1), (_PROTO_PORT, 1, 2)):
        for m in rx.finditer(text):
            if not f.free(*m.span()):
                continue
            f.take(m.span())
            item = _ITEM.match(
                text, m.start(first), m.end(first + 1) if m.group(first + 1) else m.end(first)
            )
            if item is not None:
                emit([(item, 0)], m.start(), m.end(), m.group(proto_group).lower(), False)
    for m in _PORT_WORDS.finditer(text):
        base = m.start(2)
        items = [
            (i, base)
            for i in _ITEM.finditer(m.group(2))
            if f.free(base + i.start(), base + i.end())
        ]
        # "the port range 1-1024" names what the scan covered, whatever the verb.
        ranged = "range" in m.group(0).lower()
        emit(items, m.start(), m.end(), (m.group(1) or "").lower(), ranged)


def mentions(
    text: str,
    names: Collection[str] = (),
    ranges: Collection[str] = (),
    versions: Collection[str] = (),
    products: Collection[str] = (),
) -> Iterator[Mention]:
    """Every host, network, host:port pair, port, scanned range and CVE id ``text`` names.

    ``names`` are single-label host names known to the scan (matched as words), ``ranges`` the
    targets written as address ranges, ``versions`` and ``products`` the services' version strings
    and product words (a dotted quad after them is a version, not an address).
    """
    f = _Finder(len(text))
    for m in CVE.finditer(text):
        f.add(Mention("cve", cve_id(m), m.span()))
    for target in ranges:
        for m in re.finditer(rf"(?<![\w.]){re.escape(target)}(?![\w.-])", text):
            if f.free(*m.span()):
                f.add(Mention("host", target.lower(), m.span()))
    for m in _IPV6_BRACKET.finditer(text):
        address = _v6(m.group(1))
        if address is not None and f.free(*m.span()):
            f.host(address, m.span(1), m.group(2), m.end())
    for m in _IPV4.finditer(text):
        address = ipv4_address(m.group(1))
        if address is None or not f.free(*m.span()):
            continue
        if m.group(2) is not None:
            if int(m.group(2)) <= 32:
                net = ipaddress.ip_network(f"{address}/{m.group(2)}", strict=False)
                f.add(Mention("network", str(net), m.span()))
        elif _is_version(text, m.start(), m.group(1), versions, products):
            f.take(m.span())
        else:
            f.host(address, m.span(1), m.group(3), m.end())
    for m in _IPV6.finditer(text):
        address = _v6(m.group(1))
        if address is None or not f.free(*m.span(1)):
            continue
        if m.group(2) is not None:
            try:
                net = ipaddress.ip_network(f"{address}/{m.group(2)}", strict=False)
            except ValueError:
                continue
            f.add(Mention("network", str(net), m.span()))
        else:
            f.add(Mention("host", address, m.span(1)))
    for m in _HOSTNAME.finditer(text):
        raw = m.group(1)
        labels = raw.split(".")
        last = labels[-1]
        # "ended.Next" is a missing space after a full stop, not a host name.
        joined_sentence = len(labels) == 2 and labels[0].isalpha() and last.istitle()
        if (
            last.lower() in _NOT_HOSTS
            or raw.lower() in _PRODUCTS
            or joined_sentence
            or not f.free(*m.span(1))
        ):
            continue
        f.host(raw.lower(), m.span(1), m.group(2), m.end())
    _single_label_names(text, f, names)
    _ports(text, f)
    yield from sorted(f.found, key=lambda x: x.span)


def _v6(text: str) -> str | None:
    if not any(c.isalnum() for c in text):
        return None
    try:
        return ipaddress.IPv6Address(text).compressed
    except ValueError:
        return None


def _single_label_names(text: str, f: _Finder, names: Collection[str]) -> None:
    """Known single-label names as words; others where the prose calls them a host."""
    known = {n.lower() for n in names}
    if known:
        for m in _WORD_TOKEN.finditer(text):
            name = m.group(0).lower()
            if name in known and f.free(*m.span()):
                f.add(Mention("host", name, m.span()))
    candidates = list(_NAMED_HOST.finditer(text))
    for h in [x for x in f.found if x.kind == "host" and ":" not in x.value]:
        after = _PAREN_NAME_AFTER.match(text, h.span[1])
        before = _PAREN_NAME_BEFORE.search(text, max(0, h.span[0] - 80), h.span[0])
        candidates += [m for m in (after, before) if m is not None]
    for m in candidates:
        name = m.group(1)
        if (
            any(c.isdigit() for c in name)
            and not _TECH_TOKEN.fullmatch(name)
            and f.free(*m.span(1))
        ):
            f.add(Mention("host", name.lower(), m.span(1)))
