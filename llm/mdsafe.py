"""Markdown escaping for untrusted model output, chunk by chunk.

Model output is attacker-influenced (scan data reaches the prompt), so what reaches markdown must
not become a link, an image, HTML, an entity or a Streamlit directive, while headings, lists and
emphasis still read well. The escaper is stateful because an autolink such as ``www.`` or
``https://`` can be split across two chunks of a stream.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

# Control characters a model may emit: shown as their visible symbols (ESC as U+241B "␛"), C1
# controls as U+FFFD, carriage returns dropped, so no terminal, mail reader or export ever acts
# on them. Tab and newline stay.
_CONTROLS: dict[int, int | None] = {
    c: 0x2400 + c for c in range(0x20) if c not in (0x09, 0x0A, 0x0D)
}
_CONTROLS |= {0x0D: None, 0x7F: 0x2421} | dict.fromkeys(range(0x80, 0xA0), 0xFFFD)


def visible_controls(text: str) -> str:
    """``text`` with every control character but tab and newline made visible (CR dropped)."""
    return text.translate(_CONTROLS)


# Escaped wherever they appear: link and image brackets, HTML and autolink angles, entities,
# code spans (which would show our backslashes), math, Streamlit's ``:directive[...]`` and
# emoji shortcodes, ``scheme:`` autolinks and ``user@host`` e-mail autolinks.
_ALWAYS = frozenset("\\`[]<>&$:@")
ZWSP = "\u200b"


class MarkdownEscaper:
    """Feed chunks, get markdown that renders them literally minus formatting risks."""

    def __init__(self) -> None:
        self._tail = ""  # the last raw characters seen, to spot autolinks across chunks

    def feed(self, chunk: str) -> str:
        """Escape one chunk, remembering what it ended with."""
        out: list[str] = []
        tail = self._tail
        for ch in chunk:
            low = tail.lower()
            if ch == ":" and low.endswith(("http", "https")):
                # GFM turns bare http(s):// and www. into links after escapes are resolved, so a
                # backslash is not enough: an invisible zero-width space breaks the pattern.
                out.append(ZWSP + "\\:")
            elif ch == "." and low[-3:] == "www":
                out.append(ZWSP + "\\.")
            elif ch == "@":
                out.append("\\@" + ZWSP)
            elif ch in _ALWAYS:
                out.append("\\" + ch)
            else:
                out.append(ch)
            tail = (tail + ch)[-5:]
        self._tail = tail
        return "".join(out)

    def wrap(self, chunks: Iterable[str]) -> Iterator[str]:
        """Escape a stream of chunks lazily."""
        for chunk in chunks:
            yield self.feed(chunk)


def escape_markdown(text: str) -> str:
    """Escape a whole text at once (same result as feeding it in any number of chunks)."""
    return MarkdownEscaper().feed(text)


def highlight(text: str, spans: Iterable[tuple[int, int]], style: str = "red-background") -> str:
    """Escaped markdown of ``text`` with the given character spans highlighted."""
    esc = MarkdownEscaper()
    out: list[str] = []
    pos = 0
    for start, end in sorted(set(spans)):
        if start < pos or end <= start:
            continue  # overlapping spans: the first one wins
        out.append(esc.feed(text[pos:start]))
        out.append(f":{style}[**{esc.feed(text[start:end])}**]")
        pos = end
    out.append(esc.feed(text[pos:]))
    return "".join(out)
