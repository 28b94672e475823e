"""``python -m scanner schedule ...`` and ``python -m scanner scheduler``.

Handlers take the parsed arguments (``args.services`` is set by scanner.cli) and return the exit
code: 0 success, 2 refused input (the reason on stderr, nothing saved), 1 a runtime failure.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType
from typing import TYPE_CHECKING, Any

from auth.policy import Forbidden, Identity
from config import ConfigError
from monitor import POLL_S, open_monitor_store
from monitor import settings as settings_mod
from monitor.delivery import redact_url
from monitor.errors import MonitorError, ScheduleRefused
from monitor.models import ALERT_ON, Run, Schedule
from monitor.scheduler import Scheduler
from monitor.schedules import ScheduleSpec, create_schedule, remove_schedule, set_paused
from store.base import NotFound, StoreError

if TYPE_CHECKING:
    from services import Services

EXIT_OK, EXIT_FAILED, EXIT_REFUSED = 0, 1, 2


def _iso(ts: float | None) -> str | None:
    from scanner.cli import iso

    return iso(ts)


def schedule_json(s: Schedule) -> dict[str, Any]:
    """A schedule as the commands print it; webhook URLs keep only scheme, host and port."""
    return {
        "id": s.id,
        "name": s.name,
        "targets": list(s.targets),
        "profile": s.profile,
        "ports": s.ports,
        "cadence": s.cadence_text,
        "every_s": s.every_s,
        "cron": s.cron,
        "tz": s.tz,
        "active": s.active,
        "next_run": _iso(s.next_run) if s.active else None,
        "alert_on": list(s.alert_on),
        "webhooks": [redact_url(u) for u in s.webhooks],
        "emails": list(s.emails),
        "brief": s.brief_model,
        "owner": s.owner,
        "created_at": _iso(s.created_at),
    }


def run_json(r: Run) -> dict[str, Any]:
    """One run: its slot, job, report, status and alerts sent."""
    return {
        "id": r.id,
        "due_at": _iso(r.due_at),
        "status": r.status,
        "job_id": r.job_id,
        "report_id": r.report_id,
        "previous_report_id": r.previous_report_id,
        "alert_id": r.alert_id,
        "alerts_sent": r.delivered,
        "error": r.error,
        "claimed_at": _iso(r.claimed_at),
        "finished_at": _iso(r.finished_at),
    }


def _table(rows: Sequence[tuple[str, ...]], header: tuple[str, ...]) -> str:
    """Columns padded to their widest cell."""
    grid = [header, *rows]
    widths = [max(len(r[i]) for r in grid) for i in range(len(header))]
    lines = ("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in grid)
    return "\n".join(line.rstrip() for line in lines)


def _who(svc: Services) -> Identity:
    """A command line acts as the machine's own user, as the other commands do."""
    return Identity.local(svc.config.user)


def _settings() -> settings_mod.MonitorSettings:
    try:
        return settings_mod.load()
    except ConfigError as exc:
        raise ScheduleRefused(f"ScanScribe cannot start: {exc}") from None


def _guard(fn: Any) -> Any:
    """Turn the monitor's and the store's errors into exit codes and a message on stderr."""

    def wrapped(args: argparse.Namespace) -> int:
        try:
            code: int = fn(args)
            return code
        except (ScheduleRefused, Forbidden) as exc:
            print(str(exc), file=sys.stderr)
            return EXIT_REFUSED
        except NotFound as exc:
            print(f"{exc} List them with: python -m scanner schedule list", file=sys.stderr)
            return EXIT_REFUSED
        except (MonitorError, StoreError) as exc:
            print(str(exc), file=sys.stderr)
            return EXIT_FAILED

    wrapped.__doc__ = fn.__doc__
    return wrapped


@_guard
def cmd_add(args: argparse.Namespace) -> int:
    """Check and save a schedule, then print it."""
    settings = _settings()
    svc = args.services
    alert_on = tuple(k for item in args.alert_on or () for k in item.split(","))
    spec = ScheduleSpec(
        name=args.name,
        targets=" ".join(args.targets),
        profile=args.profile,
        ports=args.ports or "",
        every=args.every,
        cron=args.cron,
        tz=args.tz,
        webhooks=tuple(args.alert_webhook or ()),
        emails=tuple(args.alert_email or ()),
        alert_on=alert_on,
        brief_model=args.brief,
    )
    store = open_monitor_store(svc.config)
    try:
        schedule = create_schedule(store, spec, svc.config, settings, gate=svc.gate, who=_who(svc))
    finally:
        store.close()
    _print_schedules([schedule], args.format, one=True)
    return EXIT_OK


def _print_schedules(schedules: list[Schedule], fmt: str, one: bool = False) -> None:
    if fmt == "json":
        data: Any = schedule_json(schedules[0]) if one else [schedule_json(s) for s in schedules]
        print(json.dumps(data, indent=2))
        return
    rows = [
        (
            s.id,
            s.name,
            "active" if s.active else "paused",
            s.profile,
            " ".join(s.targets),
            s.cadence_text,
            (_iso(s.next_run) or "") if s.active else "—",
        )
        for s in schedules
    ]
    print(_table(rows, ("ID", "NAME", "STATE", "PROFILE", "TARGETS", "CADENCE", "NEXT RUN")))


@_guard
def cmd_list(args: argparse.Namespace) -> int:
    """List the schedules."""
    store = open_monitor_store(args.services.config)
    try:
        _print_schedules(store.list_schedules(), args.format)
    finally:
        store.close()
    return EXIT_OK


def _change(args: argparse.Namespace, what: str) -> int:
    svc = args.services
    store = open_monitor_store(svc.config)
    try:
        if what == "remove":
            remove_schedule(store, args.id, gate=svc.gate, who=_who(svc))
            print(f"schedule {args.id} removed (its runs and alerts are kept)")
            return EXIT_OK
        schedule = set_paused(store, args.id, what == "pause", gate=svc.gate, who=_who(svc))
    finally:
        store.close()
    state = "paused" if not schedule.active else f"active, next run {_iso(schedule.next_run)}"
    print(f"schedule {schedule.id} {state}")
    return EXIT_OK


@_guard
def cmd_pause(args: argparse.Namespace) -> int:
    """Pause a schedule."""
    return _change(args, "pause")


@_guard
def cmd_resume(args: argparse.Namespace) -> int:
    """Resume a paused schedule from its next slot."""
    return _change(args, "resume")


@_guard
def cmd_remove(args: argparse.Namespace) -> int:
    """Remove a schedule."""
    return _change(args, "remove")


@_guard
def cmd_runs(args: argparse.Namespace) -> int:
    """List a schedule's runs, newest first."""
    store = open_monitor_store(args.services.config)
    try:
        store.get_schedule(args.id)
        runs = store.list_runs(args.id)
    finally:
        store.close()
    if args.format == "json":
        print(json.dumps([run_json(r) for r in runs], indent=2))
        return EXIT_OK
    rows = [
        (
            _iso(r.due_at) or "",
            r.status,
            r.job_id or "",
            r.report_id or "",
            str(r.delivered) if r.alert_id else "—",
            r.error[:80],
        )
        for r in runs
    ]
    print(_table(rows, ("DUE", "STATUS", "JOB", "REPORT", "ALERTS SENT", "NOTE")))
    return EXIT_OK


@_guard
def cmd_scheduler(args: argparse.Namespace) -> int:
    """Run the scheduler in the foreground until SIGINT or SIGTERM."""
    settings = _settings()
    svc = args.services
    store = open_monitor_store(svc.config)
    poll = args.poll if args.poll is not None else POLL_S.get(svc.config.store, 0.5)
    scheduler = Scheduler(svc, store, settings, poll_s=poll)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        scheduler.start()
        print("scheduler running; stop it with Ctrl-C", file=sys.stderr, flush=True)
        stop.wait()
    finally:
        scheduler.stop()
        store.close()
        for s, handler in previous.items():
            signal.signal(s, handler)
    return EXIT_OK


def register(sub: Any) -> None:
    """Add ``schedule`` and ``scheduler`` to the ``python -m scanner`` subcommands."""
    p = sub.add_parser("schedule", help="add, list, pause, resume or remove scan schedules")
    ssub = p.add_subparsers(dest="schedule_command", required=True, metavar="ACTION")

    a = ssub.add_parser(
        "add",
        help="scan targets on a cadence and alert on changes",
        description="Targets follow '--'. The targets are checked against the scope now and "
        "again at every run.",
    )
    a.add_argument("targets", nargs="+", metavar="TARGET", help="address, CIDR, range or name")
    a.add_argument("--name", required=True, help="a name for the schedule")
    a.add_argument("--profile", required=True, help="scan profile (python -m scanner profiles)")
    a.add_argument("--ports", default="", help="ports such as 22,80,8000-8100")
    cadence = a.add_mutually_exclusive_group(required=True)
    cadence.add_argument("--every", metavar="DURATION", help="30m, 6h, 1d …")
    cadence.add_argument("--cron", metavar="EXPR", help="5-field cron expression, e.g. '0 3 * * *'")
    a.add_argument("--tz", metavar="ZONE", help="time zone of --cron (default UTC)")
    a.add_argument("--alert-webhook", action="append", metavar="URL", help="POST alerts here")
    a.add_argument("--alert-email", action="append", metavar="ADDR", help="e-mail alerts here")
    a.add_argument(
        "--alert-on",
        action="append",
        metavar="KINDS",
        help=f"comma-separated: {','.join(ALERT_ON)} (default opened,new_host)",
    )
    a.add_argument("--brief", metavar="MODEL", help="add a change brief from this Ollama model")
    a.add_argument("--format", choices=("table", "json"), default="table")
    a.set_defaults(func=cmd_add)

    p_list = ssub.add_parser("list", help="list the schedules")
    p_list.add_argument("--format", choices=("table", "json"), default="table")
    p_list.set_defaults(func=cmd_list)
    for name, func, text in (
        ("pause", cmd_pause, "pause a schedule"),
        ("resume", cmd_resume, "resume a paused schedule"),
        ("remove", cmd_remove, "remove a schedule (runs and alerts are kept)"),
    ):
        q = ssub.add_parser(name, help=text)
        q.add_argument("id", metavar="ID")
        q.set_defaults(func=func)
    r = ssub.add_parser("runs", help="a schedule's runs: due time, job, report, status, alerts")
    r.add_argument("id", metavar="ID")
    r.add_argument("--format", choices=("table", "json"), default="table")
    r.set_defaults(func=cmd_runs)

    s = sub.add_parser("scheduler", help="run the scheduler in the foreground")
    s.add_argument(
        "--poll",
        type=float,
        default=None,
        help="seconds between passes (default 0.5 with SQLite, 5 with Firestore)",
    )
    s.set_defaults(func=cmd_scheduler)
