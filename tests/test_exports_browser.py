"""Exports opened in a real chromium fetch nothing: a beacon on loopback counts every request.

The HTML export is opened without its Content-Security-Policy, so the escaping alone has to keep
it inert; the Markdown export is rendered as GitHub renders it (cmark-gfm, raw HTML kept). The
same hostile values, rendered raw, do reach the beacon: that proves the beacon would see a leak.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from scanner import export
from scanner.parser import parse_report
from tests.browser import chromium_page
from tests.test_hostile_fields import hostile_summary, nmap_xml, render_gfm, stored_report

pytestmark = pytest.mark.browser


class Beacon:
    """An HTTP server on 127.0.0.1 that answers every GET with 204 and remembers its path."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        seen = self.paths

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                seen.append(self.path)
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def wait_for(self, path: str, deadline_s: float = 20.0) -> None:
        """Wait until ``path`` has been requested, or fail after the deadline."""
        end = time.monotonic() + deadline_s
        while path not in self.paths:
            assert time.monotonic() < end, f"the beacon never saw {path}: {self.paths}"
            time.sleep(0.05)


@contextmanager
def beacon() -> Iterator[Beacon]:
    b = Beacon()
    thread = threading.Thread(target=b.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield b
    finally:
        b.server.shutdown()
        b.server.server_close()


def payload(url: str, tag: str) -> str:
    """Every way to make a browser fetch ``url``: images, links, autolinks, raw tags, CSS."""
    return (
        f"tcp](x) ![i]({url}/{tag}-md.png) [l]({url}/{tag}-link) <img src={url}/{tag}-tag.png> "
        f'<img src="{url}/{tag}-quoted.png"> <{url}/{tag}-auto> {url}/{tag}-bare '
        f"<link rel=stylesheet href={url}/{tag}-css> <iframe src={url}/{tag}-frame></iframe> "
        f"<object data={url}/{tag}-object></object> <svg><image href={url}/{tag}-svg /></svg>"
    )


WITHOUT_CSP = re.compile(r"<meta http-equiv='Content-Security-Policy'[^>]*>")


def test_exports_opened_in_chromium_fetch_nothing(artifacts: Path) -> None:
    with beacon() as b, chromium_page() as page:
        evil = payload(b.url, "export")
        stored = stored_report(evil, evil)
        parsed = parse_report(nmap_xml(value=evil), report_id="rep-parsed")
        said = [hostile_summary(stored.id, evil)]
        documents = {
            "html-stored": WITHOUT_CSP.sub("", export.report_html(stored, said)),
            "html-parsed": WITHOUT_CSP.sub("", export.report_html(parsed, said)),
            "md-stored": render_gfm(export.report_markdown(stored, said)),
            "md-parsed": render_gfm(export.report_markdown(parsed, said)),
        }
        assert "Content-Security-Policy" not in documents["html-stored"]
        for name, document in documents.items():
            path = artifacts / f"export-{name}.html"
            path.write_text(document)
            page.goto(path.as_uri(), wait_until="load")
            assert page.locator("body").inner_text(), name
        # The same values rendered raw: the beacon sees them, so it would have seen a leak.
        control = artifacts / "export-control.html"
        control.write_text(render_gfm(payload(b.url, "control")))
        page.goto(control.as_uri(), wait_until="load")
        b.wait_for("/control-md.png")
        b.wait_for("/control-tag.png")
        assert [p for p in b.paths if p.startswith("/export")] == []
