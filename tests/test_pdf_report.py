"""The executive PDF: what it holds, read back with poppler, and that it never fetches a thing."""

from __future__ import annotations

import http.server
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from config import PROJECT_ROOT as ROOT
from reporting.pdf import render_pdf
from scanner import export
from scanner.models import Host, Port, Report, Script
from store.records import Summary
from store.sqlite import SQLiteStore


def _report(hosts: int = 3, hostile: str = "") -> Report:
    """Up hosts with redis (critical), telnet (high) and ssh open, and one host that is down."""
    up = [
        Host(
            address=f"10.0.{i // 250}.{i % 250 + 1}",
            hostnames=(f"db{i}.corp.example{hostile}",),
            ports=(
                Port(
                    6379,
                    "tcp",
                    "open",
                    service="redis",
                    product=f"Redis{hostile}",
                    version="7.0",
                    scripts=(Script("banner", f"hello{hostile}"),),
                ),
                Port(23, "tcp", "open", service="telnet"),
                Port(22, "tcp", "open", service="ssh", product="OpenSSH", version="9.2"),
            ),
        )
        for i in range(hosts)
    ]
    down = Host(address="10.9.9.9", status="down", hostnames=("gone-host.example",))
    return Report(
        id="rep-pdf",
        hosts=(*up, down),
        targets=("10.0.0.0/16",),
        profile="standard",
        started_at=1_700_000_000.0,
        finished_at=1_700_000_300.0,
        nmap_version="7.93",
        args=f"nmap -sV 10.0.0.0/16{hostile}",
        owner="ana",
        created_at=1_700_000_300.0,
    )


def _summary(text: str) -> Summary:
    return Summary(
        id="sum-1", report_id="rep-pdf", model="llama3.2:latest", audience="executive",
        text=text, status="complete", created_at=1_700_000_400.0,
    )  # fmt: skip


def _pdftotext(pdf: Path, *args: str) -> str:
    out = subprocess.run(["pdftotext", *args, str(pdf), "-"], capture_output=True,
                         text=True, check=True)  # fmt: skip
    return " ".join(out.stdout.split())  # one line: wrapped text reads as written


def _pages(pdf: Path) -> int:
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True)
    return int(next(x for x in info.stdout.splitlines() if x.startswith("Pages:")).split()[1])


@pytest.fixture
def stored(tmp_path: Path) -> Iterator[dict[str, str]]:
    """A database holding the report and a summary that invents a CVE and a host."""
    db = tmp_path / "pdf.db"
    store = SQLiteStore(db)
    store.save_report(_report(hosts=120))
    store.save_summary(_summary(
        "Redis on 10.0.0.1 port 6379/tcp is exposed without authentication. Telnet is open on "
        "10.0.0.2. CVE-2099-4242 affects 10.77.77.77 as well."
    ))  # fmt: skip
    store.close()
    yield {**os.environ, "SCANSCRIBE_DB": str(db), "OLLAMA_HOST": "http://127.0.0.1:9"}


def test_the_pdf_has_a_cover_the_checked_summary_findings_and_an_appendix(
    stored: dict[str, str], tmp_path: Path, artifacts: Path
) -> None:
    pdf = tmp_path / "report.pdf"
    with pdf.open("wb") as out:
        done = subprocess.run(
            [sys.executable, "-m", "scanner", "show", "rep-pdf", "--format", "pdf"],
            cwd=ROOT, env=stored, stdout=out, stderr=subprocess.PIPE, text=False, timeout=120,
            check=False,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert pdf.read_bytes().startswith(b"%PDF-")
    pages = _pages(pdf)
    assert pages >= 5
    cover = _pdftotext(pdf, "-f", "1", "-l", "1")
    for expected in ("ScanScribe report", "10.0.0.0/16", "2023-11-14", "standard", "Run by: ana"):
        assert expected in cover
    summary_page = _pdftotext(pdf, "-f", "2", "-l", "2")
    assert "⚠ CVE-2099-4242" in summary_page and "⚠ 10.77.77.77" in summary_page
    assert "not in the scan data" in summary_page
    assert "⚠ 10.0.0.1" not in summary_page  # a true claim is not marked
    whole = _pdftotext(pdf)
    assert (
        "Critical and high findings" in whole
        and "CRITICAL 6379/tcp redis Redis 7.0 on 120 host(s)" in whole
    )
    assert "HIGH 23/tcp telnet on 120 host(s)" in whole and "10.0.0.12 and 108 more" in whole
    assert f"page 1 of {pages}" in whole and f"page {pages} of {pages}" in whole
    assert "10.9.9.9" not in whole.split("Appendix")[1] and "gone-host" not in whole
    # Every appendix page starts its table with the header row again.
    first_appendix = next(
        n for n in range(1, pages + 1) if "Appendix" in _pdftotext(pdf, "-f", str(n), "-l", str(n))
    )
    for n in range(first_appendix + 1, pages + 1):
        page = _pdftotext(pdf, "-f", str(n), "-l", str(n))
        assert "Address" in page and ("Host names" in page or "Service" in page), n
    subprocess.run(["pdftoppm", "-r", "60", "-png", "-f", "1", "-l", "3", str(pdf),
                    str(artifacts / "pdf-report")], check=True)  # fmt: skip
    # Rendered by poppler, every page has ink on it (no blank page).
    subprocess.run(["pdftoppm", "-r", "20", "-gray", str(pdf), str(tmp_path / "page")],
                   check=True)  # fmt: skip
    rendered = sorted(tmp_path.glob("page-*.pgm"))
    assert len(rendered) == pages
    for image in rendered:
        assert _ink(image.read_bytes()) > 0.002, image.name


def _ink(pgm: bytes) -> float:
    """The share of pixels that are not white in a binary PGM (P5) image."""
    fields = pgm.split(maxsplit=4)
    assert fields[0] == b"P5"
    width, height = int(fields[1]), int(fields[2])
    pixels = fields[4][-(width * height) :]
    return sum(1 for v in pixels if v < 200) / (width * height)


def test_command_line_html_is_the_pages_html_export(stored: dict[str, str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "scanner", "show", "rep-pdf", "--format", "html"],
        cwd=ROOT, env=stored, capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    store = SQLiteStore(stored["SCANSCRIBE_DB"])
    expected = export.report_html(store.get_report("rep-pdf"), store.list_summaries("rep-pdf"), {})
    assert done.stdout == expected


class _Beacon(http.server.BaseHTTPRequestHandler):
    hits: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        _Beacon.hits.append(self.path)
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return


def test_urls_and_markup_in_a_report_never_make_the_pdf_fetch_anything(tmp_path: Path) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Beacon)
    port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Beacon.hits.clear()
    beacon = f"http://127.0.0.1:{port}"
    hostile = (
        f' <img src="{beacon}/img.png"/> <a href="{beacon}/link">x</a> {beacon}/bare.png '
        f'<font face="{beacon}/f.ttf">f</font> ![i]({beacon}/md.png) <link href="{beacon}/css">'
    )
    report = _report(hosts=2, hostile=hostile)
    try:
        pdf_bytes = render_pdf(report, [_summary("Findings:" + hostile)])
    finally:
        server.shutdown()
    assert _Beacon.hits == []
    assert b"/URI" not in pdf_bytes and b"/Launch" not in pdf_bytes  # no link annotations
    pdf = tmp_path / "hostile.pdf"
    pdf.write_bytes(pdf_bytes)
    shown = _pdftotext(pdf)
    assert "<img src=" in shown and f"{beacon}/img.png" in shown  # shown as the text it is
