"""The Store contract: every backend (SQLite, Firestore on the emulator) behaves the same."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest

import config
from scanner.models import Finding
from store.base import NotFound, Store
from store.sqlite import SQLiteStore
from tests.fixtures_firestore import open_firestore
from tests.store_samples import comparison, full_report, job, small_report, summary


@pytest.fixture(params=["sqlite", pytest.param("firestore", marks=pytest.mark.emulator)])
def store(request: pytest.FixtureRequest) -> Iterator[Store]:
    """Each contract test runs once per backend."""
    if request.param == "sqlite":
        s: Store = SQLiteStore(request.getfixturevalue("db_path"))
    else:
        s = open_firestore(request.getfixturevalue("firestore_config"))
    yield s
    s.close()


def test_backend_implements_the_protocol(store: Store) -> None:
    assert isinstance(store, Store)
    health = store.health()
    assert health["ok"] is True
    assert health["backend"] == store.backend
    assert store.describe()


def test_report_round_trip_keeps_every_field(store: Store) -> None:
    report = full_report()
    store.save_report(report)
    back = store.get_report(report.id)
    assert back == report
    assert back.extra == report.extra
    slow = back.host("127.0.0.2")
    assert slow is not None and slow.timed_out and not slow.ports
    web = back.host("127.0.0.1")
    assert web is not None
    assert web.os_guess == "Linux 5.0 - 5.14 (96%)"
    assert web.ports[1].scripts[0].output == "<script>alert(1)</script> Ünïcødé ✓"
    assert back.complete is False


def test_saving_a_report_again_replaces_its_hosts(store: Store) -> None:
    store.save_report(small_report("rep-a", 100.0, hosts=5))
    store.save_report(small_report("rep-a", 100.0, hosts=2))
    back = store.get_report("rep-a")
    assert [h.address for h in back.hosts] == ["127.0.1.1", "127.0.1.2"]
    rows = store.list_reports()
    assert [(r.id, r.hosts_total, r.open_ports) for r in rows] == [("rep-a", 2, 2)]


def test_report_without_a_time_gets_one(store: Store) -> None:
    store.save_report(small_report("rep-now", 0.0))
    assert store.get_report("rep-now").created_at > 1_600_000_000


def test_reports_list_newest_first_with_limit(store: Store) -> None:
    for rid, ts in (("rep-old", 1000.0), ("rep-new", 3000.0), ("rep-mid", 2000.0)):
        store.save_report(small_report(rid, ts, hosts=2))
    rows = store.list_reports()
    assert [r.id for r in rows] == ["rep-new", "rep-mid", "rep-old"]
    assert rows[0].hosts_total == 2 and rows[0].hosts_up == 2 and rows[0].open_ports == 2
    assert [r.id for r in store.list_reports(limit=2)] == ["rep-new", "rep-mid"]


def test_report_list_counts_summaries(store: Store) -> None:
    store.save_report(small_report("rep-1", 1000.0))
    store.save_report(small_report("rep-2", 2000.0))
    store.save_summary(summary("sum-1", "rep-1", 10.0, "a"))
    store.save_summary(summary("sum-2", "rep-1", 11.0, "b"))
    store.save_summary(summary("sum-3", "rep-2", 12.0, "c"))
    counts = {r.id: r.summaries for r in store.list_reports()}
    assert counts == {"rep-1": 2, "rep-2": 1}


def test_delete_removes_the_report_and_its_summaries(store: Store) -> None:
    store.save_report(small_report("rep-gone", 1000.0, hosts=3))
    store.save_report(small_report("rep-kept", 2000.0))
    store.save_summary(summary("sum-gone", "rep-gone", 10.0, "x"))
    store.save_summary(summary("sum-kept", "rep-kept", 11.0, "y"))
    store.delete_report("rep-gone")
    with pytest.raises(NotFound):
        store.get_report("rep-gone")
    with pytest.raises(NotFound):
        store.get_summary("sum-gone")
    assert [r.id for r in store.list_reports()] == ["rep-kept"]
    assert [s.id for s in store.list_summaries()] == ["sum-kept"]
    with pytest.raises(NotFound):
        store.delete_report("rep-gone")


def test_jobs_upsert_and_filter_by_status(store: Store) -> None:
    store.save_job(job("job-1", 100.0, "queued"))
    store.save_job(job("job-2", 200.0, "queued"))
    store.save_job(job("job-3", 300.0, "done"))
    store.save_job(job("job-1", 100.0, "running"))
    assert store.get_job("job-1") == job("job-1", 100.0, "running")
    assert [j.id for j in store.list_jobs()] == ["job-3", "job-2", "job-1"]
    active = store.list_jobs(statuses=("queued", "running"))
    assert [(j.id, j.status) for j in active] == [("job-2", "queued"), ("job-1", "running")]
    assert [j.id for j in store.list_jobs(statuses=("done",))] == ["job-3"]
    assert [j.id for j in store.list_jobs(limit=1)] == ["job-3"]
    assert [j.id for j in store.list_jobs(statuses=("queued", "running"), limit=1)] == ["job-2"]
    assert store.list_jobs(statuses=("cancelled",)) == []


def test_summary_saved_while_streaming_stays_one_record(store: Store) -> None:
    text = ""
    for word in ("Two", " hosts", " expose", " SSH", "."):
        text += word
        store.save_summary(summary("sum-live", "rep-1", 50.0, text))
    store.save_summary(summary("sum-live", "rep-1", 50.0, text, status="complete"))
    rows = store.list_summaries("rep-1")
    assert [(s.id, s.text, s.status) for s in rows] == [
        ("sum-live", "Two hosts expose SSH.", "complete")
    ]
    assert store.get_summary("sum-live") == summary(
        "sum-live", "rep-1", 50.0, "Two hosts expose SSH.", status="complete"
    )


def test_summaries_of_a_report_include_its_diffs(store: Store) -> None:
    store.save_summary(summary("sum-a", "rep-1", 10.0, "one"))
    store.save_summary(summary("sum-diff", "rep-2", 20.0, "diff", base_report_id="rep-1"))
    store.save_summary(summary("sum-other", "rep-3", 30.0, "other"))
    assert [s.id for s in store.list_summaries("rep-1")] == ["sum-diff", "sum-a"]
    assert [s.id for s in store.list_summaries()] == ["sum-other", "sum-diff", "sum-a"]
    assert store.list_summaries("rep-none") == []


def test_comparisons_round_trip(store: Store) -> None:
    first = comparison("cmp-1", "rep-1", 100.0)
    store.save_comparison(first)
    store.save_comparison(comparison("cmp-2", "rep-1", 200.0))
    assert store.get_comparison("cmp-1") == first
    judged = dataclasses.replace(first, winner="tie", note="both fine")
    store.save_comparison(judged)
    assert store.get_comparison("cmp-1") == judged
    assert [c.id for c in store.list_comparisons()] == ["cmp-2", "cmp-1"]


@pytest.mark.parametrize(
    "call",
    ["get_report", "get_job", "get_summary", "get_comparison", "delete_report"],
)
def test_unknown_ids_raise_not_found(store: Store, call: str) -> None:
    with pytest.raises(NotFound, match="no-such-id"):
        getattr(store, call)("no-such-id")


def test_records_survive_reopening(store: Store, request: pytest.FixtureRequest) -> None:
    store.save_report(full_report())
    store.save_summary(summary("sum-1", "rep-full", 10.0, "kept"))
    if store.backend == "sqlite":
        again: Store = SQLiteStore(request.getfixturevalue("db_path"))
    else:
        cfg: config.Config = request.getfixturevalue("firestore_config")
        again = open_firestore(cfg)
    try:
        assert again.get_report("rep-full") == full_report()
        assert again.get_summary("sum-1").text == "kept"
    finally:
        again.close()


def test_vulnerability_findings_round_trip(store: Store) -> None:
    findings = (
        Finding("CVE-2017-0143", 9.8, True, "smb-vuln-ms17-010", "VULNERABLE", "SMBv1 RCE ✓"),
        Finding("CVE-2012-2532", None, False, "vulscan", "", "<b>IIS</b> FTP"),
    )
    base = full_report("rep-cves")
    web = base.hosts[0]
    ports = (dataclasses.replace(web.ports[0], cves=findings), *web.ports[1:])
    report = dataclasses.replace(
        base, hosts=(dataclasses.replace(web, ports=ports), *base.hosts[1:])
    )
    store.save_report(report)
    back = store.get_report("rep-cves")
    assert back == report
    assert back.hosts[0].ports[0].cves == findings
    assert back.hosts[0].ports[1].cves == ()
