"""Exports of a report: CSV of hosts and ports, JSON, and Markdown or HTML with saved summaries.

Scan data and summary text are untrusted. The HTML export escapes every value with
``html.escape`` and holds no links or images; the Markdown export escapes every character that
could make a link, an image, HTML or a table break, and breaks the bare URLs, ``www.`` names and
e-mail addresses that GitHub-flavoured Markdown would turn into links. CSV cells never start a
spreadsheet formula. A saved summary carries its fact check in both documents: claims that are
not in the scan data are marked in the text and listed in a box below it.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from llm.factcheck import Claim, FactCheck, check
from llm.mdsafe import escape_markdown
from scanner.models import Host, Port, Report, host_frame, port_frame
from scanner.risk import host_risk, port_risk
from scanner.vulns import by_score, cve_text, finding_json
from store.audit import AuditEvent
from store.records import Job, Summary
from store.serialize import record_to_dict, report_to_dict

if TYPE_CHECKING:
    import pandas as pd

# What escape_markdown leaves alone but Markdown reads as formatting anywhere in a line: emphasis
# and strikethrough, and the pipe that splits a table cell.
_MD_MORE = re.compile(r"([*~|])")
# An underscore opens or closes emphasis only beside something other than a letter or digit,
# so snake_case names stay as written.
_MD_UNDERSCORE = re.compile(r"(?<![^\W_])_|_(?![^\W_])")
# What starts a list, heading, setext underline or ordered list only at the start of a line.
_MD_LEAD = re.compile(r"^(\s*)([-+=#])(?=[-+=#]*(?:\s|$))|^(\s*\d{1,9})([.)])(?=\s|$)")
# escape_markdown escapes every colon (for Streamlit's directives); a file needs it only where
# it breaks an http(s) autolink, after the invisible space.
_MD_COLON = re.compile(r"(?<!\u200b)\\:")
_BACKTICKS = re.compile(r"`+")
VERIFY = "not in the scan data — verify"
MARK = "⚠"


def md_escape(text: str) -> str:
    """Escape untrusted text for one Markdown line or table cell: no links, images, HTML.

    Only what Markdown would read gets a backslash, so the file reads as plain text too:
    ``CVE-2021-41773``, ``10.0.0.1:443`` and ``ssl_cert`` stay as they are.
    """
    # escape_markdown adds backslashes before its own set and breaks autolinks with a zero-width
    # space; the characters escaped second never occur in what it adds, so nothing is escaped twice.
    flat = escape_markdown(text.replace("\r", " ").replace("\n", " "))
    flat = _MD_COLON.sub(":", flat)
    flat = _MD_UNDERSCORE.sub(r"\\_", _MD_MORE.sub(r"\\\1", flat))
    # A bracket is already escaped; escaping the parenthesis after one too keeps "](" out.
    flat = flat.replace("\\](", "\\]\\(")
    return _MD_LEAD.sub(lambda m: m.expand(r"\1\\\2" if m.group(2) else r"\3\\\4"), flat)


def md_code(text: str) -> str:
    """A fenced code block that the text cannot close early, whatever backticks it holds."""
    longest = max((len(m) for m in _BACKTICKS.findall(text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{text}\n{fence}"


def _when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts else "—"


def hosts_table(report: Report) -> pd.DataFrame:
    """The hosts of a report with their highest risk and its reason."""
    frame = host_frame(report)
    risks = [host_risk(h) for h in report.hosts]
    frame["risk"] = [r.level for r in risks]
    frame["risk_rank"] = [r.rank for r in risks]
    frame["risk_reason"] = [r.reason for r in risks]
    return frame


def ports_table(report: Report) -> pd.DataFrame:
    """Every port of every host with its risk and the reason."""
    frame = port_frame(report)
    risks = [port_risk(p, h) for h in report.hosts for p in h.ports]
    frame["risk"] = [r.level for r in risks]
    frame["risk_rank"] = [r.rank for r in risks]
    frame["risk_reason"] = [r.reason for r in risks]
    return frame


def _inert_csv(frame: pd.DataFrame) -> str:
    """CSV text in which no cell can start a spreadsheet formula (scan data is untrusted)."""
    frame = frame.copy()
    for col in frame.columns:
        if frame[col].dtype == object or str(frame[col].dtype) in ("str", "string"):
            values = frame[col].astype(str)
            # Spreadsheets skip leading blanks before a formula sign; a line break or tab first
            # can hide the rest of the cell from view.
            risky = values.str.match(r"\s*[=+\-@＝＋－＠]|[\t\r\n]")
            if risky.any():
                frame[col] = values.where(~risky, "'" + values)
    # CRLF line ends (RFC 4180) make the writer quote a cell holding a lone carriage return,
    # which spreadsheets would otherwise take as the start of a new row.
    return str(frame.to_csv(index=False, lineterminator="\r\n"))


def without_down_hosts(report: Report) -> Report:
    """``report`` without the hosts nmap found down (they have no ports), for shorter exports."""
    return replace(report, hosts=tuple(h for h in report.hosts if h.status != "down"))


def hosts_csv(report: Report) -> str:
    """CSV of the hosts table, with risk and reason."""
    return _inert_csv(hosts_table(report).drop(columns=["risk_rank"]))


def ports_csv(report: Report) -> str:
    """CSV of the ports table, with risk and reason, and the CVEs the scan's scripts reported
    (highest score first: ``CVE-2019-6111 (5.8, exploit); ...``)."""
    frame = ports_table(report).drop(columns=["risk_rank"])
    frame["cves"] = ["; ".join(cve_text(f) for f in by_score(p.cves)) for _, p in _ports(report)]
    return _inert_csv(frame)


def _ports(report: Report) -> Iterable[tuple[Host, Port]]:
    return ((h, p) for h in report.hosts for p in h.ports)


CVE_HEAD = ("Host", "Port", "Finding", "CVSS", "Exploit", "Verdict", "Reported by", "Evidence")


def cve_rows(report: Report) -> list[tuple[str, ...]]:
    """The CVE findings of the open ports, host by host, highest score first on each port."""
    rows: list[tuple[str, ...]] = []
    for h, p in _ports(report):
        if not p.is_open:
            continue
        for f in by_score(p.cves):
            rows.append(
                (
                    h.address,
                    p.label,
                    f.id,
                    f"{f.cvss:g}" if f.cvss is not None else "—",
                    "yes" if f.exploit else "",
                    f.state,
                    f.source,
                    f.evidence,
                )
            )
    return rows


def report_json(report: Report, summaries: Sequence[Summary] = ()) -> str:
    """The whole report as JSON, with its saved summaries under ``summaries``."""
    data: dict[str, Any] = report_to_dict(report)
    data["summaries"] = [record_to_dict(s) for s in summaries]
    return json.dumps(data, indent=1, ensure_ascii=False)


def summary_fact_check(s: Summary, reports: Sequence[Report]) -> FactCheck:
    """Check a saved summary against those of its reports (the report, a diff's base) still there.

    When one of them is gone, a fresh check would flag every claim only that report supported,
    so a claim is then flagged only if the check saved with the summary flagged it too.
    """
    fc = check(s.text, *reports)
    wanted = {i for i in (s.report_id, s.base_report_id) if i}
    if wanted <= {r.id for r in reports} or "unsupported" not in s.fact_check:
        return fc
    saved = {(c.get("kind"), c.get("value")) for c in s.fact_check["unsupported"]}
    return FactCheck(
        tuple(
            replace(c, supported=c.supported or (c.kind, c.value) not in saved) for c in fc.claims
        )
    )


def fact_check_note(fc: FactCheck, shown: str = f"marked {MARK}") -> str:
    """One sentence on a fact check: how many claims to verify, or that all were found."""
    if fc.unsupported:
        return (
            f"{len(fc.unsupported)} claim(s) are not in the scan data — verify them before "
            f"acting on this summary. They are {shown} in the text."
        )
    if fc.claims:
        return f"Fact check: all {len(fc.claims)} host, port and CVE claims are in the scan data."
    return "Fact check: the summary names no host, port or CVE id."


def _checks(
    report: Report, summaries: Sequence[Summary], bases: Mapping[str, Report] | None
) -> list[FactCheck]:
    found = {**(bases or {}), report.id: report}
    return [
        summary_fact_check(
            s, [found[i] for i in (s.base_report_id, s.report_id) if i and i in found]
        )
        for s in summaries
    ]


def marked(
    text: str, claims: Iterable[Claim], plain: Callable[[str], str], mark: Callable[[str], str]
) -> str:
    """``text`` with each claim's spans passed through ``mark`` and the rest through ``plain``."""
    out: list[str] = []
    pos = 0
    for start, end in sorted({span for c in claims for span in c.spans}):
        if start < pos or end <= start:
            continue  # overlapping spans: the first one wins
        out += [plain(text[pos:start]), mark(text[start:end])]
        pos = end
    out.append(plain(text[pos:]))
    return "".join(out)


def _md_summary(s: Summary, fc: FactCheck) -> list[str]:
    """A summary as a quote with its unsupported claims marked, then its fact-check box."""
    body = marked(
        s.text,
        fc.unsupported,
        lambda t: "\n".join(md_escape(line) for line in t.split("\n")),
        lambda t: f"**{MARK} {md_escape(t)}**",
    )
    lines = [f"> {line}" if line.strip() else ">" for line in body.split("\n")]
    lines += ["", f"**{fact_check_note(fc)}**" if fc.unsupported else fact_check_note(fc)]
    if fc.unsupported:
        lines += ["", *(f"- {c.kind} {md_escape(c.value)}: {VERIFY}" for c in fc.unsupported)]
    return lines


def _html_summary(s: Summary, fc: FactCheck) -> str:
    """A summary as preformatted text with its unsupported claims marked, then its box."""
    e = html.escape
    body = marked(
        s.text, fc.unsupported, e, lambda t: f'<mark title="{VERIFY}">{MARK} {e(t)}</mark>'
    )
    box = f"<p>{e(fact_check_note(fc))}</p>"
    if fc.unsupported:
        items = "".join(f"<li>{e(c.kind)} {e(c.value)}: {VERIFY}</li>" for c in fc.unsupported)
        box = f'<div class="factcheck"><p><strong>{e(fact_check_note(fc))}</strong></p>'
        box += f"<ul>{items}</ul></div>"
    return f"<pre>{body}</pre>{box}"


def _scripts(report: Report) -> Iterable[tuple[Host, Port | None, str, str]]:
    for h in report.hosts:
        for s in h.scripts:
            yield h, None, s.id, s.output
        for p in h.ports:
            for s in p.scripts:
                yield h, p, s.id, s.output


def _service_text(p: Port) -> str:
    return " ".join(x for x in (p.product, p.version, p.extrainfo) if x)


def _host_status(h: Host) -> str:
    return "timed out (ports unknown)" if h.timed_out else h.status


def report_markdown(
    report: Report,
    summaries: Sequence[Summary] = (),
    bases: Mapping[str, Report] | None = None,
) -> str:
    """A Markdown report: headline, summaries and their fact checks, hosts, ports, scripts.

    ``bases`` holds the earlier reports of diff summaries, by id, to check their claims against.
    """
    e = md_escape
    lines = [
        f"# ScanScribe report {e(report.id)}",
        "",
        f"- Targets: {e(', '.join(report.targets)) or '—'}",
        f"- Profile or source: {e(report.profile or report.source)}",
        f"- Started: {_when(report.started_at)}; finished: {_when(report.finished_at)}",
        f"- nmap version: {e(report.nmap_version) or '—'}",
        f"- Hosts up: {report.hosts_up} of {len(report.hosts)}; open ports: "
        f"{report.open_port_count}",
    ]
    if not report.complete:
        lines.append(f"- Incomplete: {e(report.note)}")
    if report.args:
        lines += ["", "nmap command line:", "", md_code(report.args)]
    lines += ["", "## Executive summaries", ""]
    if not summaries:
        lines.append("No summary saved for this report.")
    for s, fc in zip(summaries, _checks(report, summaries, bases), strict=True):
        lines += [
            f"### {e(s.model)}, {e(s.audience)} ({e(s.status)}, {_when(s.created_at)})",
            "",
            *_md_summary(s, fc),
            "",
        ]
    lines += [
        "",
        "## Hosts",
        "",
        "| Address | Hostnames | Status | OS | Open ports | Risk | Why |",
        "|---|---|---|---|---|---|---|",
    ]
    for h in report.hosts:
        r = host_risk(h)
        lines.append(
            f"| {e(h.address)} | {e(', '.join(h.hostnames))} | {e(_host_status(h))} | "
            f"{e(h.os_guess)} | {len(h.open_ports)} | {r.level} | {e(r.reason)} |"
        )
    lines += [
        "",
        "## Open ports",
        "",
        "| Host | Port | Service | Product and version | CPE | Risk | Why |",
        "|---|---|---|---|---|---|---|",
    ]
    for h in report.hosts:
        for p in h.open_ports:
            r = port_risk(p, h)
            lines.append(
                f"| {e(h.address)} | {e(p.label)} | {e(p.service)} | {e(_service_text(p))} | "
                f"{e(' '.join(p.cpe))} | {r.level} | {e(r.reason)} |"
            )
    lines += ["", "## CVE findings", ""]
    cves = cve_rows(report)
    if cves:
        lines += ["| " + " | ".join(CVE_HEAD) + " |", "|" + "---|" * len(CVE_HEAD)]
        lines += ["| " + " | ".join(e(cell) for cell in row) + " |" for row in cves]
    else:
        lines.append("The scan's scripts reported no CVE on an open port.")
    lines += ["", "## Script output", ""]
    any_script = False
    for h, sp, sid, output in _scripts(report):
        any_script = True
        where = f"{e(h.address)} {e(sp.label)}" if sp is not None else f"{e(h.address)} (host)"
        lines += [f"### {where}: {e(sid)}", "", md_code(output), ""]
    if not any_script:
        lines.append("No script output.")
    return "\n".join(lines) + "\n"


_CSS = (
    "body{font-family:sans-serif;margin:2em;color:#1d2330}"
    "table{border-collapse:collapse;margin:1em 0}"
    "td,th{border:1px solid #c8ccd4;padding:4px 8px;text-align:left;vertical-align:top}"
    "pre{background:#f3f4f6;padding:8px;white-space:pre-wrap}"
    ".critical{color:#a40000;font-weight:bold}.high{color:#c2410c;font-weight:bold}"
    ".medium{color:#a16207}.low{color:#1d4ed8}.info{color:#4b5563}"
    "mark{background:#fecaca;font-weight:bold}"
    ".factcheck{border:2px solid #c2410c;background:#fff7ed;padding:0 1em;margin:0 0 1em}"
)


def _table(head: Sequence[str], rows: Iterable[Sequence[str]], risk_col: int | None) -> str:
    e = html.escape
    out = ["<table><thead><tr>", *(f"<th>{e(h)}</th>" for h in head), "</tr></thead><tbody>"]
    for row in rows:
        out.append("<tr>")
        for i, cell in enumerate(row):
            cls = f' class="{e(cell)}"' if i == risk_col else ""
            out.append(f"<td{cls}>{e(cell)}</td>")
        out.append("</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def report_html(
    report: Report,
    summaries: Sequence[Summary] = (),
    bases: Mapping[str, Report] | None = None,
) -> str:
    """A standalone HTML report, escaped throughout; ``bases`` as for :func:`report_markdown`."""
    e = html.escape
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        # No scripts, no remote loads: the report stays inert even if a value slipped through.
        "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; "
        "style-src 'unsafe-inline'\">",
        f"<title>ScanScribe report {e(report.id)}</title><style>{_CSS}</style></head><body>",
        f"<h1>ScanScribe report {e(report.id)}</h1><ul>",
        f"<li>Targets: {e(', '.join(report.targets)) or '—'}</li>",
        f"<li>Profile or source: {e(report.profile or report.source)}</li>",
        f"<li>Started: {_when(report.started_at)}; finished: {_when(report.finished_at)}</li>",
        f"<li>nmap version: {e(report.nmap_version) or '—'}</li>",
        f"<li>Hosts up: {report.hosts_up} of {len(report.hosts)}; open ports: "
        f"{report.open_port_count}</li>",
    ]
    if not report.complete:
        parts.append(f"<li>Incomplete: {e(report.note)}</li>")
    parts.append("</ul>")
    if report.args:
        parts.append(f"<p>nmap command line:</p><pre>{e(report.args)}</pre>")
    parts.append("<h2>Executive summaries</h2>")
    if not summaries:
        parts.append("<p>No summary saved for this report.</p>")
    for s, fc in zip(summaries, _checks(report, summaries, bases), strict=True):
        parts.append(
            f"<h3>{e(s.model)}, {e(s.audience)} ({e(s.status)}, {_when(s.created_at)})</h3>"
            + _html_summary(s, fc)
        )
    parts.append("<h2>Hosts</h2>")
    host_rows = []
    for h in report.hosts:
        r = host_risk(h)
        host_rows.append(
            (
                h.address,
                ", ".join(h.hostnames),
                _host_status(h),
                h.os_guess,
                str(len(h.open_ports)),
                r.level,
                r.reason,
            )
        )
    parts.append(
        _table(("Address", "Hostnames", "Status", "OS", "Open ports", "Risk", "Why"), host_rows, 5)
    )
    parts.append("<h2>Open ports</h2>")
    port_rows = []
    for h in report.hosts:
        for p in h.open_ports:
            r = port_risk(p, h)
            port_rows.append(
                (
                    h.address,
                    p.label,
                    p.service,
                    _service_text(p),
                    " ".join(p.cpe),
                    r.level,
                    r.reason,
                )
            )
    parts.append(
        _table(
            ("Host", "Port", "Service", "Product and version", "CPE", "Risk", "Why"), port_rows, 5
        )
    )
    parts.append("<h2>CVE findings</h2>")
    cves = cve_rows(report)
    parts.append(
        _table(CVE_HEAD, cves, None)
        if cves
        else "<p>The scan's scripts reported no CVE on an open port.</p>"
    )
    parts.append("<h2>Script output</h2>")
    any_script = False
    for h, sp, sid, output in _scripts(report):
        any_script = True
        where = f"{h.address} {sp.label}" if sp is not None else f"{h.address} (host)"
        parts.append(f"<h3>{e(where)}: {e(sid)}</h3><pre>{e(output)}</pre>")
    if not any_script:
        parts.append("<p>No script output.</p>")
    parts.append("</body></html>")
    return "\n".join(parts)


def port_json(p: Port) -> dict[str, Any]:
    """One port as the scan command prints it, with the CVEs its scripts reported."""
    return {
        "port": p.port,
        "protocol": p.protocol,
        "state": p.state,
        "reason": p.reason,
        "service": p.service,
        "product": p.product,
        "version": p.version,
        "extrainfo": p.extrainfo,
        "cpe": list(p.cpe),
        "scripts": {s.id: s.output for s in p.scripts},
        "cves": [finding_json(f) for f in by_score(p.cves)],
    }


AUDIT_COLUMNS = (
    "when",
    "who",
    "targets",
    "profile",
    "ports",
    "outcome",
    "finished",
    "report",
    "job",
)


def audit_table(jobs: Sequence[Job]) -> pd.DataFrame:
    """One row per scan job: who started it, when, against what, and how it ended."""
    import pandas as pd

    rows = [
        (
            _when(j.created_at),
            j.owner,
            " ".join(j.targets),
            j.profile,
            j.ports,
            j.status,
            _when(j.finished_at),
            j.report_id or "",
            j.id,
        )
        for j in jobs
    ]
    return pd.DataFrame.from_records(rows, columns=list(AUDIT_COLUMNS))


def audit_csv(jobs: Sequence[Job]) -> str:
    """The audit table as CSV, with cells that could start a spreadsheet formula neutralised."""
    return _inert_csv(audit_table(jobs))


AUDIT_EVENT_COLUMNS = (
    "when",
    "who",
    "role",
    "login",
    "action",
    "target",
    "outcome",
    "detail",
    "from",
)


def audit_events_table(events: Sequence[AuditEvent]) -> pd.DataFrame:
    """One row per audit event, newest first as given."""
    import pandas as pd

    rows = [
        (_when(e.at), e.actor, e.role, e.method, e.action, e.target, e.outcome, e.detail, e.address)
        for e in events
    ]
    return pd.DataFrame.from_records(rows, columns=list(AUDIT_EVENT_COLUMNS))


def audit_events_csv(events: Sequence[AuditEvent]) -> str:
    """The audit trail as CSV; typed names and targets cannot start a spreadsheet formula."""
    return _inert_csv(audit_events_table(events))


def audit_in_span(event: AuditEvent, span: object) -> bool:
    """Whether an event falls in a (start date, end date) pair from a date picker (inclusive)."""
    if not isinstance(span, tuple) or len(span) != 2:
        return True  # the picker is mid-edit: one date chosen so far
    start, end = span
    day = dt.datetime.fromtimestamp(event.at).date()
    return bool(start <= day <= end)
