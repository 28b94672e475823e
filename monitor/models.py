"""The monitor's records: schedules, their runs, the alerts runs raise and each delivery of one."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, TypeVar

ALERT_ON = ("opened", "new_host", "risk_high", "any_change")
DEFAULT_ALERT_ON = ("opened", "new_host")
RUN_STATES = ("running", "done", "failed", "refused", "skipped", "interrupted")
RUN_FINAL = ("done", "failed", "refused", "skipped", "interrupted")
DELIVERY_STATES = ("pending", "delivered")

R = TypeVar("R", "Schedule", "Run", "Alert", "Delivery")


@dataclass(frozen=True)
class Schedule:
    """A target set scanned with one profile on a cadence, and who to tell about changes."""

    id: str
    name: str
    targets: tuple[str, ...]
    profile: str
    ports: str = ""
    every_s: float | None = None
    cron: str | None = None
    tz: str = "UTC"
    webhooks: tuple[str, ...] = ()
    emails: tuple[str, ...] = ()
    alert_on: tuple[str, ...] = DEFAULT_ALERT_ON
    brief_model: str | None = None
    owner: str = ""
    created_at: float = 0.0
    active: bool = True
    next_run: float = 0.0

    @property
    def cadence_text(self) -> str:
        """``every 30m`` or ``cron 0 3 * * * (Europe/Paris)``."""
        if self.cron:
            return f"cron {self.cron} ({self.tz})"
        return f"every {duration_text(self.every_s or 0.0)}"


@dataclass(frozen=True)
class Run:
    """One slot of a schedule, claimed once by whichever scheduler got there first."""

    id: str
    schedule_id: str
    due_at: float
    status: str = "running"
    claimed_at: float = 0.0
    finished_at: float | None = None
    heartbeat_at: float = 0.0
    job_id: str | None = None
    report_id: str | None = None
    previous_report_id: str | None = None
    alert_id: str | None = None
    delivered: int = 0
    error: str = ""
    host: str = ""
    boot_id: str = ""
    pid: int | None = None
    pid_started: float | None = None


@dataclass(frozen=True)
class Alert:
    """A change worth telling: the webhook payload, and whether someone read it in the app."""

    id: str
    schedule_id: str
    run_id: str
    created_at: float
    payload: dict[str, Any] = field(default_factory=dict)
    read: bool = False


@dataclass(frozen=True)
class Delivery:
    """One alert to one webhook or address; kept until delivered, with every attempt."""

    id: str
    alert_id: str
    channel: str  # "webhook" or "email"
    target: str
    status: str = "pending"
    attempts: int = 0
    rounds: int = 0
    next_attempt_at: float = 0.0
    delivered_at: float | None = None
    last_error: str = ""
    log: tuple[dict[str, Any], ...] = ()


def duration_text(seconds: float) -> str:
    """Seconds in the largest whole unit: ``90s``, ``30m``, ``6h``, ``1d``."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def run_id(schedule_id: str, due_at: float) -> str:
    """The id of a schedule's slot: the same in every process, so a slot is claimed once."""
    return f"{schedule_id}@{round(due_at * 1000)}"


def to_json(rec: Schedule | Run | Alert | Delivery) -> str:
    """A record as JSON text."""
    return json.dumps(dataclasses.asdict(rec), sort_keys=True)


def to_dict(rec: Schedule | Run | Alert | Delivery) -> dict[str, Any]:
    """A record as a JSON-ready dict."""
    return dataclasses.asdict(rec)


def from_dict(cls: type[R], data: dict[str, Any]) -> R:
    """A record from its dict; unknown keys (from a newer version) are ignored."""
    names = {f.name for f in dataclasses.fields(cls)}
    values: dict[str, Any] = {
        k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in names
    }
    return cls(**values)
