"""Explained risk: every port and host gets a level with a one-line reason, never a bare score.

The rules live in ``risk_kb.json`` beside this module (data, documented entry by entry). A port
gets the highest level of every rule that matches it: its service, a known-bad product version,
a finding in its NSE script output, or an unidentified service on a high port.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from scanner.models import Finding, Host, Port

KB_PATH = Path(__file__).with_name("risk_kb.json")
LEVELS = ("critical", "high", "medium", "low", "info")
RANK = {level: len(LEVELS) - 1 - i for i, level in enumerate(LEVELS)}


@dataclass(frozen=True, slots=True)
class Risk:
    """A risk level, its rank (critical=4 ... info=0) and the one-line reason behind it."""

    level: str
    rank: int
    reason: str
    rule: str = ""

    @classmethod
    def of(cls, level: str, reason: str, rule: str = "") -> Risk:
        """A Risk at ``level`` with its rank filled in."""
        return cls(level, RANK[level], reason, rule)


@dataclass(frozen=True, slots=True)
class _ServiceRule:
    id: str
    services: frozenset[str]
    ports: frozenset[int]
    products: tuple[str, ...]
    level: str
    tls_level: str
    why: str


@dataclass(frozen=True, slots=True)
class _PatternRule:
    id: str
    product: re.Pattern[str]
    version: re.Pattern[str]
    cpe: re.Pattern[str] | None
    level: str
    why: str


@dataclass(frozen=True, slots=True)
class _ScriptRule:
    id: str
    pattern: re.Pattern[str]
    level: str
    why: str


class KnowledgeBase:
    """The parsed risk rules."""

    def __init__(self, data: dict[str, Any]) -> None:
        for key in ("services", "versions", "scripts", "unusual_port", "default_open", "not_open"):
            if key not in data:
                raise ValueError(f"risk knowledge base lacks {key!r}")
        self.services = tuple(
            _ServiceRule(
                id=r["id"],
                services=frozenset(s.lower() for s in r.get("services", ())),
                ports=frozenset(int(p) for p in r.get("ports", ())),
                products=tuple(p.lower() for p in r.get("products", ())),
                level=_level(r["level"]),
                tls_level=_level(r.get("tls_level", r["level"])),
                why=r["why"],
            )
            for r in data["services"]
        )
        self.by_service: dict[str, _ServiceRule] = {}
        self.by_port: dict[int, _ServiceRule] = {}
        for rule in self.services:
            for name in rule.services:
                self.by_service.setdefault(name, rule)
            for port in rule.ports:
                self.by_port.setdefault(port, rule)
        self.versions = tuple(
            _PatternRule(
                r["id"],
                re.compile(r["product"]),
                re.compile(r["version"]),
                re.compile(r["cpe"]) if r.get("cpe") else None,
                _level(r["level"]),
                r["why"],
            )
            for r in data["versions"]
        )
        self.scripts = tuple(
            _ScriptRule(r["id"], re.compile(r["pattern"]), _level(r["level"]), r["why"])
            for r in data["scripts"]
        )
        unusual = data["unusual_port"]
        self.unusual_id = unusual["id"]
        self.unusual_min = int(unusual["min_port"])
        self.unusual_level = _level(unusual["level"])
        self.unidentified = frozenset(unusual["unidentified"])
        self.unusual_why = unusual["why"]
        self.default_open = data["default_open"]
        self.not_open = data["not_open"]


def _level(value: str) -> str:
    if value not in RANK:
        raise ValueError(f"unknown risk level {value!r}; use one of {', '.join(LEVELS)}")
    return value


@lru_cache(maxsize=1)
def knowledge_base() -> KnowledgeBase:
    """The knowledge base shipped in ``risk_kb.json``, loaded once."""
    return KnowledgeBase(json.loads(KB_PATH.read_text(encoding="utf-8")))


def _service_rule(kb: KnowledgeBase, port: Port) -> Risk | None:
    name = port.service
    tls = name.startswith("ssl/")
    bare = name[4:] if tls else name
    rule = kb.by_service.get(name.lower()) or kb.by_service.get(bare.lower())
    if rule is None and port.product:
        product = port.product.lower()
        rule = next((r for r in kb.services if any(p in product for p in r.products)), None)
    if rule is None and bare in kb.unidentified:
        rule = kb.by_port.get(port.port)
    if rule is None:
        return None
    level = rule.tls_level if tls else rule.level
    why = rule.why + (" (inside TLS)" if tls and rule.tls_level != rule.level else "")
    return Risk.of(level, why, rule.id)


def _version_rule(kb: KnowledgeBase, port: Port) -> Risk | None:
    for rule in kb.versions:
        if port.product and rule.product.search(port.product) and rule.version.search(port.version):
            return Risk.of(rule.level, rule.why, rule.id)
        if rule.cpe is not None and any(rule.cpe.search(c) for c in port.cpe):
            return Risk.of(rule.level, rule.why, rule.id)
    return None


def _script_rules(kb: KnowledgeBase, scripts: tuple[Any, ...]) -> Risk | None:
    best: Risk | None = None
    for script in scripts:
        for rule in kb.scripts:
            if best is not None and RANK[rule.level] <= best.rank:
                continue
            m = rule.pattern.search(script.output)
            if m:
                why = rule.why.format(script=script.id, match=m.group(0))
                best = Risk.of(rule.level, why, rule.id)
    return best


@lru_cache(maxsize=4096)
def _plain_port_risk(
    port: int,
    protocol: str,
    state: str,
    service: str,
    product: str,
    version: str,
    cpe: tuple[str, ...],
) -> Risk:
    """Risk of a port without scripts; cached because big reports repeat the same few."""
    p = Port(port, protocol, state, service=service, product=product, version=version, cpe=cpe)
    kb = knowledge_base()
    if state != "open":
        return Risk.of(kb.not_open["level"], kb.not_open["why"].format(state=state), "not-open")
    found = [r for r in (_service_rule(kb, p), _version_rule(kb, p)) if r is not None]
    if not found and service in kb.unidentified and port >= kb.unusual_min:
        found.append(
            Risk.of(
                kb.unusual_level, kb.unusual_why.format(port=f"{port}/{protocol}"), kb.unusual_id
            )
        )
    if not found:
        label = service or f"port {port}/{protocol}"
        return Risk.of(
            kb.default_open["level"],
            kb.default_open["why"].format(service=label),
            kb.default_open["id"],
        )
    return max(found, key=lambda r: r.rank)


# A CVE that a script reported on the port with at least this CVSS score makes the port critical.
CRITICAL_CVSS = 9.0
_CVE_ID = re.compile(r"CVE-\d{4}-\d{4,7}")


def _reported_cve_rule(findings: tuple[Finding, ...]) -> Risk | None:
    """Critical when a script reported a CVE scored CVSS 9 or more; the reason names it."""
    severe = sorted(
        (f for f in findings if f.cvss is not None and f.cvss >= CRITICAL_CVSS
         and _CVE_ID.fullmatch(f.id)),
        key=lambda f: (-(f.cvss or 0.0), not f.exploit, f.id),
    )  # fmt: skip
    if not severe:
        return None
    top = severe[0]
    exploit = ", public exploit" if top.exploit else ""
    more = len({f.id for f in severe}) - 1
    tail = f"; {more} more CVE(s) scored 9 or higher" if more else ""
    why = f"{top.id} (CVSS {top.cvss:g}{exploit}) reported by {top.source}{tail}"
    return Risk.of("critical", why, "reported-cve")


def port_risk(port: Port, host: Host | None = None) -> Risk:
    """The risk of one port, with the reason from the highest matching knowledge-base rule."""
    base = _plain_port_risk(
        port.port, port.protocol, port.state, port.service, port.product, port.version, port.cpe
    )
    if port.cves and port.state == "open":
        reported = _reported_cve_rule(port.cves)
        if reported is not None:
            return reported
    if not port.scripts or port.state != "open":
        return base
    found = _script_rules(knowledge_base(), port.scripts)
    if found is not None and found.rank >= base.rank:
        return found
    return base


def host_risk(host: Host) -> Risk:
    """The highest risk of a host's open ports; a timed-out host never looks clean."""
    kb = knowledge_base()
    if host.status != "up":
        return Risk.of("info", f"Host is {host.status}: nothing reachable was found", "host-down")
    best: Risk | None = None
    best_port: Port | None = None
    for port in host.open_ports:
        risk = port_risk(port, host)
        if best is None or risk.rank > best.rank:
            best, best_port = risk, port
    host_scripts = _script_rules(kb, host.scripts) if host.scripts else None
    if host_scripts is not None and (best is None or host_scripts.rank > best.rank):
        best, best_port = host_scripts, None
    if host.timed_out:
        note = "Host timed out: the scan stopped before finishing, so its open ports are unknown"
        if best is None or best.rank < RANK["medium"]:
            return Risk.of("medium", note + "; rescan with a longer host timeout", "timed-out")
        return Risk(best.level, best.rank, f"{_where(best_port)}{best.reason} ({note})", best.rule)
    if best is None:
        return Risk.of("info", "No open ports found", "no-open-ports")
    return Risk(best.level, best.rank, f"{_where(best_port)}{best.reason}", best.rule)


def _where(port: Port | None) -> str:
    return f"{port.label}: " if port is not None else "host script: "
