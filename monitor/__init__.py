"""Continuous monitoring: schedules, a scheduler that runs each due slot once, change alerts
by webhook, e-mail and in the app, and a grounded change brief.

The package never imports streamlit; pages and the command line call into it.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from config import Config
from monitor import settings as settings_mod
from monitor.storage import MonitorStore, SQLiteMonitorStore

if TYPE_CHECKING:
    from monitor.scheduler import Scheduler
    from services import Services

log = logging.getLogger(__name__)

_background: list[Scheduler] = []
_background_lock = threading.Lock()
# Firestore bills reads: a pass every few seconds there, twice a second on the local file.
POLL_S = {"sqlite": 0.5, "firestore": 5.0}


def open_monitor_store(cfg: Config) -> MonitorStore:
    """The monitor's store beside the main one: Firestore when selected, else the SQLite file."""
    if cfg.store == "firestore":
        from monitor.firestore_storage import FirestoreMonitorStore

        return FirestoreMonitorStore.from_config(cfg)
    return SQLiteMonitorStore(cfg.db_path)


def start_background_scheduler(services: Services) -> Scheduler | None:
    """Start this process's scheduler thread (None when SCANSCRIBE_SCHEDULER=off).

    Call it once the services are built (the dashboard's cached services). A call with the same
    services returns the running scheduler; a call with new services (rebuilt after a settings
    change) stops the previous scheduler first, so a process runs at most one.
    """
    from monitor.scheduler import Scheduler

    settings = settings_mod.load()
    with _background_lock:
        if _background and _background[0].services is services:
            return _background[0]
        _stop_background()
        if not settings.scheduler_enabled:
            log.info("scheduler off (SCANSCRIBE_SCHEDULER=off)")
            return None
        poll = POLL_S.get(services.config.store, 0.5)
        scheduler = Scheduler(services, open_monitor_store(services.config), settings, poll_s=poll)
        scheduler.start()
        _background.append(scheduler)
    log.info("scheduler started in the background")
    return scheduler


def _stop_background() -> None:
    while _background:
        old = _background.pop()
        old.stop()
        old.store.close()


def stop_background_scheduler() -> None:
    """Stop this process's background scheduler, if one runs (at shutdown, or in tests)."""
    with _background_lock:
        _stop_background()
