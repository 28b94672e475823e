"""``python -m scanner``: list profiles and jobs, run a scan, and the report subcommands.

Every subcommand handler takes the parsed arguments (with ``args.services`` set to the built
services) and returns the exit code: 0 success, 2 refused input, 1 runtime failure. Every
invocation first recovers jobs a dead process left running, so no nmap outlives its owner.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType
from typing import Any

import config as config_mod
import services as services_mod
from feeds import cli as feeds_cli
from monitor import cli as monitor_cli
from scanner import cli_reports
from scanner.errors import NmapMissing, ScanError, TargetRefused
from scanner.export import port_json
from scanner.models import Host, Report
from scanner.nmapbin import is_root
from scanner.profiles import PROFILES
from scanner.runner import JobRunner
from store.base import StoreError
from store.records import Job
from workers import cli as workers_cli

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_REFUSED = 2


def iso(ts: float | None) -> str | None:
    """An epoch timestamp as ISO 8601 UTC, or None."""
    if ts is None:
        return None
    return (
        dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    )


def host_json(h: Host) -> dict[str, Any]:
    """One host as the scan command prints it; ``timed_out`` hosts are never clean hosts."""
    return {
        "address": h.address,
        "hostnames": list(h.hostnames),
        "status": h.status,
        "timed_out": h.timed_out,
        "os": [{"name": m.name, "accuracy": m.accuracy} for m in h.os],
        "ports": [port_json(p) for p in h.ports],
        "scripts": {s.id: s.output for s in h.scripts},
    }


def scan_json(job: Job, report: Report | None) -> dict[str, Any]:
    """The one object ``scan --format json`` prints."""
    return {
        "id": job.id,
        "report_id": job.report_id,
        "targets": list(job.targets),
        "profile": job.profile,
        "status": job.status,
        "error": job.error,
        "started_at": iso(job.started_at),
        "finished_at": iso(job.finished_at),
        "nmap_version": report.nmap_version if report else "",
        "hosts": [host_json(h) for h in report.hosts] if report else [],
    }


def job_json(job: Job) -> dict[str, Any]:
    """One job as ``jobs --format json`` prints it."""
    return {
        "id": job.id,
        "status": job.status,
        "targets": list(job.targets),
        "profile": job.profile,
        "ports": job.ports,
        "owner": job.owner,
        "created_at": iso(job.created_at),
        "started_at": iso(job.started_at),
        "finished_at": iso(job.finished_at),
        "progress": job.progress,
        "report_id": job.report_id,
        "error": job.error,
    }


def _table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True))
        for row in [header, *rows]
    ]
    return "\n".join(line.rstrip() for line in lines)


def report_table(job: Job, report: Report | None) -> str:
    """A scan result as readable text."""
    out = [
        f"job {job.id}: {job.status}  profile {job.profile}  targets {' '.join(job.targets)}",
    ]
    if job.error:
        out.append(job.error)
    if report is None:
        return "\n".join(out)
    out.append(f"report {report.id}  nmap {report.nmap_version}")
    for h in report.hosts:
        names = f" ({', '.join(h.hostnames)})" if h.hostnames else ""
        if h.timed_out:
            out.append(f"\n{h.address}{names}: host timed out — its ports were not all scanned")
        else:
            out.append(f"\n{h.address}{names}: {h.status}" + (f"  OS {h.os_guess}" if h.os else ""))
        rows = [
            (
                p.label,
                p.state,
                p.service,
                " ".join(x for x in (p.product, p.version, p.extrainfo) if x),
            )
            for p in h.ports
        ]
        if rows:
            out.append(_table(rows, ("PORT", "STATE", "SERVICE", "VERSION")))
        elif not h.timed_out and h.status == "up":
            out.append("no open ports found")
        for p in h.ports:
            for s in p.scripts:
                out.append(f"  {p.label} {s.id}:\n" + _indent(s.output))
        for s in h.scripts:
            out.append(f"  host script {s.id}:\n" + _indent(s.output))
    return "\n".join(out)


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())


# -- subcommands -------------------------------------------------------------------------------
def cmd_profiles(args: argparse.Namespace) -> int:
    """List the profiles with their nmap arguments."""
    if args.format == "json":
        data = [
            {
                "id": p.id,
                "title": p.title,
                "description": p.description,
                "arguments": [*p.args, *p.default_ports, "--host-timeout", p.host_timeout],
                "needs_root": p.needs_root,
                "timeout_s": p.timeout_s,
            }
            for p in PROFILES.values()
        ]
        print(json.dumps(data, indent=2))
        return EXIT_OK
    rows = [
        (p.id, "root" if p.needs_root else "", f"nmap {p.command(is_root())}")
        for p in PROFILES.values()
    ]
    print(_table(rows, ("PROFILE", "NEEDS", "ARGUMENTS")))
    return EXIT_OK


def cmd_jobs(args: argparse.Namespace) -> int:
    """List the jobs, newest first."""
    jobs = args.services.store.list_jobs(limit=args.limit)
    if args.format == "json":
        print(json.dumps([job_json(j) for j in jobs], indent=2))
        return EXIT_OK
    rows = [
        (
            j.id,
            j.status,
            j.profile,
            " ".join(j.targets),
            iso(j.created_at) or "",
            iso(j.started_at) or "",
            iso(j.finished_at) or "",
        )
        for j in jobs
    ]
    print(_table(rows, ("ID", "STATUS", "PROFILE", "TARGETS", "CREATED", "STARTED", "FINISHED")))
    return EXIT_OK


def cmd_scan(args: argparse.Namespace) -> int:
    """Run one scan as a job, wait for it, save and print the report."""
    svc = args.services
    runner: JobRunner = svc.runner
    try:
        job = runner.submit(" ".join(args.targets), args.profile, args.ports or "", site=args.site)
    except TargetRefused as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_REFUSED
    except NmapMissing as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_FAILED
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        # The handler only sets a flag: the cancel itself runs here, outside signal context.
        while True:
            job = runner.wait(job.id, timeout=0.2)
            if job.status in ("done", "failed", "cancelled", "interrupted"):
                break
            if stop.is_set():
                job = runner.cancel(job.id)
                break
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    report = svc.store.get_report(job.report_id) if job.report_id else None
    if args.format == "json":
        print(json.dumps(scan_json(job, report), indent=2))
    else:
        print(report_table(job, report))
    if job.status != "done":
        print(f"scan {job.status}: {job.error}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand, the report ones included."""
    ap = argparse.ArgumentParser(
        prog="python -m scanner",
        description="Run scoped nmap scans and read their reports.",
    )
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("profiles", help="list the scan profiles and their nmap arguments")
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.set_defaults(func=cmd_profiles)

    p = sub.add_parser("jobs", help="list scan jobs with their status")
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.add_argument("--limit", type=int, default=50, help="at most this many jobs (default 50)")
    p.set_defaults(func=cmd_jobs)

    p = sub.add_parser(
        "scan",
        help="scan targets with a profile, save and print the report",
        description="Targets may follow '--'. SIGINT or SIGTERM cancels the scan.",
    )
    p.add_argument("targets", nargs="+", metavar="TARGET", help="address, CIDR, range or name")
    p.add_argument("--profile", required=True, choices=tuple(PROFILES), help="scan profile")
    p.add_argument("--ports", default="", help="ports such as 22,80,8000-8100")
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.add_argument("--site", default="", help="the workers' site (with SCANSCRIBE_BROKER)")
    p.set_defaults(func=cmd_scan)

    cli_reports.register(sub)
    monitor_cli.register(sub)
    feeds_cli.register(sub)
    workers_cli.register(sub)
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line, recover dead jobs, run the subcommand and return its exit code."""
    args = build_parser().parse_args(argv)
    try:
        cfg = config_mod.load()
    except config_mod.ConfigError as exc:
        print(f"ScanScribe cannot start: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    try:
        svc = services_mod.build(cfg)
    except config_mod.ConfigError as exc:  # SCANSCRIBE_BROKER, read when the runner is built
        print(f"ScanScribe cannot start: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    except StoreError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_FAILED
    try:
        svc.runner  # noqa: B018  -- building the runner recovers jobs a dead process left
        args.services = svc
        code: int = args.func(args)
        return code
    except ScanError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_REFUSED if isinstance(exc, TargetRefused) else EXIT_FAILED
    except StoreError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_FAILED
    finally:
        svc.close()
