"""Report subcommands of ``python -m scanner``: list, show, diff, import.

Handlers take the parsed arguments (``args.services`` set by the caller) and return the exit
code: 0 success, 2 refused input (an unknown id, a refused file), 1 a runtime failure.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from feeds import open_feed_store
from feeds.match import guess_json, guesses
from feeds.models import Guess
from llm.mdsafe import visible_controls
from scanner import export
from scanner.diff import ReportDiff, diff_reports
from scanner.errors import ImportRefused
from scanner.importer import import_bytes, read_capped
from scanner.models import Host, Port, Report, ReportSummary
from scanner.risk import host_risk, port_risk
from store.base import NotFound, StoreError
from store.records import Summary

if TYPE_CHECKING:
    from services import Services

GuessMap = dict[tuple[str, int, str], list[Guess]]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_REFUSED = 2


def _iso(ts: float | None) -> str | None:
    if not ts:
        return None
    return (
        dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    )


def _table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> str:
    cells = [[str(c) for c in header], *[[str(c) for c in r] for r in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells
    )


def summary_json(s: ReportSummary) -> dict[str, Any]:
    """One history row as ``list --format json`` prints it."""
    return {
        "id": s.id,
        "targets": list(s.targets),
        "profile": s.profile,
        "source": s.source,
        "scanned_at": _iso(s.scanned_at),
        "created_at": _iso(s.created_at),
        "started_at": _iso(s.started_at),
        "finished_at": _iso(s.finished_at),
        "hosts_total": s.hosts_total,
        "hosts_up": s.hosts_up,
        "open_ports": s.open_ports,
        "complete": s.complete,
        "summaries": s.summaries,
    }


def _port_json(p: Port, h: Host, guesses: GuessMap | None = None) -> dict[str, Any]:
    risk = port_risk(p, h)
    # ``cves``: what the scan's scripts reported, apart from what the feeds guess from versions.
    out = {**export.port_json(p), "risk": risk.level, "risk_reason": risk.reason}
    found = guesses.get((h.address, p.port, p.protocol), []) if guesses else []
    out["cve_guesses"] = [guess_json(g) for g in found]
    return out


def report_json(
    report: Report, summaries: int = 0, guesses: GuessMap | None = None
) -> dict[str, Any]:
    """A report as ``show --format json`` prints it: the ``scan`` shape plus risk and CVEs.

    ``guesses`` (from the offline feeds) adds ``cve_guesses`` to every port.
    """
    hosts = []
    for h in report.hosts:
        risk = host_risk(h)
        hosts.append(
            {
                "address": h.address,
                "hostnames": list(h.hostnames),
                "status": h.status,
                "timed_out": h.timed_out,
                "mac": h.mac,
                "vendor": h.vendor,
                "os": [{"name": m.name, "accuracy": m.accuracy} for m in h.os],
                "risk": risk.level,
                "risk_reason": risk.reason,
                "ports": [_port_json(p, h, guesses) for p in h.ports],
                "scripts": {s.id: s.output for s in h.scripts},
            }
        )
    return {
        "id": report.id,
        "targets": list(report.targets),
        "profile": report.profile,
        "source": report.source,
        "started_at": _iso(report.started_at),
        "finished_at": _iso(report.finished_at),
        "nmap_version": report.nmap_version,
        "args": report.args,
        "complete": report.complete,
        "note": report.note,
        "hosts_up": report.hosts_up,
        "open_ports": report.open_port_count,
        "summaries": summaries,
        "hosts": hosts,
    }


def cmd_list(args: argparse.Namespace) -> int:
    """Print the report history, newest scan first; an import also shows when it came in."""
    rows = args.services.store.list_reports(limit=args.limit)
    if args.format == "json":
        print(json.dumps([summary_json(r) for r in rows], indent=2))
        return EXIT_OK
    print(
        _table(
            [
                (
                    r.id,
                    _iso(r.scanned_at) or "",
                    _iso(r.created_at) if r.source != "scan" else "",
                    " ".join(r.targets) or "—",
                    r.profile or r.source,
                    f"{r.hosts_up}/{r.hosts_total}",
                    r.open_ports,
                    r.summaries,
                    "" if r.complete else "incomplete",
                )
                for r in rows
            ],
            (
                "ID",
                "SCANNED",
                "IMPORTED",
                "TARGETS",
                "PROFILE/SOURCE",
                "UP",
                "OPEN",
                "SUMMARIES",
                "",
            ),
        )
    )
    return EXIT_OK


def _get(svc: Services, report_id: str) -> Report | None:
    try:
        report: Report = svc.store.get_report(report_id)
    except NotFound:
        print(
            f"No report with id {report_id!r}; `python -m scanner list` shows them.",
            file=sys.stderr,
        )
        return None
    return report


def _bases(svc: Services, summaries: list[Summary]) -> dict[str, Report]:
    """The earlier reports that diff summaries were checked against, where still stored."""
    found: dict[str, Report] = {}
    for base_id in {s.base_report_id for s in summaries if s.base_report_id}:
        try:
            found[base_id] = svc.store.get_report(base_id)
        except StoreError:
            continue  # gone: the check saved with the summary stands in
    return found


def _guesses(svc: Services, report: Report) -> GuessMap | None:
    """Version guesses from the offline feeds, or None when no feed was imported."""
    store = open_feed_store(svc.config)
    try:
        if not store.imports():
            return None
        return guesses(store, report)
    finally:
        store.close()


def cmd_show(args: argparse.Namespace) -> int:
    """Print one report as JSON, CSV (ports), Markdown, HTML or PDF."""
    svc: Services = args.services
    if args.format == "pdf" and sys.stdout.isatty():
        print("Refused: a PDF is binary; redirect it to a file: ... --format pdf > report.pdf",
              file=sys.stderr)  # fmt: skip
        return EXIT_REFUSED
    report = _get(svc, args.id)
    if report is None:
        return EXIT_REFUSED
    summaries = svc.store.list_summaries(report.id)
    if args.format == "json":
        print(json.dumps(report_json(report, len(summaries), _guesses(svc, report)), indent=2))
    elif args.format == "csv":
        _write_text(export.ports_csv(report))
    elif args.format == "html":
        _write_text(export.report_html(report, summaries, _bases(svc, summaries)))
    elif args.format == "pdf":
        from reporting.pdf import render_pdf

        sys.stdout.flush()
        sys.stdout.buffer.write(render_pdf(report, summaries, _bases(svc, summaries)))
        sys.stdout.buffer.flush()
    else:
        _write_text(export.report_markdown(report, summaries, _bases(svc, summaries)))
    return EXIT_OK


def _write_text(text: str) -> None:
    """Print an export. On a terminal, scan data's carriage returns (nmap writes a banner's as
    ``&#13;``) and any other control character are made visible first, so a banner cannot
    rewrite the lines shown; redirected to a file, the export is written as it is."""
    if sys.stdout.isatty():
        text = visible_controls(text.replace("\r\n", "\n"))
    sys.stdout.write(text)


def diff_table(d: ReportDiff) -> str:
    """A diff as readable text."""
    out = [f"diff {d.old_id} -> {d.new_id}"]
    if d.empty:
        out.append("no changes")
    for title, hosts in (("new hosts", d.new_hosts), ("gone hosts", d.gone_hosts)):
        if hosts:
            out.append(f"\n{title}:")
            out += [
                f"  {h.address} {' '.join(h.hostnames)} ({len(h.open_ports)} open ports)".rstrip()
                for h in hosts
            ]
    for title, ports in (
        ("opened", d.opened),
        ("closed", d.closed),
        ("open, not scanned before", d.newly_scanned_open),
        ("open before, not scanned now", d.not_rescanned),
    ):
        if ports:
            out.append(f"\n{title}:")
            out.append(
                _table(
                    [
                        (
                            p.address,
                            f"{p.port}/{p.protocol}",
                            p.service.text(),
                            p.state_before,
                            p.state_after,
                        )
                        for p in ports
                    ],
                    ("HOST", "PORT", "SERVICE", "BEFORE", "AFTER"),
                )
            )
    if d.changed:
        out.append("\nchanged:")
        out.append(
            _table(
                [
                    (c.address, f"{c.port}/{c.protocol}", c.before.text(), c.after.text())
                    for c in d.changed
                ],
                ("HOST", "PORT", "BEFORE", "AFTER"),
            )
        )
    if d.uncertain:
        out.append("\ntimed out in one of the scans, ports not compared: " + " ".join(d.uncertain))
    return "\n".join(out)


def cmd_diff(args: argparse.Namespace) -> int:
    """Print what changed between two reports."""
    svc: Services = args.services
    old = _get(svc, args.old_id)
    new = _get(svc, args.new_id)
    if old is None or new is None:
        return EXIT_REFUSED
    d = diff_reports(old, new)
    if args.format == "json":
        print(json.dumps(d.as_dict(), indent=2))
    else:
        print(diff_table(d))
    return EXIT_OK


def cmd_import(args: argparse.Namespace) -> int:
    """Import nmap XML files; a refused file is named on stderr and nothing of it is stored."""
    svc: Services = args.services
    imported: list[dict[str, Any]] = []
    refused: list[dict[str, str]] = []
    for name in args.files:
        path = Path(name)
        try:
            data = read_capped(path)
            report = import_bytes(svc.store, data, filename=path.name)
        except ImportRefused as exc:
            refused.append({"file": name, "reason": str(exc)})
            print(f"{name}: refused: {exc}", file=sys.stderr)
            continue
        imported.append(
            {
                "file": name,
                "id": report.id,
                "hosts": len(report.hosts),
                "hosts_up": report.hosts_up,
                "open_ports": report.open_port_count,
                "complete": report.complete,
                "note": report.note,
            }
        )
        if not report.complete:
            print(f"{name}: {report.note}", file=sys.stderr)
    if args.format == "json":
        print(json.dumps({"imported": imported, "refused": refused}, indent=2))
    else:
        for item in imported:
            print(
                f"{item['file']}: imported as {item['id']} ({item['hosts_up']} hosts up, "
                f"{item['open_ports']} open ports{'' if item['complete'] else ', incomplete'})"
            )
    return EXIT_REFUSED if refused else EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the report subcommands to the scanner command line."""
    p = sub.add_parser("list", help="list saved reports, newest scan first")
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.add_argument("--limit", type=int, default=None, help="at most this many reports")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("show", help="print one report as JSON, CSV (ports), Markdown, HTML or PDF")
    p.add_argument("id", metavar="ID")
    p.add_argument("--format", choices=("json", "csv", "md", "html", "pdf"), default="json")
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("diff", help="what changed between two reports")
    p.add_argument("old_id", metavar="OLD_ID")
    p.add_argument("new_id", metavar="NEW_ID")
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.set_defaults(func=cmd_diff)

    p = sub.add_parser("import", help="import nmap XML files as reports")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.set_defaults(func=cmd_import)
