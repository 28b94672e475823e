"""The executive PDF of a report, drawn with ReportLab: offline, and inert whatever it holds.

ReportLab draws the PDF itself; it has no HTML engine, loads no stylesheet and fetches nothing
unless told to. The one way scan text could make it fetch is its paragraph markup (``<img
src=...>``, ``<a href=...>``), so every piece of scan data and model output is XML-escaped
before it reaches a Paragraph, and long tables use plain cell strings, which are never parsed.
The PDF holds no links.

Layout: a cover, the newest complete summary with its fact-check marks and the "not in the scan
data" box, headline figures, a risk chart, the critical and high findings, then the up hosts
and their ports as an appendix with table headers repeated on every page and page numbers.
"""

from __future__ import annotations

import datetime as dt
import io
import ipaddress
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from xml.sax.saxutils import escape

from reportlab.graphics.charts.barcharts import VerticalBarChart
from reportlab.graphics.shapes import Drawing, String
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    KeepTogether,
    PageBreak,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)
from reportlab.platypus.flowables import Flowable

from llm.factcheck import FactCheck
from scanner.export import MARK, VERIFY, fact_check_note, marked, summary_fact_check
from scanner.models import Finding, Report
from scanner.risk import LEVELS, port_risk
from scanner.vulns import by_score, cve_text
from store.records import Summary

SEVERITY_HEX = {
    "critical": "#c62828",
    "high": "#ef6c00",
    "medium": "#f9a825",
    "low": "#2e7d32",
    "info": "#757575",
}
SEVERITY_COLOURS = {level: colors.HexColor(hexa) for level, hexa in SEVERITY_HEX.items()}
# Rows per appendix table: a table split across pages is re-measured on every split, so long
# tables are built as a run of short ones (each repeating its header) to keep rendering linear.
ROWS_PER_TABLE = 60
CELL_MAX = 80  # characters of one appendix cell; the exports hold the full text
FINDING_HOSTS = 12  # addresses named per finding; the appendix lists every host
CVES_SHOWN = 12  # reported CVEs named per finding, highest score first
_FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"),)


def _fonts() -> tuple[str, str]:
    """Register a Unicode font (DejaVu Sans when installed, else ReportLab's own Vera)."""
    if "SSBody" in pdfmetrics.getRegisteredFontNames():
        return "SSBody", "SSBold"
    for folder in _FONT_DIRS:
        body, bold = folder / "DejaVuSans.ttf", folder / "DejaVuSans-Bold.ttf"
        if body.is_file() and bold.is_file():
            pdfmetrics.registerFont(TTFont("SSBody", str(body)))
            pdfmetrics.registerFont(TTFont("SSBold", str(bold)))
            return "SSBody", "SSBold"
    pdfmetrics.registerFont(TTFont("SSBody", "Vera.ttf"))
    pdfmetrics.registerFont(TTFont("SSBold", "VeraBd.ttf"))
    return "SSBody", "SSBold"


def _styles() -> dict[str, ParagraphStyle]:
    body, bold = _fonts()
    base = getSampleStyleSheet()
    return {
        "title": ParagraphStyle("t", parent=base["Title"], fontName=bold, fontSize=24, leading=30),
        "h1": ParagraphStyle("h1", parent=base["Heading1"], fontName=bold, fontSize=16),
        "h2": ParagraphStyle("h2", parent=base["Heading2"], fontName=bold, fontSize=12),
        "body": ParagraphStyle(
            "b", parent=base["BodyText"], fontName=body, fontSize=9.5, leading=13
        ),
        "small": ParagraphStyle(
            "s", parent=base["BodyText"], fontName=body, fontSize=8, leading=10
        ),
        "box": ParagraphStyle(
            "x",
            parent=base["BodyText"],
            fontName=body,
            fontSize=9,
            leading=12,
            backColor=colors.HexColor("#fff3e0"),
            borderColor=SEVERITY_COLOURS["high"],
            borderWidth=1,
            borderPadding=6,
            spaceBefore=8,
            spaceAfter=8,
        ),
    }


def text(value: object) -> str:
    """Scan or model text made safe for a Paragraph: every markup character escaped."""
    return escape(str(value), {'"': "&quot;"}).replace("\n", "<br/>")


def _when(ts: float | None) -> str:
    return dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M") if ts else "—"


def _address_key(address: str) -> tuple[int, int, str]:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return (9, 0, address)
    return (ip.version, int(ip), address)


def _cell(value: object) -> str:
    s = " ".join(str(value).split())
    return s if len(s) <= CELL_MAX else s[: CELL_MAX - 1] + "…"


def newest_summary(summaries: Sequence[Summary]) -> Summary | None:
    """The newest complete summary, executive ones first."""
    done = [s for s in summaries if s.status == "complete" and s.text.strip()]
    done.sort(key=lambda s: (s.audience == "executive", s.created_at), reverse=True)
    return done[0] if done else None


def _table(
    head: Sequence[str],
    rows: Sequence[Sequence[str]],
    widths: Sequence[float],
    font: str,
    bold: str,
    risk_col: int | None = None,
) -> Table:
    t = Table([list(head), *[list(r) for r in rows]], colWidths=list(widths), repeatRows=1)
    style = [
        ("FONT", (0, 0), (-1, 0), bold, 8),
        ("FONT", (0, 1), (-1, -1), font, 7.5),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#263238")),
        ("TEXTCOLOR", (0, 0), (-1, 0), colors.white),
        ("ROWBACKGROUNDS", (0, 1), (-1, -1), [colors.white, colors.HexColor("#f5f5f5")]),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LINEBELOW", (0, 0), (-1, 0), 0.5, colors.black),
    ]
    if risk_col is not None:
        for i, row in enumerate(rows, start=1):
            colour = SEVERITY_COLOURS.get(str(row[risk_col]))
            if colour is not None:
                style.append(("TEXTCOLOR", (risk_col, i), (risk_col, i), colour))
    t.setStyle(TableStyle(style))
    return t


def _chunks(rows: Iterable[Sequence[str]], size: int) -> Iterator[list[Sequence[str]]]:
    batch: list[Sequence[str]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def risk_chart(counts: dict[str, int], font: str) -> Drawing:
    """Open ports per risk level as coloured bars, each labelled with its count."""
    d = Drawing(170 * mm, 60 * mm)
    chart = VerticalBarChart()
    chart.x, chart.y, chart.width, chart.height = 15 * mm, 10 * mm, 145 * mm, 42 * mm
    chart.data = [[counts.get(level, 0) for level in LEVELS]]
    chart.categoryAxis.categoryNames = list(LEVELS)
    chart.categoryAxis.labels.fontName = font
    chart.valueAxis.labels.fontName = font
    chart.valueAxis.valueMin = 0
    top = max(chart.data[0]) or 1
    chart.valueAxis.valueMax = top + max(1, top // 5)
    chart.valueAxis.valueStep = max(1, (top + 4) // 5)
    chart.bars.strokeWidth = 0
    for i, level in enumerate(LEVELS):
        chart.bars[(0, i)].fillColor = SEVERITY_COLOURS[level]
    chart.barLabelFormat = "%d"
    chart.barLabels.fontName = font
    chart.barLabels.nudge = 6
    d.add(chart)
    d.add(String(15 * mm, 55 * mm, "Open ports by risk", fontName=font, fontSize=9))
    return d


class _Numbered(Canvas):  # type: ignore[misc]
    """A canvas that writes "page N of M" on every page once it knows M."""

    def __init__(self, *args: object, footer: str = "", font: str = "Helvetica", **kw: object):
        super().__init__(*args, **kw)
        self._pages: list[dict[str, object]] = []
        self._footer = footer
        self._font = font

    def showPage(self) -> None:
        self._pages.append(dict(self.__dict__))
        self._startPage()

    def save(self) -> None:
        total = len(self._pages)
        for state in self._pages:
            self.__dict__.update(state)
            self.setFont(self._font, 7.5)
            self.setFillColor(colors.HexColor("#616161"))
            self.drawString(15 * mm, 8 * mm, self._footer)
            self.drawRightString(A4[0] - 15 * mm, 8 * mm, f"page {self._pageNumber} of {total}")
            super().showPage()
        super().save()


def _summary_block(s: Summary, fc: FactCheck, st: dict[str, ParagraphStyle]) -> list[Flowable]:
    body = marked(
        s.text,
        fc.unsupported,
        text,
        lambda t: f'<font color="#c62828"><b>{MARK} {text(t)}</b></font>',
    )
    out: list[Flowable] = [
        Paragraph(text(f"Model {s.model} · {s.audience} · {_when(s.created_at)}"), st["small"]),
        Spacer(1, 4),
        Paragraph(body, st["body"]),
    ]
    if fc.unsupported:
        items = "<br/>".join(f"• {text(c.kind)} {text(c.value)}: {VERIFY}" for c in fc.unsupported)
        out.append(Paragraph(f"<b>{text(fact_check_note(fc))}</b><br/>{items}", st["box"]))
    else:
        out.append(Paragraph(text(fact_check_note(fc)), st["small"]))
    return out


def _cve_line(found: dict[str, Finding], st: dict[str, ParagraphStyle]) -> list[Flowable]:
    """The CVEs the scan's scripts reported for a finding, highest score first."""
    if not found:
        return []
    ranked = by_score(found.values())
    names = [cve_text(f) for f in ranked[:CVES_SHOWN]]
    more = len(ranked) - CVES_SHOWN
    line = (
        "CVEs reported by the scan: " + ", ".join(names) + (f" and {more} more" if more > 0 else "")
    )
    return [Paragraph(text(line), st["small"])]


def render_pdf(
    report: Report,
    summaries: Sequence[Summary] = (),
    bases: dict[str, Report] | None = None,
    generated_at: float | None = None,
) -> bytes:
    """The executive PDF of ``report`` (with its newest complete summary), as bytes."""
    st = _styles()
    font, bold = _fonts()
    story: list[Flowable] = []
    up = sorted(
        (h for h in report.hosts if h.status == "up"), key=lambda h: _address_key(h.address)
    )
    risks = [(h, p, port_risk(p, h)) for h in up for p in h.ports if p.state == "open"]
    counts = {level: 0 for level in LEVELS}
    for _h, _p, r in risks:
        counts[r.level] += 1

    # -- cover
    story += [
        Spacer(1, 40 * mm),
        Paragraph("ScanScribe report", st["title"]),
        Spacer(1, 8 * mm),
    ]
    cover = [
        ("Targets", ", ".join(report.targets) or "—"),
        ("Scan time", f"{_when(report.started_at)} to {_when(report.finished_at)}"),
        ("Profile or source", report.profile or report.source),
        ("Run by", report.owner or "—"),
        ("Report", report.id),
        ("nmap", report.nmap_version or "—"),
        ("Generated", _when(generated_at or dt.datetime.now().timestamp())),
    ]
    for label, value in cover:
        story.append(Paragraph(f"<b>{text(label)}:</b> {text(value)}", st["body"]))
    if not report.complete:
        story.append(Paragraph(text(f"Incomplete scan: {report.note}"), st["box"]))
    story.append(PageBreak())

    # -- summary, figures, chart
    story.append(Paragraph("Executive summary", st["h1"]))
    chosen = newest_summary(summaries)
    if chosen is None:
        story.append(
            Paragraph("No complete summary has been written for this report yet.", st["body"])
        )
    else:
        found = {**(bases or {}), report.id: report}
        refs = [found[i] for i in (chosen.base_report_id, chosen.report_id) if i and i in found]
        story += _summary_block(chosen, summary_fact_check(chosen, refs), st)
    story.append(Paragraph("Headline figures", st["h1"]))
    figures = [
        ["Hosts up", f"{len(up)} of {len(report.hosts)}"],
        ["Open ports", str(len(risks))],
        *[[f"{level.capitalize()} findings", str(counts[level])] for level in LEVELS[:3]],
    ]
    story.append(_table(["Figure", "Value"], figures, [60 * mm, 40 * mm], font, bold))
    story.append(Spacer(1, 6 * mm))
    story.append(risk_chart(counts, font) if risks else Paragraph("No open ports.", st["body"]))

    # -- critical and high findings
    story.append(Paragraph("Critical and high findings", st["h1"]))
    groups: dict[tuple[int, str, int, str, str, str], list[str]] = {}
    group_cves: dict[tuple[int, str, int, str, str, str], dict[str, Finding]] = {}
    for h, p, r in risks:
        if r.level in ("critical", "high"):
            service = " ".join(x for x in (p.service, p.product, p.version) if x)
            key = (-r.rank, r.level, p.port, p.protocol, service, r.reason)
            groups.setdefault(key, []).append(h.address)
            for f in p.cves:
                group_cves.setdefault(key, {}).setdefault(f.id, f)
    if not groups:
        story.append(Paragraph("None: no open port is rated critical or high.", st["body"]))
    for key, addresses in sorted(groups.items()):
        _rank, level, port, proto, service, reason = key
        addresses.sort(key=_address_key)
        shown = ", ".join(addresses[:FINDING_HOSTS])
        more = len(addresses) - FINDING_HOSTS
        hosts = f"{shown} and {more} more" if more > 0 else shown
        story.append(
            KeepTogether(
                [
                    Paragraph(
                        f'<font color="{SEVERITY_HEX[level]}"><b>{text(level.upper())}</b></font> '
                        f"<b>{text(port)}/{text(proto)} {text(service)}</b> on "
                        f"{len(addresses)} host(s)",
                        st["body"],
                    ),
                    Paragraph(text(reason), st["small"]),
                    *_cve_line(group_cves.get(key, {}), st),
                    Paragraph(text(hosts), st["small"]),
                    Spacer(1, 4),
                ]
            )
        )

    # -- appendix: up hosts and their ports
    story += [PageBreak(), Paragraph("Appendix: hosts and open ports", st["h1"])]
    down = len(report.hosts) - len(up)
    if down:
        story.append(Paragraph(text(f"{down} host(s) not up are left out."), st["small"]))
    host_rows = (
        (
            _cell(h.address),
            _cell(", ".join(h.hostnames)),
            _cell(h.os_guess or ""),
            str(sum(1 for p in h.ports if p.state == "open")),
        )
        for h in up
    )
    widths = [38 * mm, 62 * mm, 60 * mm, 20 * mm]
    for batch in _chunks(host_rows, ROWS_PER_TABLE):
        story.append(
            _table(["Address", "Host names", "OS guess", "Open"], batch, widths, font, bold)
        )
    story.append(Paragraph("Ports", st["h2"]))
    port_rows = (
        (
            _cell(h.address),
            f"{p.port}/{_cell(p.protocol)}",
            _cell(p.state),
            _cell(" ".join(x for x in (p.service, p.product, p.version) if x)),
            r.level,
        )
        for h, p, r in risks
    )
    widths = [36 * mm, 22 * mm, 18 * mm, 86 * mm, 18 * mm]
    for batch in _chunks(port_rows, ROWS_PER_TABLE):
        story.append(
            _table(
                ["Address", "Port", "State", "Service", "Risk"],
                batch,
                widths,
                font,
                bold,
                risk_col=4,
            )
        )

    buf = io.BytesIO()
    doc = SimpleDocTemplate(
        buf,
        pagesize=A4,
        leftMargin=15 * mm,
        rightMargin=15 * mm,
        topMargin=15 * mm,
        bottomMargin=15 * mm,
        title=f"ScanScribe report {report.id}",
        author="ScanScribe",
        invariant=1,
    )
    footer = f"ScanScribe · {report.id}"
    doc.build(story, canvasmaker=lambda *a, **k: _Numbered(*a, footer=footer, font=font, **k))
    return buf.getvalue()
