"""Model output reaches markdown escaped: no links, images, HTML or directives, even mid-stream."""

from __future__ import annotations

import random
import re

from llm.mdsafe import MarkdownEscaper, escape_markdown, highlight

HOSTILE = (
    "## Findings\n- **Telnet** is open on 10.0.0.5\n"
    "[click me](javascript:alert(1)) ![beacon](https://evil.example/p.png) "
    "<script>alert(1)</script> <https://evil.example> https://evil.example/x "
    "WWW.evil.example admin@evil.example &lt;b&gt; :red[alert] :material/home: $x^2$ `code`"
)

# Unescaped characters that would open a link, image, HTML, entity, code span or directive.
LIVE = re.compile(r"(?<!\\)[\[\]<>&`$:@]")


def _unescaped_specials(md: str) -> list[str]:
    # Drop escaped pairs first so that "\\\\[" (an escaped backslash, then "[") is seen as live.
    return LIVE.findall(re.sub(r"\\.", "", md))


def _autolinks(md: str) -> list[str]:
    """What GFM would still autolink once the escapes are resolved (it works on the text)."""
    text = re.sub(r"\\(.)", r"\1", md)
    return re.findall(r"https?://|www\.|[\w.+-]@[\w-]", text, re.IGNORECASE)


def test_links_images_html_entities_and_directives_are_neutralised() -> None:
    md = escape_markdown(HOSTILE)
    assert _unescaped_specials(md) == []
    assert _autolinks(md) == []
    # What the reader sees is unchanged: the added characters are escapes and zero-width spaces.
    assert re.sub(r"\\(.)", r"\1", md).replace("\u200b", "") == HOSTILE
    # Formatting that cannot carry a link survives, so the summary still reads well.
    assert md.startswith("## Findings\n- **Telnet** is open on 10.0.0.5")


def test_backslashes_in_the_text_cannot_unescape_anything() -> None:
    md = escape_markdown("\\[x](http://e)")
    assert md == "\\\\\\[x\\](http\u200b\\://e)"
    assert _unescaped_specials(md) == []


def test_any_split_into_chunks_escapes_like_the_whole_text() -> None:
    rng = random.Random(7)
    whole = escape_markdown(HOSTILE)
    for _ in range(200):
        cuts = sorted(rng.sample(range(1, len(HOSTILE)), rng.randint(1, 40)))
        pieces = [HOSTILE[a:b] for a, b in zip([0, *cuts], [*cuts, len(HOSTILE)], strict=True)]
        assert "".join(MarkdownEscaper().wrap(pieces)) == whole


def test_www_split_across_chunks_is_still_escaped() -> None:
    esc = MarkdownEscaper()
    out = esc.feed("see ww") + esc.feed("w") + esc.feed(".evil.example")
    assert _autolinks(out) == []
    esc = MarkdownEscaper()
    out = esc.feed("go to htt") + esc.feed("ps") + esc.feed("://evil.example")
    assert _autolinks(out) == []


def test_highlight_marks_spans_and_escapes_everything_else() -> None:
    text = "Host 10.0.0.99 [x](http://a) is new"
    md = highlight(text, [(5, 14)])
    assert md.startswith("Host :red-background[**10.0.0.99**] \\[x\\](http\u200b\\://a)")
    assert highlight("a]b", [(0, 3)]) == ":red-background[**a\\]b**]"
