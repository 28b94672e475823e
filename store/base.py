"""The Store protocol: where reports, scan jobs, summaries and comparisons are kept.

Exceptions::

    StoreError              base class; pages catch this one
    ├── NotFound            no record with that id
    └── StoreUnavailable    the backend cannot be reached or written (locked, disk full, offline)
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from scanner.models import Report, ReportSummary
from store.audit import AuditEvent
from store.identity import HostIdentity
from store.records import Comparison, Job, Summary


class StoreError(Exception):
    """Base class of every store failure."""


class NotFound(StoreError, KeyError):
    """No record of that kind has that id."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "not found"


class StoreUnavailable(StoreError):
    """The backend could not be read or written; nothing was half-written."""


@runtime_checkable
class Store(Protocol):
    """Everything ScanScribe keeps. SQLite and Firestore both implement it."""

    backend: str
    host: HostIdentity  # the machine and boot this handle runs on

    def describe(self) -> str:
        """Where the data lives, for System status."""
        ...

    def health(self) -> dict[str, Any]:
        """A small status dict: ``ok`` plus backend details; never raises."""
        ...

    def save_report(self, report: Report) -> None:
        """Insert or replace a report with its hosts, all or nothing."""
        ...

    def get_report(self, report_id: str) -> Report:
        """The whole report, or NotFound."""
        ...

    def list_reports(self, limit: int | None = None) -> list[ReportSummary]:
        """History rows, newest first."""
        ...

    def delete_report(self, report_id: str) -> None:
        """Remove a report and the summaries made of it, or NotFound."""
        ...

    def save_job(self, job: Job) -> None:
        """Insert or replace a scan job."""
        ...

    def get_job(self, job_id: str) -> Job:
        """One job, or NotFound."""
        ...

    def list_jobs(
        self, statuses: tuple[str, ...] | None = None, limit: int | None = None
    ) -> list[Job]:
        """Jobs, newest first, optionally only those in ``statuses``."""
        ...

    def save_summary(self, summary: Summary) -> None:
        """Insert or replace a summary (called repeatedly while it streams)."""
        ...

    def get_summary(self, summary_id: str) -> Summary:
        """One summary, or NotFound."""
        ...

    def list_summaries(self, report_id: str | None = None) -> list[Summary]:
        """Summaries, newest first; those of one report (or diff base) when given."""
        ...

    def save_comparison(self, comparison: Comparison) -> None:
        """Insert or replace a model comparison."""
        ...

    def get_comparison(self, comparison_id: str) -> Comparison:
        """One comparison, or NotFound."""
        ...

    def list_comparisons(self) -> list[Comparison]:
        """Comparisons, newest first."""
        ...

    def append_audit(self, event: AuditEvent) -> None:
        """Add one event to the append-only audit trail."""
        ...

    def list_audit(
        self,
        actor: str | None = None,
        action: str | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int | None = None,
    ) -> list[AuditEvent]:
        """Audit events, newest first, filtered by who, what and when."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...
