"""Errors of the monitor package, each with a message that says what to do about it.

Exceptions::

    MonitorError            base class; pages and commands catch this one (and auth.Forbidden)
    ├── ScheduleRefused     a schedule's input was refused; nothing was saved
    └── DeliveryFailed      one attempt to deliver an alert failed (it is kept and retried)
"""

from __future__ import annotations


class MonitorError(Exception):
    """Base class of every monitor failure; its message is safe to show to the user."""


class ScheduleRefused(MonitorError):
    """The schedule's input was refused before anything was saved."""


class DeliveryFailed(MonitorError):
    """One delivery attempt failed; ``detail`` never holds a secret or a webhook URL's path."""

    def __init__(self, detail: str, *, permanent: bool = False) -> None:
        self.detail = detail
        self.permanent = permanent
        super().__init__(detail)
