"""Cadences: interval slots from a schedule's creation, cron slots in a time zone, one catch-up."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest

from config import ConfigError
from monitor import settings
from monitor.cadence import parse_cadence
from monitor.errors import ScheduleRefused

PARIS = zoneinfo.ZoneInfo("Europe/Paris")


def _ts(*args: int) -> float:
    return dt.datetime(*args, tzinfo=PARIS).timestamp()  # type: ignore[misc]


def test_an_interval_starts_at_creation_and_catches_up_with_only_the_newest_slot() -> None:
    cad = parse_cadence("30m", None, None, 300, anchor=1000.0)
    assert cad.latest_slot(999.0) is None
    assert cad.latest_slot(1000.0) == 1000.0
    # Ten hours down: the newest missed slot, not twenty of them.
    assert cad.latest_slot(1000.0 + 10 * 3600 + 5) == 1000.0 + 20 * 1800
    assert cad.next_slot(1000.0) == 2800.0 and cad.next_slot(2799.9) == 2800.0


def test_cron_slots_follow_the_time_zone_across_a_daylight_saving_change() -> None:
    start = _ts(2026, 3, 27, 12, 0)
    cad = parse_cadence(None, "30 2 * * *", "Europe/Paris", 300, anchor=start)
    first = cad.next_slot(start)
    assert dt.datetime.fromtimestamp(first, PARIS).strftime("%d %H:%M") == "28 02:30"
    # 29 March 2026 has no 02:30 in Paris (clocks jump from 02:00 to 03:00).
    second = cad.next_slot(first)
    assert dt.datetime.fromtimestamp(second, PARIS).strftime("%d") in ("29", "30")
    assert cad.latest_slot(first + 60) == first
    assert cad.latest_slot(start) is None  # nothing due before the schedule existed


@pytest.mark.parametrize(
    ("every", "cron", "tz", "message"),
    [
        ("4m", None, None, "every 4m is shorter than the minimum of 5m"),
        ("0m", None, None, "'0m' is not a duration"),
        ("1w", None, None, "'1w' is not a duration"),
        (None, "*/2 * * * *", None, "only 2m apart, closer than the minimum of 5m"),
        (None, "0 9 * * mon-fri extra", None, "it needs 5 valid fields"),
        (None, "@hourly", None, "it needs 5 valid fields"),
        (None, "0 3 * * *", "Nowhere/City", "Time zone 'Nowhere/City' refused"),
        ("1h", None, "UTC", "--tz applies to --cron only"),
        ("1h", "0 3 * * *", None, "Give exactly one cadence"),
        (None, None, None, "Give exactly one cadence"),
    ],
)
def test_bad_cadences_are_refused_with_the_reason(
    every: str | None, cron: str | None, tz: str | None, message: str
) -> None:
    with pytest.raises(ScheduleRefused) as err:
        parse_cadence(every, cron, tz, 300, anchor=0.0)
    assert message in str(err.value)


def test_settings_are_read_and_checked_by_name() -> None:
    s = settings.load(
        {
            "SCANSCRIBE_MIN_INTERVAL": "10s",
            "SCANSCRIBE_SMTP_URL": "smtps://mail.example.com",
            "SCANSCRIBE_SMTP_USER": "alerts",
            "SCANSCRIBE_SMTP_PASSWORD": "pw",
            "SCANSCRIBE_SMTP_FROM": "ss@example.com",
            "SCANSCRIBE_SCHEDULER": "off",
        }
    )
    assert s.min_interval_s == 10 and not s.scheduler_enabled
    assert s.smtp is not None and (s.smtp.host, s.smtp.port, s.smtp.tls) == (
        "mail.example.com",
        465,
        True,
    )
    assert "pw" not in repr(s)  # the password never reaches a log line through repr
    for env, name in (
        ({"SCANSCRIBE_MIN_INTERVAL": "often"}, "SCANSCRIBE_MIN_INTERVAL"),
        ({"SCANSCRIBE_SCHEDULER": "maybe"}, "SCANSCRIBE_SCHEDULER"),
        ({"SCANSCRIBE_SMTP_URL": "http://mail"}, "SCANSCRIBE_SMTP_URL"),
        (
            {"SCANSCRIBE_SMTP_URL": "smtp://mail", "SCANSCRIBE_SMTP_FROM": "x"},
            "SCANSCRIBE_SMTP_FROM",
        ),
    ):
        with pytest.raises(ConfigError, match=name):
            settings.load(env)
