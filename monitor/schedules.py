"""Creating, pausing, resuming and removing schedules, with every input checked before saving.

The pages and the command line call these functions; they never save a schedule whose targets
fall outside the scope, whose cadence is shorter than the minimum, or whose alert addresses are
malformed. The targets are checked again at every run by the scan runner (the scope may shrink).
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from auth.gate import Gate
from auth.policy import Identity
from config import Config
from monitor.cadence import cadence_of, parse_cadence
from monitor.errors import ScheduleRefused
from monitor.models import ALERT_ON, DEFAULT_ALERT_ON, Schedule
from monitor.settings import EMAIL, MonitorSettings
from monitor.storage import MonitorStore
from scanner.errors import TargetRefused
from scanner.nmapbin import is_root
from scanner.profiles import get_profile
from scanner.targets import MAX_PORTS, Resolver, parse_ports, resolve_targets
from store.records import new_id

MAX_NAME = 80
MAX_RECIPIENTS = 20
_MODEL = re.compile(r"^[A-Za-z0-9][\w.:/-]{0,99}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class ScheduleSpec:
    """A schedule as typed on the command line or the Schedules page, not yet checked."""

    name: str
    targets: str
    profile: str
    ports: str = ""
    every: str | None = None
    cron: str | None = None
    tz: str | None = None
    webhooks: tuple[str, ...] = ()
    emails: tuple[str, ...] = ()
    alert_on: tuple[str, ...] = ()
    brief_model: str | None = None


def check_webhook(url: str) -> str:
    """An http(s) URL with a host and nothing else odd, or ScheduleRefused."""
    value = url.strip()
    parts = urlsplit(value)
    try:
        port_ok = parts.port is None or 0 < parts.port < 65536
    except ValueError:
        port_ok = False
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or not port_ok
        or parts.username is not None
        or any(c.isspace() for c in value)
        or _CONTROL.search(value)
    ):
        raise ScheduleRefused(
            f"Webhook URL {value[:200]!r} refused: it must be an http:// or https:// URL with a "
            "host and no user name or password in it, for example "
            "https://hooks.example.com/services/T000/B000/XXXX."
        )
    return value


def check_email(address: str) -> str:
    """One plain address such as soc@example.com, or ScheduleRefused."""
    value = address.strip()
    if not EMAIL.match(value) or len(value) > 254:
        raise ScheduleRefused(
            f"E-mail address {value[:200]!r} refused: give one plain address such as "
            "soc@example.com (no display name, no list)."
        )
    return value


def _check_alert_on(kinds: Sequence[str]) -> tuple[str, ...]:
    chosen = tuple(dict.fromkeys(k.strip() for k in kinds if k.strip())) or DEFAULT_ALERT_ON
    unknown = [k for k in chosen if k not in ALERT_ON]
    if unknown:
        raise ScheduleRefused(
            f"--alert-on {', '.join(unknown)!s} refused: it accepts {', '.join(ALERT_ON)}."
        )
    return chosen


def check_spec(
    spec: ScheduleSpec,
    config: Config,
    settings: MonitorSettings,
    now: float,
    resolver: Resolver | None = None,
    root: Callable[[], bool] = is_root,
) -> Schedule:
    """Check every field of ``spec`` and build the schedule; ScheduleRefused names the problem."""
    name = spec.name.strip()
    if not name or len(name) > MAX_NAME or _CONTROL.search(name):
        raise ScheduleRefused(
            f"Name refused: give 1 to {MAX_NAME} characters on one line (--name NAME)."
        )
    try:
        profile = get_profile(spec.profile)
        if profile.needs_root and not root():
            raise TargetRefused(
                f"Profile {profile.id!r} refused: it needs root for raw packets. Run ScanScribe "
                "as root or pick a profile that does not need it."
            )
        targets = resolve_targets(spec.targets, config.scope, config.max_targets, resolver)
        ports = parse_ports(spec.ports, MAX_PORTS)
    except TargetRefused as exc:
        raise ScheduleRefused(str(exc)) from None
    cadence = parse_cadence(spec.every, spec.cron, spec.tz, settings.min_interval_s, anchor=now)
    webhooks = tuple(dict.fromkeys(check_webhook(u) for u in spec.webhooks))
    emails = tuple(dict.fromkeys(check_email(a) for a in spec.emails))
    if len(webhooks) + len(emails) > MAX_RECIPIENTS:
        raise ScheduleRefused(f"Too many alert recipients: at most {MAX_RECIPIENTS} in all.")
    if emails and settings.smtp is None:
        raise ScheduleRefused(
            "E-mail alerts need a mail server: set SCANSCRIBE_SMTP_URL (smtp://HOST:PORT or "
            "smtps://HOST:PORT), or alert by webhook only."
        )
    brief = (spec.brief_model or "").strip() or None
    if brief is not None and not _MODEL.match(brief):
        raise ScheduleRefused(
            f"--brief {brief[:100]!r} refused: give an Ollama model name such as mistral:7b."
        )
    first = cadence.anchor if cadence.every_s else cadence.next_slot(now)
    return Schedule(
        id=new_id("sched"),
        name=name,
        targets=targets.tokens,
        profile=profile.id,
        ports=ports,
        every_s=cadence.every_s,
        cron=cadence.cron,
        tz=cadence.tz,
        webhooks=webhooks,
        emails=emails,
        alert_on=_check_alert_on(spec.alert_on),
        brief_model=brief,
        created_at=now,
        next_run=first,
    )


def create_schedule(
    store: MonitorStore,
    spec: ScheduleSpec,
    config: Config,
    settings: MonitorSettings,
    *,
    gate: Gate,
    who: Identity | None,
    clock: Callable[[], float] = time.time,
    resolver: Resolver | None = None,
) -> Schedule:
    """Check the spec and save the schedule, owned by ``who`` (an analyst or more)."""
    with gate.action(who, "schedule.create", spec.name[:200]) as me:
        schedule = check_spec(spec, config, settings, clock(), resolver)
        schedule = dataclasses.replace(schedule, owner=me.name)
        store.save_schedule(schedule)
    return schedule


def _manage_action(schedule: Schedule, who: Identity | None) -> str:
    """Analysts manage their own schedules; anyone else's needs an admin."""
    return (
        "schedule.create" if who is not None and who.name == schedule.owner else "schedule.manage"
    )


def set_paused(
    store: MonitorStore,
    schedule_id: str,
    paused: bool,
    *,
    gate: Gate,
    who: Identity | None,
    clock: Callable[[], float] = time.time,
) -> Schedule:
    """Pause a schedule, or resume it from its next slot after now (no catch-up for the pause)."""
    schedule = store.get_schedule(schedule_id)
    verb = "pause" if paused else "resume"
    with gate.action(who, _manage_action(schedule, who), schedule_id, detail=verb):
        if paused:
            schedule = dataclasses.replace(schedule, active=False)
        else:
            cad = cadence_of(schedule.created_at, schedule.every_s, schedule.cron, schedule.tz)
            next_run = cad.next_slot(clock())
            schedule = dataclasses.replace(schedule, active=True, next_run=next_run)
        store.save_schedule(schedule)
    return schedule


def remove_schedule(
    store: MonitorStore, schedule_id: str, *, gate: Gate, who: Identity | None
) -> None:
    """Remove a schedule; its runs and alerts stay as history."""
    schedule = store.get_schedule(schedule_id)
    with gate.action(who, _manage_action(schedule, who), schedule_id, detail="remove"):
        store.delete_schedule(schedule_id)
