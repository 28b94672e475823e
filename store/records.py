"""Records kept by the store beside scan reports: scan jobs, summaries and model comparisons."""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

JOB_STATES = ("queued", "running", "done", "failed", "cancelled", "interrupted")
JOB_ACTIVE = ("queued", "running")
SUMMARY_STATES = ("streaming", "complete", "stopped", "failed", "interrupted")


def pid_alive(pid: int) -> bool:
    """True when a process with this id exists (a job's or a summary's writer, say)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, owned by someone else
    return True


def new_id(prefix: str) -> str:
    """A sortable, unique id chosen by the app, so a retried write never duplicates."""
    return f"{prefix}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class Job:
    """One scan job, recorded before nmap starts and updated until it ends."""

    id: str
    targets: tuple[str, ...]
    profile: str
    ports: str = ""
    status: str = "queued"
    owner: str = ""
    created_at: float = 0.0
    started_at: float | None = None
    finished_at: float | None = None
    progress: float = 0.0
    eta_s: float | None = None
    task: str = ""
    pid: int | None = None
    pgid: int | None = None
    runner_pid: int | None = None
    # The machine and boot of runner_pid and pgid: they name processes only there and then.
    runner_machine: str = ""
    runner_boot: str = ""
    report_id: str | None = None
    error: str = ""
    # With a broker (SCANSCRIBE_BROKER): the site whose workers run the job, and which try it is.
    site: str = ""
    attempt: int = 1


@dataclass(frozen=True)
class Summary:
    """One executive summary of a report (or of the diff of two), saved while it streams."""

    id: str
    report_id: str
    model: str
    audience: str
    base_report_id: str | None = None
    prompt_version: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    text: str = ""
    thinking: str = ""
    status: str = "streaming"
    error: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)
    fact_check: dict[str, Any] = field(default_factory=dict)
    owner: str = ""
    created_at: float = 0.0
    updated_at: float = 0.0
    writer_pid: int | None = None
    # The machine and boot of writer_pid: it names a process only there and then.
    writer_machine: str = ""
    writer_boot: str = ""
    # For a diff: which two reports, with their targets and scan times, in one line.
    compares: str = ""


@dataclass(frozen=True)
class Comparison:
    """Several models' answers to the same prompt, with metrics, fact checks and a verdict."""

    id: str
    report_id: str
    audience: str
    models: tuple[str, ...]
    base_report_id: str | None = None
    prompt_version: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    results: tuple[dict[str, Any], ...] = ()
    winner: str | None = None  # a model name, "tie", or None before a verdict
    note: str = ""
    owner: str = ""
    created_at: float = 0.0
    updated_at: float = 0.0
