"""Firestore drills against the emulator: outages, big reports, retries, start-up, settings."""

from __future__ import annotations

import dataclasses
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import firebase_admin
import pytest

import config
import services
from store.base import NotFound, StoreUnavailable
from store.firestore import (
    CHUNK_BYTES,
    OFFLINE_BACKOFF_S,
    FirestoreStore,
    firebase_app,
    split_utf8,
)
from store.serialize import hosts_to_json
from store.sqlite import SQLiteStore
from tests.fixtures_firestore import Emulator, firestore_env, free_port, open_firestore
from tests.store_samples import big_report, comparison, full_report, job, small_report, summary

pytestmark = pytest.mark.emulator
ONE_MIB = 1024 * 1024


class FakeClock:
    """A monotonic clock the test moves by hand, so back-off windows pass without waiting."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def drill_config(own_emulator: Emulator, tmp_path: Path, firestore_project: str) -> config.Config:
    """Firestore on an emulator of this test's own, which the test may take offline."""
    env = firestore_env(own_emulator.host, tmp_path / "outbox.db", firestore_project, timeout="2")
    return config.load(env)


@pytest.fixture
def drill_store(drill_config: config.Config, clock: FakeClock) -> Iterator[FirestoreStore]:
    store = FirestoreStore.from_config(drill_config, SQLiteStore(drill_config.db_path), clock)
    yield store
    store.close()


def fields(doc: dict[str, Any]) -> dict[str, Any]:
    """The plain values of a document as the emulator dumps it."""
    return {k: v.get("value") for k, v in doc["fields"].items()}


def firestore_size(doc: dict[str, Any]) -> int:
    """A document's size by Firestore's rules, from the emulator's dump (strings dominate)."""
    size = len(doc["path"].split("/documents/")[1].encode()) + 16 + 32
    for name, value in doc["fields"].items():
        raw = value.get("value")
        body = raw.encode() if isinstance(raw, str) else json.dumps(raw).encode()
        size += len(name.encode()) + 1 + len(body) + 1
    return size


# -- outage drills ------------------------------------------------------------------------------
def test_outage_keeps_every_write_and_syncs_once_back(
    own_emulator: Emulator, drill_store: FirestoreStore, clock: FakeClock, firestore_project: str
) -> None:
    store = drill_store
    store.save_report(small_report("rep-before", 100.0))
    own_emulator.offline()

    started = time.monotonic()
    store.save_report(full_report("rep-offline", 200.0))
    first_failure_s = time.monotonic() - started
    store.save_job(job("job-offline", 210.0, "running"))
    text = ""
    for word in ("SSH", " is", " exposed", " on", " 127.0.0.1."):
        text += word
        store.save_summary(summary("sum-offline", "rep-offline", 220.0, text))
    store.save_comparison(comparison("cmp-offline", "rep-offline", 230.0))
    all_writes_s = time.monotonic() - started

    # Only the first write waited for Firestore; the rest went straight to the outbox.
    assert first_failure_s < 5
    assert all_writes_s - first_failure_s < 1.0
    pending = {(p.kind, p.doc_id) for p in store.pending()}
    assert pending == {
        ("report", "rep-offline"),
        ("job", "job-offline"),
        ("summary", "sum-offline"),
        ("comparison", "cmp-offline"),
    }
    assert store.is_pending("summary", "sum-offline") and not store.is_pending("report", "x")
    health = store.health()
    assert health["ok"] is False and health["pending"] == 4 and "error" in health
    # What waits in the outbox can still be opened; lists say Firestore is down.
    assert store.get_summary("sum-offline").text == "SSH is exposed on 127.0.0.1."
    assert store.get_report("rep-offline") == full_report("rep-offline", 200.0)
    with pytest.raises(StoreUnavailable, match="Firestore"):
        store.list_reports()

    own_emulator.online()
    result = store.sync_outbox()
    assert (result.sent, result.pending, result.error) == (4, 0, "")
    assert store.pending() == []

    summaries = own_emulator.documents(firestore_project, "executive_summaries")
    assert list(summaries) == ["sum-offline"]
    assert fields(summaries["sum-offline"])["text"] == "SSH is exposed on 127.0.0.1."
    assert set(own_emulator.documents(firestore_project, "scans")) == {"rep-before", "rep-offline"}
    assert list(own_emulator.documents(firestore_project, "scan_jobs")) == ["job-offline"]
    assert list(own_emulator.documents(firestore_project, "model_comparisons")) == ["cmp-offline"]
    assert [r.id for r in store.list_reports()] == ["rep-offline", "rep-before"]
    assert store.get_report("rep-offline") == full_report("rep-offline", 200.0)
    assert store.list_reports()[0].summaries == 1


def test_next_successful_write_sends_what_waited(
    own_emulator: Emulator, drill_store: FirestoreStore, clock: FakeClock, firestore_project: str
) -> None:
    own_emulator.offline()
    drill_store.save_summary(summary("sum-1", "rep-1", 10.0, "written offline"))
    own_emulator.online()
    # Within the back-off window the store does not knock again: the write waits locally too.
    drill_store.save_job(job("job-1", 20.0))
    assert {p.doc_id for p in drill_store.pending()} == {"sum-1", "job-1"}
    clock.advance(OFFLINE_BACKOFF_S + 1)
    drill_store.save_summary(summary("sum-2", "rep-1", 30.0, "written online"))
    assert drill_store.pending() == []
    assert set(own_emulator.documents(firestore_project, "executive_summaries")) == {
        "sum-1",
        "sum-2",
    }
    assert list(own_emulator.documents(firestore_project, "scan_jobs")) == ["job-1"]


def test_newer_copy_is_never_overwritten_by_an_older_pending_one(
    own_emulator: Emulator, drill_store: FirestoreStore, clock: FakeClock, firestore_project: str
) -> None:
    own_emulator.offline()
    drill_store.save_summary(summary("sum-1", "rep-1", 10.0, "partial"))
    own_emulator.online()
    clock.advance(OFFLINE_BACKOFF_S + 1)
    drill_store.save_summary(summary("sum-1", "rep-1", 10.0, "partial and then complete"))
    assert drill_store.sync_outbox().sent == 0
    assert drill_store.get_summary("sum-1").text == "partial and then complete"
    doc = own_emulator.documents(firestore_project, "executive_summaries")["sum-1"]
    assert fields(doc)["text"] == "partial and then complete"


def test_startup_sends_what_an_earlier_process_left_pending(
    own_emulator: Emulator, drill_config: config.Config, firestore_project: str
) -> None:
    first = open_firestore(drill_config)
    own_emulator.offline()
    first.save_summary(summary("sum-left", "rep-1", 10.0, "saved while offline"))
    first.close()
    own_emulator.online()

    second = open_firestore(drill_config)
    try:
        assert second.pending() == []
        assert second.get_summary("sum-left").text == "saved while offline"
        assert list(own_emulator.documents(firestore_project, "executive_summaries")) == [
            "sum-left"
        ]
    finally:
        second.close()


def test_reads_and_deletes_while_down_say_so(
    own_emulator: Emulator, drill_store: FirestoreStore, drill_config: config.Config, tmp_path: Path
) -> None:
    drill_store.save_report(small_report("rep-1", 10.0))
    # Saved by another machine: this one has never read it.
    other = FirestoreStore.from_config(drill_config, SQLiteStore(tmp_path / "other.db"))
    try:
        other.save_report(small_report("rep-elsewhere", 20.0))
    finally:
        other.close()
    own_emulator.offline()
    with pytest.raises(StoreUnavailable, match="did not answer"):
        drill_store.get_report("rep-elsewhere")
    with pytest.raises(StoreUnavailable):
        drill_store.delete_report("rep-1")
    with pytest.raises(StoreUnavailable):
        drill_store.list_summaries()
    # A report this machine saved or read stays readable (to summarize it, say).
    assert drill_store.get_report("rep-1") == small_report("rep-1", 10.0)
    own_emulator.online()
    result = drill_store.sync_outbox()  # the button on System status: tries at once
    assert result.pending == 0
    assert drill_store.get_report("rep-elsewhere") == small_report("rep-elsewhere", 20.0)
    own_emulator.offline()
    assert drill_store.get_report("rep-elsewhere") == small_report("rep-elsewhere", 20.0)


def test_a_deleted_report_leaves_no_local_copy(
    own_emulator: Emulator, drill_store: FirestoreStore, drill_config: config.Config, tmp_path: Path
) -> None:
    drill_store.save_report(small_report("rep-gone", 10.0))
    drill_store.save_report(small_report("rep-elsewhere", 20.0))
    drill_store.delete_report("rep-gone")
    # Deleted by a colleague on another machine: the next read here finds out and forgets it.
    other = FirestoreStore.from_config(drill_config, SQLiteStore(tmp_path / "other.db"))
    try:
        other.delete_report("rep-elsewhere")
    finally:
        other.close()
    with pytest.raises(NotFound):
        drill_store.get_report("rep-elsewhere")
    own_emulator.offline()
    for report_id in ("rep-gone", "rep-elsewhere"):
        with pytest.raises(StoreUnavailable):
            drill_store.get_report(report_id)


def test_unreachable_firestore_fails_within_seconds(tmp_path: Path) -> None:
    env = firestore_env(f"127.0.0.1:{free_port()}", tmp_path / "outbox.db", "demo-unreachable")
    store = open_firestore(config.load(env))
    try:
        started = time.monotonic()
        store.save_summary(summary("sum-1", "rep-1", 10.0, "kept"))
        assert time.monotonic() - started < 6
        assert [p.doc_id for p in store.pending()] == ["sum-1"]
        started = time.monotonic()
        health = store.health()
        assert time.monotonic() - started < 6
        assert health["ok"] is False and health["pending"] == 1
        assert health["emulator_host"] == env["FIRESTORE_EMULATOR_HOST"]
        with pytest.raises(StoreUnavailable):
            store.get_summary("sum-other")
    finally:
        store.close()


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A loopback port that accepts connections and never answers: a stalled Firestore."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
                held.append(conn)
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield int(listener.getsockname()[1])
    stop.set()
    thread.join(timeout=2)
    for conn in held:
        conn.close()
    listener.close()


def test_stalled_firestore_is_given_up_on_after_the_timeout(
    silent_server: int, tmp_path: Path
) -> None:
    env = firestore_env(f"127.0.0.1:{silent_server}", tmp_path / "outbox.db", "demo-stalled", "1")
    store = open_firestore(config.load(env))
    try:
        started = time.monotonic()
        store.save_summary(summary("sum-1", "rep-1", 10.0, "kept"))
        assert time.monotonic() - started < 5
        assert [p.doc_id for p in store.pending()] == ["sum-1"]
    finally:
        store.close()


# -- size, retries, apps ------------------------------------------------------------------------
def test_report_too_big_for_one_document_saves_and_reads_back(
    firestore_emulator: Emulator, firestore_store: FirestoreStore, firestore_project: str
) -> None:
    report = big_report("rep-big", hosts=1200)
    assert len(hosts_to_json(report.hosts)) > 3 * ONE_MIB
    firestore_store.save_report(report)
    assert firestore_store.get_report("rep-big") == report

    dump = firestore_emulator.dump()["projects"][firestore_project]["databases"]["(default)"]
    scan = dump["collections"]["scans"]["documents"]["rep-big"]
    chunks = scan["collections"]["host_chunks"]["documents"]
    assert len(chunks) >= 12
    docs = [scan, *chunks.values()]
    assert max(firestore_size(d) for d in docs) < ONE_MIB // 2
    row = firestore_store.list_reports()[0]
    assert (row.id, row.hosts_total, row.open_ports) == ("rep-big", 1200, 24000)

    # Saving a smaller version replaces the chunks instead of leaving the old ones behind.
    smaller = dataclasses.replace(report, hosts=report.hosts[:10])
    firestore_store.save_report(smaller)
    assert firestore_store.get_report("rep-big") == smaller
    dump = firestore_emulator.dump()["projects"][firestore_project]["databases"]["(default)"]
    scan = dump["collections"]["scans"]["documents"]["rep-big"]
    live = [d for d in scan["collections"]["host_chunks"]["documents"].values() if d["fields"]]
    assert len(live) == 1


def test_the_emulator_holds_the_one_mib_limit(firestore_store: FirestoreStore) -> None:
    # The size drill above proves something only if an oversized document would be refused.
    from google.api_core.exceptions import InvalidArgument

    client = firestore_store._client
    with pytest.raises(InvalidArgument, match="exceeds the maximum allowed size"):
        client.collection("scans").document("too-big").set({"data": "x" * (ONE_MIB + 10)})


def test_split_utf8_never_cuts_a_character() -> None:
    text = "aé✓𝄞" * 1000
    pieces = split_utf8(text, 7)
    assert "".join(pieces) == text
    assert all(len(p.encode()) <= 7 for p in pieces)
    assert split_utf8("", CHUNK_BYTES) == []


def test_summary_saved_twice_by_a_retry_stays_one_document(
    firestore_emulator: Emulator, firestore_store: FirestoreStore, firestore_project: str
) -> None:
    done = summary("sum-retry", "rep-1", 10.0, "final text", status="complete")
    firestore_store.save_summary(done)
    firestore_store.save_summary(done)
    # The answer to a write that landed was lost, so the record also waits in the outbox.
    outbox = SQLiteStore(firestore_store._outbox.path)
    from store.serialize import record_to_dict

    outbox.outbox_put("summary:sum-retry", "summary", "sum-retry", record_to_dict(done))
    outbox.close()
    assert firestore_store.sync_outbox().sent == 1
    docs = firestore_emulator.documents(firestore_project, "executive_summaries")
    assert list(docs) == ["sum-retry"]
    assert [s.id for s in firestore_store.list_summaries("rep-1")] == ["sum-retry"]


def test_initialize_app_once_per_process(firestore_config: config.Config) -> None:
    app = firebase_app(firestore_config)
    assert firebase_app(firestore_config) is app
    for _ in range(3):  # as Streamlit reruns do
        store = open_firestore(firestore_config)
        store.save_job(job("job-1", 10.0))
        store.close()
    assert firebase_admin.get_app(app.name) is app
    assert app.project_id == firestore_config.firebase_project


def test_services_build_the_firestore_store(firestore_config: config.Config) -> None:
    svc = services.build(firestore_config)
    try:
        assert svc.store.backend == "firestore"
        health = svc.store.health()
        assert health["ok"] is True
        assert health["project"] == firestore_config.firebase_project
        assert health["emulator_host"] == firestore_config.firestore_emulator_host
        assert health["pending"] == 0
        svc.store.save_report(small_report("rep-1", 10.0))
        assert svc.store.get_report("rep-1") == small_report("rep-1", 10.0)
        with pytest.raises(NotFound):
            svc.store.get_report("rep-2")
    finally:
        svc.close()


# -- misconfiguration ---------------------------------------------------------------------------
def test_missing_credentials_named_at_startup(tmp_path: Path) -> None:
    cfg = config.Config(store="firestore", db_path=tmp_path / "o.db")
    with pytest.raises(config.ConfigError, match="GOOGLE_APPLICATION_CREDENTIALS"):
        FirestoreStore.from_config(cfg, SQLiteStore(cfg.db_path))


def test_unusable_key_file_named_at_startup(tmp_path: Path) -> None:
    key = tmp_path / "key.json"
    key.write_text('{"type": "authorized_user"}')
    env = {"SCANSCRIBE_STORE": "firestore", "GOOGLE_APPLICATION_CREDENTIALS": str(key)}
    cfg = config.load({**env, "SCANSCRIBE_DB": str(tmp_path / "o.db")})
    with pytest.raises(config.ConfigError, match=r"GOOGLE_APPLICATION_CREDENTIALS.*key file"):
        services.build(cfg)


def test_a_record_over_one_mib_is_split_and_reads_back_whole(
    firestore_emulator: Emulator, firestore_store: FirestoreStore, firestore_project: str
) -> None:
    huge = summary("sum-huge", "rep-1", 10.0, "é" * ONE_MIB, status="complete")
    firestore_store.save_summary(huge)
    firestore_store.save_summary(summary("sum-small", "rep-1", 11.0, "fits"))
    assert firestore_store.pending() == []
    assert firestore_store.get_summary("sum-huge") == huge
    assert {s.id: s for s in firestore_store.list_summaries("rep-1")}["sum-huge"] == huge
    dump = firestore_emulator.dump()["projects"][firestore_project]["databases"]["(default)"]
    doc = dump["collections"]["executive_summaries"]["documents"]["sum-huge"]
    parts = [p for p in doc["collections"]["parts"]["documents"].values() if p["fields"]]
    assert len(parts) >= 8
    assert max(firestore_size(d) for d in [doc, *parts]) < ONE_MIB // 2
    # Saved again shorter, it is one document again and the old pieces are gone.
    short = dataclasses.replace(huge, text="short now")
    firestore_store.save_summary(short)
    assert firestore_store.get_summary("sum-huge") == short
    dump = firestore_emulator.dump()["projects"][firestore_project]["databases"]["(default)"]
    doc = dump["collections"]["executive_summaries"]["documents"]["sum-huge"]
    left = doc.get("collections", {}).get("parts", {}).get("documents", {}).values()
    assert not [p for p in left if p["fields"]]


def test_a_report_with_huge_args_is_saved_with_them_trimmed_and_a_note(
    firestore_store: FirestoreStore,
) -> None:
    report = dataclasses.replace(small_report("rep-args", 10.0), args="nmap " + "-v " * ONE_MIB)
    firestore_store.save_report(report)
    assert firestore_store.pending() == []
    firestore_store._outbox.drop_cached_report("rep-args")  # read Firestore's copy, not ours
    stored = firestore_store.get_report("rep-args")
    assert stored.hosts == report.hosts
    assert stored.args.startswith("nmap -v -v") and len(stored.args) < 70_000
    assert "characters left out: too long for one Firestore document" in stored.args


def test_a_record_that_cannot_be_sent_is_parked_and_blocks_nothing(
    firestore_emulator: Emulator, firestore_store: FirestoreStore, firestore_project: str
) -> None:
    # Firestore integers are 64-bit: this one cannot be encoded, however often it is retried.
    bad = dataclasses.replace(summary("sum-bad", "rep-1", 10.0, "kept"), options={"seed": 2**70})
    firestore_store.save_summary(bad)
    assert firestore_store.get_summary("sum-bad") == bad  # kept locally, not lost
    [item] = firestore_store.pending()
    assert (item.doc_id, item.parked) == ("sum-bad", True)
    assert "cannot be sent" in item.error
    # Others still go, straight in and through the outbox alike.
    firestore_store.save_summary(summary("sum-good", "rep-1", 11.0, "fits"))
    outbox = SQLiteStore(firestore_store._outbox.path)
    from store.serialize import record_to_dict

    waiting = summary("sum-waiting", "rep-1", 12.0, "was offline")
    outbox.outbox_put("summary:sum-waiting", "summary", "sum-waiting", record_to_dict(waiting))
    outbox.outbox_put("summary:sum-odd", "widget", "sum-odd", {"id": "sum-odd"})
    outbox.close()
    result = firestore_store.sync_outbox()
    assert result.sent == 1
    assert set(firestore_emulator.documents(firestore_project, "executive_summaries")) == {
        "sum-good",
        "sum-waiting",
    }
    parked = {p.doc_id: p for p in firestore_store.pending()}
    assert set(parked) == {"sum-bad", "sum-odd"} and all(p.parked for p in parked.values())
    assert "unknown kind" in parked["sum-odd"].error
    health = firestore_store.health()
    assert health["ok"] is True and health["parked"] == 2
    assert firestore_store.sync_outbox().sent == 0  # parked records are not retried


def test_deleting_a_report_deletes_the_diff_summaries_built_on_it(
    firestore_emulator: Emulator, firestore_store: FirestoreStore, firestore_project: str
) -> None:
    firestore_store.save_report(small_report("rep-old", 10.0))
    firestore_store.save_report(small_report("rep-new", 20.0))
    diff = summary("sum-diff", "rep-new", 30.0, "é" * ONE_MIB, base_report_id="rep-old")
    firestore_store.save_summary(diff)
    firestore_store.save_summary(summary("sum-new", "rep-new", 31.0))
    firestore_store.delete_report("rep-old")
    with pytest.raises(NotFound):
        firestore_store.get_summary("sum-diff")
    assert [s.id for s in firestore_store.list_summaries("rep-new")] == ["sum-new"]
    dump = firestore_emulator.dump()["projects"][firestore_project]["databases"]["(default)"]
    gone = dump["collections"]["executive_summaries"]["documents"].get("sum-diff", {})
    parts = gone.get("collections", {}).get("parts", {}).get("documents", {}).values()
    assert not gone.get("fields") and not [p for p in parts if p["fields"]]
