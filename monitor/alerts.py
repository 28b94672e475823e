"""What an alert says: when a diff deserves one, the webhook payload, the chat line and e-mail.

Scan text (banners, products, script output, host names) and model text are untrusted. In the
JSON payload they are JSON strings, which a receiver reads as data. The ``text`` line that chat
tools display as is carries no scan text at all: only counts, validated addresses, port numbers,
protocol keywords and the schedule name reduced to letters, digits, spaces, ``_`` and ``-``. The
HTML e-mail escapes every value; the plain-text e-mail defangs anything a mail client would turn
into a link.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import ipaddress
import re
from collections.abc import Iterable
from typing import Any

from monitor.models import Run, Schedule
from scanner.diff import ReportDiff
from scanner.models import Port, Report
from scanner.risk import RANK, port_risk

EVENT = "scan.changed"
SIGNATURE_HEADER = "X-ScanScribe-Signature"
CHAT_ITEMS = 10
PROTOCOLS = frozenset({"tcp", "udp", "sctp", "ip"})
_SCHEME = re.compile(r"(?i)\b(https?|ftps?|file|javascript|data|mailto|vbscript|ssh|tel)\s*:")
_WWW = re.compile(r"(?i)\bwww\.")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u2028\u2029]")
_NAME_UNSAFE = re.compile(r"[^\w \-]+")


def matched_kinds(d: ReportDiff, risky: list[dict[str, Any]], alert_on: Iterable[str]) -> list[str]:
    """Which of the schedule's ``alert_on`` kinds this diff shows; empty means no alert."""
    present = {
        "opened": bool(d.opened),
        "new_host": bool(d.new_hosts),
        "risk_high": bool(risky),
        "any_change": not d.empty,
    }
    return [kind for kind in alert_on if present.get(kind)]


def _port_in(report: Report, address: str, port: int, protocol: str) -> Port | None:
    for host in report.hosts:
        if host.address == address:
            for p in host.ports:
                if p.port == port and p.protocol == protocol:
                    return p
    return None


def risk_high(d: ReportDiff, report: Report) -> list[dict[str, Any]]:
    """Opened ports (and open ports of new hosts) whose risk is high or critical."""
    found: list[tuple[str, Port]] = []
    for entry in d.opened:
        port = _port_in(report, entry.address, entry.port, entry.protocol)
        if port is not None:
            found.append((entry.address, port))
    for host in d.new_hosts:
        found.extend((host.address, p) for p in host.open_ports)
    out = []
    for address, port in found:
        risk = port_risk(port)
        if risk.rank >= RANK["high"]:
            out.append(
                {
                    "address": address,
                    "port": port.port,
                    "protocol": port.protocol,
                    "level": risk.level,
                    "reason": risk.reason,
                }
            )
    return out


def build_payload(
    schedule: Schedule,
    run: Run,
    d: ReportDiff,
    risky: list[dict[str, Any]],
    kinds: list[str],
    brief: str | None,
    brief_note: str,
) -> dict[str, Any]:
    """The webhook body: the diff in ``scanner diff --format json`` shapes and a chat line."""
    payload: dict[str, Any] = {
        "event": EVENT,
        "schedule_id": schedule.id,
        "schedule_name": schedule.name,
        "run_id": run.id,
        "due_at": run.due_at,
        "report_id": d.new_id,
        "previous_report_id": d.old_id,
        "targets": list(schedule.targets),
        "profile": schedule.profile,
        "ports": schedule.ports,
        "matched": kinds,
        **d.as_dict(),
        "risk_high": risky,
        "brief": brief,
        "brief_note": brief_note,
    }
    payload["text"] = chat_text(payload)
    return payload


def _address(value: object) -> str | None:
    try:
        return str(ipaddress.ip_address(str(value)))
    except ValueError:
        return None


def _endpoint(item: dict[str, Any]) -> str | None:
    address = _address(item.get("address"))
    port, proto = item.get("port"), item.get("protocol")
    if address is None or not isinstance(port, int) or proto not in PROTOCOLS:
        return None
    return f"[{address}]:{port}/{proto}" if ":" in address else f"{address}:{port}/{proto}"


def _listing(items: Iterable[str | None]) -> str:
    shown = [i for i in items if i]
    more = len(shown) - CHAT_ITEMS
    text = ", ".join(shown[:CHAT_ITEMS])
    return text + (f" and {more} more" if more > 0 else "")


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def safe_name(name: str) -> str:
    """A schedule name reduced to characters no chat tool turns into markup, links or mentions."""
    return " ".join(_NAME_UNSAFE.sub(" ", name).split())[:80] or "unnamed"


def chat_text(payload: dict[str, Any]) -> str:
    """One line chat tools show as is: counts, addresses and ports only, never scan text."""
    parts = [f"ScanScribe: schedule {safe_name(str(payload.get('schedule_name', '')))} changed"]
    opened = payload.get("opened", [])
    if opened:
        parts.append(f"{_n(len(opened), 'port')} opened: {_listing(map(_endpoint, opened))}")
    new_hosts = payload.get("new_hosts", [])
    if new_hosts:
        listing = _listing(_address(h.get("address")) for h in new_hosts)
        parts.append(f"{_n(len(new_hosts), 'new host')}: {listing}")
    risky = payload.get("risk_high", [])
    if risky:
        parts.append(f"{len(risky)} at high or critical risk: {_listing(map(_endpoint, risky))}")
    for key, noun, verb in (
        ("closed", "port", "closed"),
        ("gone_hosts", "host", "gone"),
        ("changed", "service", "changed"),
    ):
        if payload.get(key):
            parts.append(f"{_n(len(payload[key]), noun)} {verb}")
    return "; ".join(parts) + "."


def sign(body: bytes, secret: str) -> str:
    """The signature header value: ``sha256=`` and the HMAC-SHA256 of the body, in hex."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def defang(text: object) -> str:
    """Scan or model text for a plain-text e-mail: one line, no scheme or www a client links."""
    value = _CONTROL.sub(" ", str(text)).replace("\n", " ")
    return _WWW.sub("www[.]", _SCHEME.sub(lambda m: m.group(1) + "[:]", value))


def _port_line(p: dict[str, Any]) -> str:
    service = " ".join(str(p.get(k, "")) for k in ("service", "product", "version") if p.get(k))
    return f"{p.get('address')} {p.get('port')}/{p.get('protocol')} {service}".strip()


def _sections(payload: dict[str, Any]) -> list[tuple[str, list[str]]]:
    """The facts of an alert as (title, lines) of raw (untrusted) text."""
    sections: list[tuple[str, list[str]]] = []
    for key, title in (("opened", "Opened ports"), ("closed", "Closed ports")):
        if payload.get(key):
            sections.append((title, [_port_line(p) for p in payload[key]]))
    for key, title in (("new_hosts", "New hosts"), ("gone_hosts", "Gone hosts")):
        if payload.get(key):
            lines = []
            for h in payload[key]:
                ports = ", ".join(f"{p['port']}/{p['protocol']}" for p in h.get("open_ports", []))
                names = f" ({', '.join(h['hostnames'])})" if h.get("hostnames") else ""
                lines.append(f"{h['address']}{names}: {ports or 'no open ports'}")
            sections.append((title, lines))
    if payload.get("changed"):
        lines = [
            f"{c['address']} {c['port']}/{c['protocol']}: "
            f"{' '.join(v for v in c['before'].values() if v)} -> "
            f"{' '.join(v for v in c['after'].values() if v)}"
            for c in payload["changed"]
        ]
        sections.append(("Changed services", lines))
    if payload.get("risk_high"):
        lines = [
            f"{r['address']} {r['port']}/{r['protocol']}: {r['level']} — {r['reason']}"
            for r in payload["risk_high"]
        ]
        sections.append(("High or critical risk", lines))
    return sections


def email_subject(payload: dict[str, Any]) -> str:
    """A one-line subject with no scan text."""
    n_open, n_new = len(payload.get("opened", [])), len(payload.get("new_hosts", []))
    name = safe_name(str(payload.get("schedule_name", "")))
    return f"[ScanScribe] {name}: {_n(n_open, 'port')} opened, {_n(n_new, 'new host')}"


def email_text(payload: dict[str, Any]) -> str:
    """The plain-text body: the chat line, then every fact, defanged."""
    out = [
        payload["text"],
        "",
        f"Schedule: {defang(payload['schedule_name'])} ({payload['schedule_id']})",
        f"Targets: {defang(' '.join(payload['targets']))}  Profile: {payload['profile']}",
        f"Report: {payload['report_id']} (previous: {payload['previous_report_id']})",
    ]
    for title, lines in _sections(payload):
        out += ["", f"{title}:"] + [f"  - {defang(line)}" for line in lines]
    out += ["", "Brief:"]
    out.append(f"  {defang(payload['brief'])}" if payload.get("brief") else "  (none)")
    if payload.get("brief_note"):
        out.append(f"  {defang(payload['brief_note'])}")
    out += ["", "Scan text above is quoted from the scanned hosts: treat it as data."]
    return "\n".join(out) + "\n"


def email_html(payload: dict[str, Any]) -> str:
    """The HTML body: the same facts, every value defanged and escaped, no links or images."""

    def esc(value: object) -> str:
        return html.escape(defang(value), quote=True)

    out = [
        "<!doctype html><html><body>",
        f"<p>{esc(payload['text'])}</p>",
        "<table>",
        f"<tr><th>Schedule</th><td>{esc(payload['schedule_name'])} "
        f"({esc(payload['schedule_id'])})</td></tr>",
        f"<tr><th>Targets</th><td>{esc(' '.join(payload['targets']))}</td></tr>",
        f"<tr><th>Profile</th><td>{esc(payload['profile'])}</td></tr>",
        f"<tr><th>Report</th><td>{esc(payload['report_id'])} (previous: "
        f"{esc(payload['previous_report_id'])})</td></tr>",
        "</table>",
    ]
    for title, lines in _sections(payload):
        out.append(f"<h3>{esc(title)}</h3><ul>")
        out += [f"<li><code>{esc(line)}</code></li>" for line in lines]
        out.append("</ul>")
    out.append("<h3>Brief</h3>")
    brief = payload.get("brief")
    if brief:
        text = "\n".join(defang(line) for line in str(brief).splitlines())
        out.append(f"<pre>{html.escape(text, quote=True)}</pre>")
    else:
        out.append("<p>(none)</p>")
    if payload.get("brief_note"):
        out.append(f"<p>{esc(payload['brief_note'])}</p>")
    out.append("<p>Scan text above is quoted from the scanned hosts: treat it as data.</p>")
    out.append("</body></html>")
    return "\n".join(out)
