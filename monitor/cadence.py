"""When a schedule is due: a fixed interval from its creation, or a 5-field cron expression in a
time zone (parsed by croniter, with zoneinfo for the zone and its daylight-saving changes).
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
import zoneinfo
from dataclasses import dataclass

from croniter import croniter

from monitor.errors import ScheduleRefused
from monitor.models import duration_text
from monitor.settings import parse_duration

# How many upcoming cron times are compared with the shortest allowed cadence.
CRON_GAPS_CHECKED = 24


@dataclass(frozen=True)
class Cadence:
    """Slots of a schedule: ``anchor + k * every_s`` or the times its cron expression names."""

    anchor: float
    every_s: float | None = None
    cron: str | None = None
    tz: str = "UTC"

    def _zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.tz)

    def latest_slot(self, now: float) -> float | None:
        """The newest slot at or before ``now`` (not before the anchor), or None."""
        if self.every_s:
            if now < self.anchor:
                return None
            k = math.floor(round((now - self.anchor) * 1000) / round(self.every_s * 1000))
            return self.anchor + k * self.every_s
        assert self.cron
        # croniter's get_prev is strictly before its start: start just after ``now``.
        start = dt.datetime.fromtimestamp(now + 0.001, self._zone())
        slot = float(croniter(self.cron, start).get_prev(float))
        return slot if slot >= self.anchor else None

    def next_slot(self, after: float) -> float:
        """The first slot strictly after ``after``."""
        if self.every_s:
            if after < self.anchor:
                return self.anchor
            k = math.floor(round((after - self.anchor) * 1000) / round(self.every_s * 1000)) + 1
            return self.anchor + k * self.every_s
        assert self.cron
        start = dt.datetime.fromtimestamp(max(after, self.anchor - 0.001), self._zone())
        return float(croniter(self.cron, start).get_next(float))


def parse_cadence(
    every: str | None, cron: str | None, tz: str | None, min_interval_s: float, anchor: float
) -> Cadence:
    """Check a cadence given as ``--every`` or ``--cron`` (with ``--tz``); ScheduleRefused."""
    if bool(every) == bool(cron):
        raise ScheduleRefused("Give exactly one cadence: --every DURATION or --cron 'EXPR'.")
    if every:
        try:
            seconds = parse_duration(every)
        except ValueError as exc:
            raise ScheduleRefused(f"Cadence refused: {exc}") from None
        if seconds < min_interval_s:
            raise ScheduleRefused(
                f"Cadence refused: every {duration_text(seconds)} is shorter than the minimum "
                f"of {duration_text(min_interval_s)} (SCANSCRIBE_MIN_INTERVAL). Pick a longer "
                "interval."
            )
        if tz:
            raise ScheduleRefused("--tz applies to --cron only; an interval needs no time zone.")
        return Cadence(anchor=anchor, every_s=seconds)
    assert cron is not None
    expr = " ".join(cron.split())
    zone = (tz or "UTC").strip()
    try:
        zoneinfo.ZoneInfo(zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ScheduleRefused(
            f"Time zone {zone!r} refused: it is not an IANA zone name such as 'UTC' or "
            "'Europe/Paris'."
        ) from None
    if len(expr.split(" ")) != 5 or not croniter.is_valid(expr):
        raise ScheduleRefused(
            f"Cron expression {cron!r} refused: it needs 5 valid fields (minute hour "
            "day-of-month month day-of-week), for example '0 3 * * *'."
        )
    cad = Cadence(anchor=anchor, cron=expr, tz=zone)
    times = [cad.next_slot(anchor)]
    for _ in range(CRON_GAPS_CHECKED):
        times.append(cad.next_slot(times[-1]))
    gap = min(b - a for a, b in itertools.pairwise(times))
    if gap < min_interval_s:
        raise ScheduleRefused(
            f"Cron expression {cron!r} refused: some of its runs are only "
            f"{duration_text(gap)} apart, closer than the minimum of "
            f"{duration_text(min_interval_s)} (SCANSCRIBE_MIN_INTERVAL)."
        )
    return cad


def cadence_of(anchor: float, every_s: float | None, cron: str | None, tz: str) -> Cadence:
    """The cadence of a saved (already checked) schedule."""
    return Cadence(anchor=anchor, every_s=every_s, cron=cron, tz=tz)
