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

_background: dict[str, Scheduler] = {}
_background_lock = threading.Lock()


def open_monitor_store(cfg: Config) -> MonitorStore:
    """The monitor's store beside the main one: Firestore when selected, else the SQLite file."""
    if cfg.store == "firestore":
        from monitor.firestore_storage import FirestoreMonitorStore

        return FirestoreMonitorStore.from_config(cfg)
    return SQLiteMonitorStore(cfg.db_path)


def start_background_scheduler(services: Services) -> Scheduler | None:
    """Start this process's scheduler thread once (None when SCANSCRIBE_SCHEDULER=off).

    Call it after the services are built, once per process (the dashboard's cached services).
    A second call for the same database returns the running scheduler.
    """
    from monitor.scheduler import Scheduler

    settings = settings_mod.load()
    if not settings.scheduler_enabled:
        log.info("scheduler off (SCANSCRIBE_SCHEDULER=off)")
        return None
    key = f"{services.config.store}:{services.config.db_path}"
    with _background_lock:
        running = _background.get(key)
        if running is not None:
            return running
        scheduler = Scheduler(services, open_monitor_store(services.config), settings)
        scheduler.start()
        _background[key] = scheduler
    log.info("scheduler started in the background")
    return scheduler
