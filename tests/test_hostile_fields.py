"""Hostile values in every field of an nmap file: refused where only a keyword fits, inert in
every export (Markdown rendered by GitHub's own renderer, HTML parsed tag by tag, CSV cells)."""

from __future__ import annotations

import csv
import html
import io
import json
from html.parser import HTMLParser
from xml.sax.saxutils import escape, quoteattr

import cmarkgfm
import pytest
from cmarkgfm.cmark import Options

from scanner import export
from scanner.errors import ImportRefused
from scanner.importer import import_bytes
from scanner.models import Host, Port, Report, Script
from scanner.parser import parse_report
from store.records import Summary
from store.sqlite import SQLiteStore

BEACON = "http://127.0.0.1:9"
# Every way Markdown or HTML could make a link, an image or a tag, plus a formula and a
# fence breaker: the value an attacker-run service or a crafted file puts in each field.
HOSTILE = (
    f"x](http://e.example) ![i]({BEACON}/p.png) [l]({BEACON}/l) <img src={BEACON}/h.png> "
    f"<{BEACON}/auto> www.evil.example {BEACON}/bare admin@evil.example "
    '=HYPERLINK("http://e.example") :red[directive] &lt;b&gt; | cell | ``` `'
)
HOSTILE_PROTOCOL = f"tcp](x) ![i]({BEACON}/p.png)"


def nmap_xml(protocol: str = "tcp", value: str = HOSTILE) -> bytes:
    """An nmap file with ``value`` in every free-text attribute and ``protocol`` on the port."""
    v = quoteattr(value)
    return f"""<?xml version="1.0"?>
<nmaprun scanner="nmap" args={v} start="1700000000" version={v} xmloutputversion="1.05">
<host><status state="up" reason={v}/>
<address addr="10.0.0.1" addrtype="ipv4"/>
<address addr={v} addrtype="mac" vendor={v}/>
<hostnames><hostname name={v} type="PTR"/></hostnames>
<ports>
<port protocol={quoteattr(protocol)} portid="80"><state state="open" reason={v}/>
<service name={v} product={v} version={v} extrainfo={v}/><cpe>{escape(value)}</cpe>
<script id={v} output={v}/></port>
</ports>
<os><osmatch name={v} accuracy="90"/></os>
<hostscript><script id={v} output={v}/></hostscript>
</host>
<runstats><finished time="1700000100" exit="success"/><hosts up="1" down="0" total="1"/></runstats>
</nmaprun>""".encode()


def stored_report(value: str = HOSTILE, protocol: str = HOSTILE_PROTOCOL) -> Report:
    """What a store written before protocols were checked may still hold: ``value`` everywhere."""
    v = value
    port = Port(443, protocol, "open", v, v, v, v, v, (v,), (Script(v, v),))
    host = Host(v, hostnames=(v,), status=v, ports=(port,), scripts=(Script(v, v),))
    return Report(
        id="rep-stored",
        hosts=(host,),
        targets=(v,),
        profile=v,
        nmap_version=v,
        args=v,
        complete=False,
        note=v,
    )


def hostile_summary(report_id: str, value: str = HOSTILE) -> Summary:
    """A summary with ``value`` in its labels and text, and two claims the scan does not hold."""
    return Summary(
        id="sum-h",
        report_id=report_id,
        model=value,
        audience=value,
        status=value,
        text="Patch 10.0.0.1 now.\n" + value + "\nAlso CVE-2099-0001 on 10.0.0.99.",
        created_at=1.0,
    )


def reports() -> list[Report]:
    return [parse_report(nmap_xml(), report_id="rep-xml"), stored_report()]


# -- the protocol keyword ------------------------------------------------------------------------
def test_a_protocol_nmap_never_writes_refuses_the_file_and_stores_nothing(
    sqlite_store: SQLiteStore,
) -> None:
    with pytest.raises(ImportRefused) as refused:
        import_bytes(sqlite_store, nmap_xml(HOSTILE_PROTOCOL), filename="beacon.xml")
    message = str(refused.value)
    assert "tcp, udp, sctp or ip" in message and "Nothing was imported" in message
    assert "](" not in message and BEACON not in message, "the refusal never quotes markup"
    assert sqlite_store.list_reports() == []
    with pytest.raises(ImportRefused, match='protocol is "icmp"'):
        parse_report(nmap_xml("icmp"), report_id="r")


def test_protocols_are_nmaps_own_keywords_in_any_case() -> None:
    for written, kept in (("tcp", "tcp"), ("UDP", "udp"), ("Sctp", "sctp"), ("ip", "ip")):
        report = parse_report(nmap_xml(written, "x"), report_id="r")
        assert [p.label for p in report.hosts[0].ports] == [f"80/{kept}"]


# -- Markdown --------------------------------------------------------------------------------------
class Tags(HTMLParser):
    """Every tag and attribute name in an HTML document."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.attrs: set[tuple[str, str]] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.attrs.update((tag, name) for name, _ in attrs)


def tags_of(document: str) -> Tags:
    t = Tags()
    t.feed(document)
    t.close()
    return t


def render_gfm(markdown: str) -> str:
    """HTML as GitHub renders Markdown: its cmark-gfm with autolinks, tables, and raw HTML kept."""
    return str(
        cmarkgfm.github_flavored_markdown_to_html(markdown, options=Options.CMARK_OPT_UNSAFE)
    )


# What the Markdown export's own structure makes: headings, lists, tables, quotes, code, bold.
MD_TAGS = {
    "h1", "h2", "h3", "p", "ul", "li", "table", "thead", "tbody", "tr", "th", "td",
    "blockquote", "pre", "code", "strong",
}  # fmt: skip


@pytest.mark.parametrize("report", reports(), ids=["parsed", "stored"])
def test_markdown_export_renders_no_link_image_or_tag_from_scan_data(report: Report) -> None:
    md = export.report_markdown(report, [hostile_summary(report.id)])
    rendered = render_gfm(md)
    found = tags_of(rendered)
    assert found.tags <= MD_TAGS, found.tags - MD_TAGS
    # Only the fenced code blocks carry an attribute: their language.
    assert found.attrs <= {("pre", "lang"), ("code", "class")}, found.attrs
    assert "<a " not in rendered and "<img" not in rendered
    # Every value is still there for a reader, as text.
    plain = rendered.replace("\u200b", "")
    assert "www.evil.example" in plain and "admin@evil.example" in plain
    assert f"&lt;img src={BEACON}/h.png&gt;" in plain


def test_markdown_export_tables_have_as_many_cells_as_headings() -> None:
    rendered = render_gfm(export.report_markdown(stored_report()))
    assert rendered.count("<th>") == 14
    hosts_row, ports_row = [row for row in rendered.split("<tr>")[1:] if "<td>" in row]
    assert hosts_row.count("<td>") == 7 and ports_row.count("<td>") == 7


# -- HTML ------------------------------------------------------------------------------------------
HTML_TAGS = {
    "html", "head", "meta", "title", "style", "body", "h1", "h2", "h3", "ul", "li", "p",
    "table", "thead", "tbody", "tr", "th", "td", "pre", "mark", "div", "strong",
}  # fmt: skip
HTML_ATTRS = {
    ("meta", "charset"),
    ("meta", "http-equiv"),
    ("meta", "content"),
    ("td", "class"),
    ("mark", "title"),
    ("div", "class"),
}


@pytest.mark.parametrize("report", reports(), ids=["parsed", "stored"])
def test_html_export_has_no_tag_or_attribute_from_scan_data(report: Report) -> None:
    document = export.report_html(report, [hostile_summary(report.id)])
    found = tags_of(document)
    assert found.tags <= HTML_TAGS, found.tags - HTML_TAGS
    assert found.attrs <= HTML_ATTRS, found.attrs - HTML_ATTRS
    assert "<a " not in document and "<img" not in document
    assert html.escape(HOSTILE) in document, "every value is shown, as text"


# -- CSV and JSON ----------------------------------------------------------------------------------
FORMULAS = ("=1+1", " =1+1", "+1", "-1+1", "@SUM(A1)", "\t=1", "\n=1", "\r=1")


def test_no_csv_cell_can_start_a_formula() -> None:
    ports = tuple(
        Port(i + 1, "tcp", "open", service=f, product=f, version=f, extrainfo=f)
        for i, f in enumerate(FORMULAS)
    )
    report = Report(id="r", hosts=(Host("10.0.0.1", hostnames=FORMULAS, ports=ports),))
    for text, rows_expected in (
        (export.ports_csv(report), 1 + len(ports)),
        (export.hosts_csv(report), 2),
    ):
        # Like a spreadsheet, the reader starts a new row at any line end outside quotes.
        rows = list(csv.reader(io.StringIO(text, newline="")))
        assert len(rows) == rows_expected, "a line break in a value started a new row"
        for row in rows:
            for cell in row[1:] if row[0] == "address" else row:
                assert not cell.lstrip().startswith(("=", "+", "-", "@")), repr(cell)
                assert not cell.startswith(("\t", "\r", "\n")), repr(cell)
    cells = next(csv.DictReader(io.StringIO(export.ports_csv(report))))
    assert cells["product"] == "'=1+1", "the value is kept, behind an apostrophe"


def test_json_export_keeps_hostile_values_as_exact_strings() -> None:
    report = stored_report()
    data = json.loads(export.report_json(report, [hostile_summary(report.id)]))
    assert data["hosts"][0]["ports"][0]["protocol"] == HOSTILE_PROTOCOL
    assert data["hosts"][0]["address"] == HOSTILE
    assert data["summaries"][0]["model"] == HOSTILE
