"""The character encoding of an nmap XML file: read by expat as it is, transcoded, or refused.

expat itself reads UTF-8, UTF-16, ISO-8859-1 and US-ASCII. pyexpat passes any other declared name
to Python's codecs but only copes with single-byte ones: Shift_JIS or UTF-7 raise ValueError, an
unknown name LookupError, and UTF-32 is not recognised at all. So the declaration is read here
first, and every file ends as expat's own decode, a transcode to UTF-8, or a clear refusal.
"""

from __future__ import annotations

import codecs
import logging
import re

from scanner.errors import ImportRefused

log = logging.getLogger(__name__)

# Encodings expat decodes itself (names compared in lower case, as expat does).
_EXPAT_NATIVE = frozenset(("utf-8", "utf-16", "utf-16le", "utf-16be", "iso-8859-1", "us-ascii"))
# Python codecs that are not character sets. UTF-7 is among them on purpose: it spells "<" as
# "+ADw-", so markup can hide in what looks like plain ASCII.
_NOT_A_CHARSET = frozenset(("utf-7", "idna", "punycode", "unicode-escape", "raw-unicode-escape"))
_FIX = "convert it to UTF-8 (for example `iconv -f {name} -t UTF-8 scan.xml > scan-utf8.xml`)"
_FIX_ANY = "convert it to UTF-8 (for example with iconv)"

# Byte order marks and, without one, the first bytes of "<?xml" (XML 1.0, appendix F).
_UTF32_START = (
    (b"\x00\x00\xfe\xff", "utf-32-be", 4),
    (b"\xff\xfe\x00\x00", "utf-32-le", 4),
    (b"\x00\x00\x00<", "utf-32-be", 0),
    (b"<\x00\x00\x00", "utf-32-le", 0),
)
_UTF16_START = (b"\xfe\xff", b"\xff\xfe", b"\x00<\x00?", b"<\x00?\x00")
_UTF8_BOM = b"\xef\xbb\xbf"
_DECLARATION = re.compile(r"<\?xml\s[^>]*?\bencoding\s*=\s*(?:\"([^\"]*)\"|'([^']*)')")
# XML's EncName production, kept short: only such a name is ever quoted in a message.
_ENC_NAME = re.compile(r"[A-Za-z][A-Za-z0-9._-]{0,39}")
TRANSCODE_CHUNK = 1 << 20


def _declared(head: str) -> str | None:
    """The encoding named in the XML declaration at the start of ``head``, if any."""
    if not head.startswith("<?xml"):
        return None
    m = _DECLARATION.match(head)
    if m is None:
        return None
    name = m.group(1) if m.group(1) is not None else m.group(2)
    if not _ENC_NAME.fullmatch(name):
        raise ImportRefused(
            "The file's XML declaration names an encoding that is not a valid encoding name; "
            f"{_FIX_ANY} and import that. Nothing was imported."
        )
    return name


def _codec(name: str) -> str:
    """Python's codec for a declared name that expat cannot read, or ImportRefused."""
    try:
        info = codecs.lookup(name)
    except LookupError:
        info = None
    if info is None or not getattr(info, "_is_text_encoding", True):
        raise ImportRefused(
            f'The file declares the encoding "{name}", which is not a character encoding '
            f"ScanScribe knows; {_FIX_ANY} and import that. Nothing was imported."
        )
    if info.name in _NOT_A_CHARSET:
        raise ImportRefused(
            f'The file declares the encoding "{name}", which nmap never writes and which can '
            f"disguise markup as plain text, so it was refused; {_FIX.format(name=name)} and "
            "import that. Nothing was imported."
        )
    if "<?xml".encode(info.name, "replace") != b"<?xml":
        raise ImportRefused(
            f'The file declares the encoding "{name}" but is written in an 8-bit encoding; '
            f"{_FIX_ANY} and import that. Nothing was imported."
        )
    return info.name


def source_codec(data: bytes) -> str | None:
    """The codec to transcode ``data`` from, or None when expat reads it as it is.

    Raises ImportRefused, naming the encoding and what to do, for an unknown encoding, one that
    is not a character set (UTF-7 among them) or a declaration the bytes contradict.
    """
    for start, family, bom in _UTF32_START:
        if data.startswith(start):
            head = data[bom : bom + 512].decode(family, "replace")
            name = _declared(head)
            if name is not None and not (_codec_or_none(name) or "").startswith("utf-32"):
                raise ImportRefused(
                    f'The file declares the encoding "{name}" but is written in UTF-32; '
                    f"{_FIX_ANY} and import that. Nothing was imported."
                )
            return "utf-32" if bom else family
    if data.startswith(_UTF16_START):
        return None  # expat reads UTF-16 and checks its declaration itself
    head = data[len(_UTF8_BOM) if data.startswith(_UTF8_BOM) else 0 :][:1024].decode("latin-1")
    name = _declared(head)
    if name is None or name.lower() in _EXPAT_NATIVE:
        return None
    return _codec(name)


def _codec_or_none(name: str) -> str | None:
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def to_utf8(data: bytes, codec: str) -> bytes:
    """``data`` decoded from ``codec`` and encoded as UTF-8, a chunk at a time.

    Bytes that do not decode end the text there, as an invalid UTF-8 byte ends expat's parse:
    the hosts before that point can still be imported.
    """
    decoder = codecs.getincrementaldecoder(codec)("strict")
    out = bytearray()
    view = memoryview(data)
    for offset in range(0, len(data) + 1, TRANSCODE_CHUNK):
        chunk = bytes(view[offset : offset + TRANSCODE_CHUNK])
        final = offset + TRANSCODE_CHUNK >= len(data)
        state = decoder.getstate()
        try:
            out += decoder.decode(chunk, final).encode("utf-8")
        except UnicodeDecodeError as exc:
            decoder.setstate(state)
            good = max(0, exc.start - len(state[0]))
            out += decoder.decode(chunk[:good]).encode("utf-8")
            log.info("bytes at offset %d are not %s; the text ends there", offset + good, codec)
            break
        if final:
            break
    return bytes(out)
