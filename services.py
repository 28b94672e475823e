"""Builds ScanScribe's services (store, job runner, Ollama gateway) from configuration.

Pages and command lines call :func:`build` once per process; tests call it with their own
configuration instead of patching library internals.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

import config as config_mod
from config import Config
from store.base import Store, StoreError
from store.sqlite import SQLiteStore

if TYPE_CHECKING:
    from auth import Directory, Gate, SessionStore, Throttle
    from llm.client import OllamaGateway
    from scanner.runner import LocalRunner
    from workers.dispatch import BrokerRunner

log = logging.getLogger(__name__)


def open_store(cfg: Config) -> Store:
    """The store the configuration asks for; SQLite unless SCANSCRIBE_STORE=firestore."""
    local = SQLiteStore(cfg.db_path)
    if cfg.store == "firestore":
        from store.firestore import FirestoreStore

        return FirestoreStore.from_config(cfg, outbox=local)
    return local


@dataclass
class Services:
    """Everything a page or a command needs, built from one Config."""

    config: Config
    store: Store
    _closed: bool = field(default=False, repr=False)

    @cached_property
    def runner(self) -> LocalRunner | BrokerRunner:
        """The scan job runner; on first use it recovers jobs a dead process left running.

        With SCANSCRIBE_BROKER set, scans go to Celery workers (workers.dispatch.BrokerRunner).
        """
        from scanner.runner import LocalRunner
        from workers.settings import load_broker

        broker = load_broker()
        if broker is not None:
            from workers.board import open_board
            from workers.dispatch import BrokerRunner

            remote = BrokerRunner(self.store, self.config, broker, open_board(self.config))
            for warning in remote.warnings():
                log.warning("%s", warning)
            remote.recover()
            return remote
        runner = LocalRunner(self.store, self.config)
        runner.recover()
        return runner

    @cached_property
    def llm(self) -> OllamaGateway:
        """The Ollama gateway, with explicit timeouts."""
        from llm.client import OllamaGateway

        return OllamaGateway.from_config(self.config)

    @cached_property
    def directory(self) -> Directory:
        """Accounts, roles and the OIDC allowlist; a broken users file raises UsersFileError."""
        from auth import Directory

        return Directory(self.config.users_path, self.config.password_hash)

    @cached_property
    def gate(self) -> Gate:
        """The authorization check and audit trail every state-changing action passes."""
        from auth import Gate

        return Gate(self.store, self.directory)

    @cached_property
    def sessions(self) -> SessionStore:
        """Logged-in browser sessions of this process."""
        from auth import SessionStore

        return SessionStore(idle_s=self.config.session_idle_min * 60.0)

    @cached_property
    def throttle(self) -> Throttle:
        """Failed-login counts per account and client address."""
        from auth import Throttle

        return Throttle()

    def recover(self) -> None:
        """Start-up recovery: jobs and summaries left unfinished by a dead process are marked
        interrupted (and orphan nmap process groups killed). A store that cannot be read is
        logged, not fatal: the pages say so when they read it."""
        from llm.summarize import recover_summaries

        try:
            self.runner  # noqa: B018 - building the runner runs its recovery
            recover_summaries(self.store)
        except StoreError as exc:
            log.warning("start-up recovery skipped: %s", exc)

    def close(self) -> None:
        """Stop running jobs and close the store."""
        if self._closed:
            return
        self._closed = True
        if "runner" in self.__dict__:
            self.runner.shutdown()
        self.store.close()


def build(cfg: Config | None = None) -> Services:
    """Build the services from ``cfg`` (the environment's settings when None)."""
    cfg = cfg or config_mod.load()
    svc = Services(config=cfg, store=open_store(cfg))
    svc.recover()
    return svc
