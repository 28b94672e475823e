"""Every state-changing action of the dashboard, each passing the gate where it runs.

Pages call these with the authenticated identity; a hidden button is never the control. A
refused action raises :class:`auth.Forbidden`, changes nothing and is recorded in the audit
trail, as are the outcomes of the allowed ones.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from auth.policy import Identity

if TYPE_CHECKING:
    from llm.compare import ComparisonRun
    from llm.summarize import SummaryRun
    from scanner.models import Report
    from services import Services
    from store.records import Comparison, Job


def start_scan(
    svc: Services,
    who: Identity | None,
    targets: str,
    profile: str,
    ports: str = "",
    site: str = "",
) -> Job:
    """Queue a scoped scan owned by ``who`` (on ``site``'s workers when a broker is set)."""
    detail = f"profile {profile} ports {ports}" + (f" site {site}" if site else "")
    with svc.gate.action(who, "scan", targets[:200], detail=detail) as me:
        return svc.runner.submit(targets, profile, ports, owner=me.name, site=site)


def cancel_scan(svc: Services, who: Identity | None, job_id: str) -> Job:
    """Cancel a job: one's own as an analyst, anyone's as an admin."""
    owner = svc.store.get_job(job_id).owner
    with svc.gate.action(who, "cancel", job_id, owner=owner):
        return svc.runner.cancel(job_id)


def import_report(svc: Services, who: Identity | None, data: bytes, filename: str) -> Report:
    """Import an nmap XML file as a report owned by ``who``."""
    from scanner.importer import import_bytes

    with svc.gate.action(who, "import", filename[:200]) as me:
        return import_bytes(svc.store, data, filename=filename, owner=me.name)


def delete_report(svc: Services, who: Identity | None, report_id: str) -> None:
    """Delete a report and its summaries (admins only)."""
    with svc.gate.action(who, "delete", report_id):
        svc.store.delete_report(report_id)


def start_summary(
    svc: Services,
    who: Identity | None,
    report_id: str,
    model: str,
    audience: str,
    base_report_id: str | None = None,
) -> SummaryRun:
    """Start streaming a summary of a report (or of a diff) with ``model``."""
    from llm.summarize import prepare

    target = f"{base_report_id}..{report_id}" if base_report_id else report_id
    with svc.gate.action(who, "summarize", target, detail=f"model {model}") as me:
        return prepare(
            svc.store, svc.llm, report_id, model, audience,
            base_report_id=base_report_id, owner=me.name,
        ).start()  # fmt: skip


def start_comparison(
    svc: Services,
    who: Identity | None,
    report_id: str,
    base_report_id: str | None,
    models: list[str],
    audience: str,
    **kwargs: Any,
) -> ComparisonRun:
    """Start a side-by-side comparison of ``models`` on a report or diff."""
    from llm.compare import ComparisonRun, load_subject

    target = f"{base_report_id}..{report_id}" if base_report_id else report_id
    with svc.gate.action(who, "compare", target, detail="models " + ", ".join(models)) as me:
        subject = load_subject(svc.store, report_id, base_report_id)
        return ComparisonRun(
            svc.llm, svc.store, subject, models, audience, owner=me.name, **kwargs
        ).start()


def save_verdict(
    svc: Services, who: Identity | None, comparison_id: str, winner: str, note: str = ""
) -> Comparison:
    """Record which answer of a comparison is best."""
    from llm.compare import set_verdict

    with svc.gate.action(who, "verdict", comparison_id, detail=f"winner {winner}"):
        return set_verdict(svc.store, comparison_id, winner, note)


def send_outbox(svc: Services, who: Identity | None) -> Any:
    """Send the records waiting in the Firestore outbox now."""
    with svc.gate.action(who, "outbox.send", svc.store.backend):
        sync = getattr(svc.store, "sync_outbox", None)
        return sync() if sync is not None else None


def record_export(svc: Services, who: Identity | None, what: str, target: str) -> None:
    """Allow and record an export (a download of a report, summary or the audit trail)."""
    with svc.gate.action(who, "export", target, detail=what):
        pass
