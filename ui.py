"""Helpers shared by the pages: the cached services, safe rendering of untrusted text, formats.

Only pages and dashboard.py import this module; the core packages never import streamlit.
"""

from __future__ import annotations

import datetime as dt
import re

import streamlit as st

import config as config_mod
import services as services_mod
from services import Services

# Characters that turn markdown into links, images, HTML or code; escaped in untrusted text.
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+!|~:&$=-])")


@st.cache_resource(show_spinner=False)
def _services() -> Services:
    return services_mod.build(config_mod.load())


def get_services() -> Services:
    """The process-wide services, built once; a bad setting stops here with its message."""
    try:
        return _services()
    except config_mod.ConfigError as exc:
        st.error(f"ScanScribe cannot start: {exc}")
        st.stop()
        raise  # st.stop() raises; this line keeps type checkers honest


def escape_md(text: str) -> str:
    """Escape untrusted text so markdown renders it literally: no links, images or HTML."""
    return _MD_SPECIAL.sub(r"\\\1", text)


def when(ts: float | None) -> str:
    """A timestamp as local ``YYYY-MM-DD HH:MM:SS``, or an em dash."""
    if not ts:
        return "—"
    return dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


def duration(seconds: float | None) -> str:
    """Seconds as ``1h 02m``, ``3m 05s`` or ``12.3 s``."""
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds:.1f} s"
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}h {m:02d}m" if h else f"{m}m {s:02d}s"
