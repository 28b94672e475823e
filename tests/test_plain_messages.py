"""Messages and files that say what is wrong and read as plain text: ports, scope, Markdown."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import ui
from config import PROJECT_ROOT as ROOT
from scanner import export
from scanner.errors import TargetRefused
from scanner.models import Host, Port, Report, Script
from scanner.profiles import PROFILES
from scanner.targets import parse_ports, resolve_targets
from tests.test_hostile_fields import MD_TAGS, render_gfm, tags_of

SCOPE = [ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("10.20.0.0/16")]


@pytest.mark.parametrize("spec", ["22,,80", ",22", "22, ,80"])
def test_an_empty_port_item_says_there_is_an_extra_comma(spec: str) -> None:
    with pytest.raises(TargetRefused) as info:
        parse_ports(spec)
    assert "nothing between two commas" in str(info.value)
    assert "for example 22,80" in str(info.value)


def test_an_out_of_scope_target_is_refused_with_the_scope_stated() -> None:
    with pytest.raises(TargetRefused) as info:
        resolve_targets("192.0.2.7", SCOPE, 256)
    msg = str(info.value)
    assert "127.0.0.0/8, 10.20.0.0/16" in msg and "SCANSCRIBE_SCOPE" in msg
    with pytest.raises(TargetRefused) as named:
        resolve_targets("far.example", SCOPE, 256, resolver=lambda _n: ["192.0.2.9"])
    assert "192.0.2.9" in str(named.value) and "127.0.0.0/8, 10.20.0.0/16" in str(named.value)


def test_the_profile_picker_shows_arguments_and_a_typical_duration(
    monkeypatch: pytest.MonkeyPatch, db_path: Path
) -> None:
    monkeypatch.setenv("SCANSCRIBE_DB", str(db_path))
    monkeypatch.setenv("OLLAMA_HOST", "http://127.0.0.1:9")
    monkeypatch.delenv("SCANSCRIBE_STORE", raising=False)
    ui._services.clear()
    try:
        at = AppTest.from_file(str(ROOT / "pages" / "scan.py"), default_timeout=30).run()
    finally:
        ui._services().close()
        ui._services.clear()
    options = at.selectbox(key="scan_profile").options
    assert all(p.typical for p in PROFILES.values())
    assert any(o.startswith("Quick") and PROFILES["quick"].typical in o for o in options)
    listing = "\n".join(str(m.value) for m in at.markdown)
    assert f"`nmap {PROFILES['quick'].command()}`" in listing
    assert "--top-ports 1000" in listing


def _report() -> Report:
    cert = Script("ssl_cert", "Subject: commonName=www.evil.example")
    port = Port(443, "tcp", "open", service="https", product="Apache httpd", version="2.4.49",
                scripts=(cert,), cpe=("cpe:/a:apache:http_server:2.4.49",))  # fmt: skip
    host = Host("10.0.0.1", hostnames=("web-01.lab",), ports=(port,))
    return Report(id="rep-md", targets=("10.0.0.0/24",), profile="safe-scripts", hosts=(host,))


def test_the_markdown_export_reads_as_plain_text_and_stays_inert() -> None:
    md = export.report_markdown(_report())
    # No backslash where Markdown needs none: dashes, colons, underscores inside names.
    assert "| 10.0.0.1 | web-01.lab | up |" in md
    assert "cpe:/a:apache:http_server:2.4.49" in md
    assert "### 10.0.0.1 443/tcp: ssl_cert" in md
    assert "- Profile or source: safe-scripts" in md
    # Still escaped where Markdown would act: emphasis, a list start, a link, a table pipe.
    assert export.md_escape("_x_ *y* a|b") == "\\_x\\_ \\*y\\* a\\|b"
    assert export.md_escape("- not a list") == "\\- not a list"
    assert export.md_escape("1. not a list") == "1\\. not a list"
    assert "](" not in export.md_escape("[x](javascript:alert(1))")
    rendered = render_gfm(md + "\n" + export.md_escape("1. a www.evil.example b@c.io ---"))
    assert tags_of(rendered).tags <= MD_TAGS and "<a " not in rendered
