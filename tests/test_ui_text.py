"""Labels and messages built from untrusted text render literally: no link, image or markup."""

from __future__ import annotations

import re

import ui
from llm.mdsafe import ZWSP
from tests.rendered import shown

HOSTILE = "www.evil.example [x](javascript:alert(1)) ![b](http://10.9.9.9/b.png) <b>hi</b> a@b.io"


def test_labels_break_every_autolink_and_link() -> None:
    out = ui.escape_md(HOSTILE)
    assert f"www{ZWSP}\\.evil" in out  # a bare www. would become a link
    assert f"http{ZWSP}\\://" in out
    assert f"\\@{ZWSP}" in out  # an e-mail autolink
    assert re.search(r"(?<!\\)[\[\]<>`]", out) is None
    assert re.search(r"(?<!\\)!", out) is None  # no image
    assert shown(out) == HOSTILE  # the reader still sees every character
    # Formatting characters read literally too.
    assert ui.escape_md("**bold** _x_ # h") == "\\*\\*bold\\*\\* \\_x\\_ \\# h"


def test_messages_keep_their_commands_as_code_and_escape_the_rest() -> None:
    msg = "Model [x](http://evil) is missing: run `ollama pull a:b` then retry."
    out = ui.escape_md_keep_code(msg)
    assert "`ollama pull a:b`" in out and shown(out) == msg
    assert "\\[x\\]" in out and f"http{ZWSP}\\://" in out
    # An unpaired backtick gives no code span at all: everything is escaped.
    assert ui.escape_md_keep_code("a ` [x](y)") == ui.escape_md("a ` [x](y)")
