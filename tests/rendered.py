"""What a reader sees of escaped markdown: the escapes and invisible link breakers removed."""

from __future__ import annotations

import re

from llm.mdsafe import ZWSP


def shown(markdown: str) -> str:
    """The text of ``markdown`` as displayed, for asserting on messages built with escaping."""
    return re.sub(r"\\(.)", r"\1", markdown).replace(ZWSP, "")
