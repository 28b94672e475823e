"""The one place where reports and records become plain dicts (JSON, Firestore) and back."""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

import orjson

from scanner.models import Finding, Host, OSMatch, Port, Report, Script
from store.records import Comparison, Job, Summary

R = TypeVar("R", Job, Summary, Comparison)


def _scripts(scripts: tuple[Script, ...]) -> list[list[str]]:
    return [[s.id, s.output] for s in scripts]


def port_to_dict(p: Port) -> dict[str, Any]:
    """A port as a compact dict; empty fields are left out."""
    d: dict[str, Any] = {"port": p.port, "protocol": p.protocol, "state": p.state}
    for name in ("reason", "service", "product", "version", "extrainfo"):
        value = getattr(p, name)
        if value:
            d[name] = value
    if p.cpe:
        d["cpe"] = list(p.cpe)
    if p.scripts:
        d["scripts"] = _scripts(p.scripts)
    if p.cves:
        d["cves"] = [[f.id, f.cvss, f.exploit, f.source, f.state, f.evidence] for f in p.cves]
    return d


def host_to_dict(h: Host) -> dict[str, Any]:
    """A host as a compact dict; empty fields are left out."""
    d: dict[str, Any] = {"address": h.address, "addrtype": h.addrtype, "status": h.status}
    if h.reason:
        d["reason"] = h.reason
    if h.hostnames:
        d["hostnames"] = list(h.hostnames)
    if h.mac:
        d["mac"] = h.mac
    if h.vendor:
        d["vendor"] = h.vendor
    if h.timed_out:
        d["timed_out"] = True
    if h.os:
        d["os"] = [[m.name, m.accuracy] for m in h.os]
    if h.ports:
        d["ports"] = [port_to_dict(p) for p in h.ports]
    if h.scripts:
        d["scripts"] = _scripts(h.scripts)
    return d


def _script(item: Any) -> Script:
    """A script from either stored shape: ``[id, output]`` or ``{"id": .., "output": ..}``."""
    if isinstance(item, dict):
        return Script(item["id"], item["output"])
    return Script(item[0], item[1])


def _os_match(item: Any) -> OSMatch:
    """An OS match from either stored shape: ``[name, accuracy]`` or a dict."""
    if isinstance(item, dict):
        return OSMatch(item["name"], int(item["accuracy"]))
    return OSMatch(item[0], int(item[1]))


def _finding(item: Any) -> Finding:
    """A finding from either stored shape: a list in field order or a dict (orjson's)."""
    if isinstance(item, dict):
        item = [item.get(k) for k in ("id", "cvss", "exploit", "source", "state", "evidence")]
    fid, cvss, exploit, source, state, evidence = (list(item) + [None] * 6)[:6]
    return Finding(
        str(fid),
        None if cvss is None else float(cvss),
        bool(exploit),
        source or "",
        state or "",
        evidence or "",
    )


def port_from_dict(d: dict[str, Any]) -> Port:
    """Inverse of :func:`port_to_dict`."""
    return Port(
        port=int(d["port"]),
        protocol=d["protocol"],
        state=d["state"],
        reason=d.get("reason", ""),
        service=d.get("service", ""),
        product=d.get("product", ""),
        version=d.get("version", ""),
        extrainfo=d.get("extrainfo", ""),
        cpe=tuple(d.get("cpe", ())),
        scripts=tuple(_script(x) for x in d.get("scripts", ())),
        # Reports saved before findings were parsed have none; they read as an empty tuple.
        cves=tuple(_finding(x) for x in d.get("cves") or ()),
    )


def host_from_dict(d: dict[str, Any]) -> Host:
    """Inverse of :func:`host_to_dict`."""
    return Host(
        address=d["address"],
        addrtype=d.get("addrtype", "ipv4"),
        status=d.get("status", "up"),
        reason=d.get("reason", ""),
        hostnames=tuple(d.get("hostnames", ())),
        mac=d.get("mac", ""),
        vendor=d.get("vendor", ""),
        timed_out=bool(d.get("timed_out", False)),
        os=tuple(_os_match(x) for x in d.get("os", ())),
        ports=tuple(port_from_dict(p) for p in d.get("ports", ())),
        scripts=tuple(_script(x) for x in d.get("scripts", ())),
    )


def report_meta(r: Report) -> dict[str, Any]:
    """Everything about a report except its hosts."""
    return {
        "id": r.id,
        "targets": list(r.targets),
        "profile": r.profile,
        "source": r.source,
        "started_at": r.started_at,
        "finished_at": r.finished_at,
        "nmap_version": r.nmap_version,
        "args": r.args,
        "complete": r.complete,
        "note": r.note,
        "created_at": r.created_at,
        "owner": r.owner,
        "extra": r.extra,
    }


def report_to_dict(r: Report) -> dict[str, Any]:
    """A whole report as a JSON-ready dict."""
    d = report_meta(r)
    d["hosts"] = [host_to_dict(h) for h in r.hosts]
    return d


def report_from_meta(meta: dict[str, Any], hosts: list[Host]) -> Report:
    """Rebuild a report from its metadata and its hosts."""
    return Report(
        id=meta["id"],
        hosts=tuple(hosts),
        targets=tuple(meta.get("targets", ())),
        profile=meta.get("profile", ""),
        source=meta.get("source", "scan"),
        started_at=meta.get("started_at"),
        finished_at=meta.get("finished_at"),
        nmap_version=meta.get("nmap_version", ""),
        args=meta.get("args", ""),
        complete=bool(meta.get("complete", True)),
        note=meta.get("note", ""),
        created_at=float(meta.get("created_at") or 0.0),
        owner=meta.get("owner", ""),
        extra=dict(meta.get("extra") or {}),
    )


def report_from_dict(d: dict[str, Any]) -> Report:
    """Inverse of :func:`report_to_dict`."""
    return report_from_meta(d, [host_from_dict(h) for h in d.get("hosts", ())])


def hosts_to_json(hosts: tuple[Host, ...]) -> bytes:
    """The hosts of a report as UTF-8 JSON, every field named.

    orjson writes the frozen dataclasses directly, several times faster than building dicts
    first; saving a 20,000-port report is dominated by this step. The bytes are kept as they
    are (SQLite stores them as a BLOB): decoding 4 MB to ``str`` only to encode it again costs a
    quarter of the serialization time.
    """
    return orjson.dumps(hosts)


def hosts_from_json(text: str | bytes) -> list[Host]:
    """Inverse of :func:`hosts_to_json`; also reads the compact dict shape."""
    return [host_from_dict(h) for h in orjson.loads(text)]


def record_to_dict(rec: Job | Summary | Comparison) -> dict[str, Any]:
    """A job, summary or comparison as a JSON-ready dict (tuples become lists)."""
    d = dataclasses.asdict(rec)
    for k, v in d.items():
        if isinstance(v, tuple):
            d[k] = list(v)
    return d


def record_from_dict(cls: type[R], d: dict[str, Any]) -> R:
    """Inverse of :func:`record_to_dict`; unknown keys are ignored, lists become tuples."""
    names = {f.name: f for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for k, v in d.items():
        if k not in names:
            continue
        if isinstance(v, list) and "tuple" in str(names[k].type):
            v = tuple(v)
        kwargs[k] = v
    return cls(**kwargs)
