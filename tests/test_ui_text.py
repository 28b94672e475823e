"""Labels and messages built from untrusted text render literally: no link, image or markup."""

from __future__ import annotations

import re

import ui
from llm.errors import LLMUnavailable
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
    assert "`ollama pull a:b`" in out
    # The address is a code span: never a link, and it copies without an invisible character.
    assert "\\[x\\]" in out and "`http://evil`" in out and ZWSP not in out
    assert shown(out).replace("`", "") == msg.replace("`", "")
    # An unpaired backtick gives no code span at all: everything is escaped.
    assert ui.escape_md_keep_code("a ` [x](y)") == ui.escape_md("a ` [x](y)")


def test_an_ollama_address_in_an_error_copies_exactly() -> None:
    out = ui.escape_md_keep_code(str(LLMUnavailable("http://127.0.0.1:11434")))
    assert "`http://127.0.0.1:11434`" in out and ZWSP not in out
    assert "`ollama serve`" in out
    # A name after the address keeps its escaping; the sentence's full stop stays outside.
    out = ui.escape_md_keep_code("Not answering at https://x.example/api. Set OLLAMA_HOST.")
    assert "`https://x.example/api`." in out and "OLLAMA\\_HOST" in out
