"""Login throttling that holds under parallel attempts.

Each attempt is counted, per account and per client address, *before* the password is checked,
under one lock: a burst of simultaneous guesses gets only the free attempts evaluated, and the
rest are refused with how long to wait. The wait doubles with each failure. A success clears
its own account's count and takes back its own attempt from the address; it never clears
another account's count.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Count:
    failures: int = 0
    next_allowed: float = 0.0
    last: float = 0.0


class Throttle:
    """Counts attempts per key (``acct:NAME``, ``addr:IP``) and says how long to wait."""

    def __init__(
        self,
        free: int = 3,
        base_s: float = 1.0,
        cap_s: float = 900.0,
        forget_s: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.free = free
        self._base = base_s
        self._cap = cap_s
        self._forget = forget_s
        self._clock = clock
        self._lock = threading.Lock()
        self._counts: dict[str, _Count] = {}

    def _get(self, key: str, now: float) -> _Count:
        c = self._counts.get(key)
        if c is None or (c.last and now - c.last > self._forget and now >= c.next_allowed):
            c = self._counts[key] = _Count()
        return c

    def reserve(self, *keys: str) -> float:
        """Count one attempt for every key and return 0, or return the seconds to wait first.

        A refused attempt is not counted and must not be evaluated.
        """
        with self._lock:
            now = self._clock()
            counts = [self._get(k, now) for k in keys]
            wait = max((c.next_allowed - now for c in counts), default=0.0)
            if wait > 0:
                return wait
            for c in counts:
                c.failures += 1
                c.last = now
                if c.failures >= self.free:
                    delay = min(self._cap, self._base * 2 ** (c.failures - self.free))
                    c.next_allowed = now + delay
            return 0.0

    def succeeded(self, account_key: str, *other_keys: str) -> None:
        """Clear the account's count; take back this one attempt from the other keys."""
        with self._lock:
            self._counts.pop(account_key, None)
            for key in other_keys:
                c = self._counts.get(key)
                if c is not None and c.failures > 0:
                    c.failures -= 1
                    if c.failures < self.free:
                        c.next_allowed = 0.0

    def failures(self, key: str) -> int:
        """Failed attempts counted for ``key`` (for System status and tests)."""
        with self._lock:
            c = self._counts.get(key)
            return c.failures if c else 0
