"""The monitor's store contract, on SQLite and on the Firestore emulator: a slot is claimed once
however many claim it at the same moment; leases are exclusive; schedules only move forward."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import config
from monitor.firestore_storage import FirestoreMonitorStore
from monitor.models import Alert, Delivery, Run, Schedule, run_id
from monitor.storage import MonitorStore, SQLiteMonitorStore


@pytest.fixture(params=["sqlite", pytest.param("firestore", marks=pytest.mark.emulator)])
def mstore(request: pytest.FixtureRequest, test_config: config.Config) -> Iterator[MonitorStore]:
    """Each implementation in turn."""
    store: MonitorStore
    if request.param == "sqlite":
        store = SQLiteMonitorStore(test_config.db_path)
    else:
        cfg: config.Config = request.getfixturevalue("firestore_config")
        store = FirestoreMonitorStore.from_config(cfg)
    yield store
    store.close()


def _schedule(sid: str = "sched-1", next_run: float = 100.0) -> Schedule:
    return Schedule(
        id=sid,
        name="n",
        targets=("127.0.0.1",),
        profile="quick",
        every_s=60.0,
        created_at=1.0,
        next_run=next_run,
    )


def test_of_many_simultaneous_claims_of_a_slot_exactly_one_lands(mstore: MonitorStore) -> None:
    go = threading.Barrier(8)
    won: list[bool] = []
    lock = threading.Lock()

    def claim(i: int) -> None:
        run = Run(id=run_id("sched-1", 160.0), schedule_id="sched-1", due_at=160.0, pid=i)
        go.wait()
        ok = mstore.claim_run(run)
        with lock:
            won.append(ok)

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(won) == [False] * 7 + [True]
    [stored] = mstore.list_runs("sched-1")
    assert stored.due_at == 160.0
    assert mstore.claim_run(Run(id=run_id("sched-1", 220.0), schedule_id="sched-1", due_at=220.0))
    assert [r.due_at for r in mstore.list_runs("sched-1")] == [220.0, 160.0]


def test_schedules_are_due_by_next_run_and_only_move_forward(mstore: MonitorStore) -> None:
    mstore.save_schedule(_schedule("sched-a", 100.0))
    mstore.save_schedule(_schedule("sched-b", 500.0))
    assert [s.id for s in mstore.due_schedules(200.0)] == ["sched-a"]
    mstore.advance("sched-a", 300.0)
    mstore.advance("sched-a", 250.0)  # a slower scheduler's older value loses
    assert mstore.get_schedule("sched-a").next_run == 300.0
    assert mstore.due_schedules(200.0) == []
    paused = _schedule("sched-b", 500.0)
    mstore.save_schedule(Schedule(**{**paused.__dict__, "active": False}))
    assert mstore.due_schedules(1000.0) == [mstore.get_schedule("sched-a")]


def test_a_delivery_is_leased_to_one_scheduler_and_alerts_count_unread(
    mstore: MonitorStore,
) -> None:
    alert = Alert(id="alert-1", schedule_id="s", run_id="s@1", created_at=5.0, payload={"a": [1]})
    d = Delivery(id="alert-1:webhook:0", alert_id="alert-1", channel="webhook", target="http://x")
    mstore.save_alert(alert, [d])
    assert mstore.unread_count() == 1 and mstore.get_alert("alert-1").payload == {"a": [1]}
    assert [x.id for x in mstore.due_deliveries(10.0)] == [d.id]
    assert mstore.lease_delivery(d.id, "a", 10.0, 130.0)
    assert not mstore.lease_delivery(d.id, "b", 11.0, 131.0)
    assert mstore.due_deliveries(20.0) == []
    mstore.save_delivery(Delivery(**{**d.__dict__, "status": "delivered", "attempts": 1}))
    assert mstore.due_deliveries(200.0) == [] and not mstore.lease_delivery(d.id, "b", 200, 300)
    mstore.mark_read(["alert-1"])
    assert mstore.unread_count() == 0 and mstore.list_alerts()[0].read


def test_an_unreachable_firestore_fails_fast_and_then_at_once(
    tmp_path: Path, closed_port: int
) -> None:
    """The navigation asks for the unread count on every page run: with Firestore gone it must
    fail within its timeout (never hang, never a raw gRPC error), then at once for a while."""
    import time

    from store.base import StoreUnavailable
    from tests.fixtures_firestore import firestore_env

    cfg = config.load(
        firestore_env(f"127.0.0.1:{closed_port}", tmp_path / "o.db", "demo-down", "2")
    )
    store = FirestoreMonitorStore.from_config(cfg)
    start = time.monotonic()
    with pytest.raises(StoreUnavailable, match="Firestore could not list alerts"):
        store.unread_count()
    assert time.monotonic() - start < 8
    start = time.monotonic()
    with pytest.raises(StoreUnavailable, match="did not answer a moment ago"):
        store.unread_count()
    assert time.monotonic() - start < 0.5
