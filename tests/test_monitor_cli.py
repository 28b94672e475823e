"""``python -m scanner schedule ...``: refused input exits 2 with the reason and saves nothing;
the schedule's life cycle (add, list, pause, resume, runs, remove) as a user types it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from auth.gate import Gate
from auth.policy import Forbidden, Identity
from monitor.schedules import ScheduleSpec, create_schedule, remove_schedule, set_paused
from monitor.settings import MonitorSettings
from monitor.storage import SQLiteMonitorStore
from scanner.cli import main
from services import Services


@pytest.fixture
def cli_env(db_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The command line's settings: the test database, loopback scope, a 2-minute minimum."""
    for name in ("SCANSCRIBE_SMTP_URL", "SCANSCRIBE_WEBHOOK_SECRET", "SCANSCRIBE_SCOPE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SCANSCRIBE_DB", str(db_path))
    monkeypatch.setenv("OLLAMA_HOST", "http://127.0.0.1:9")
    monkeypatch.setenv("SCANSCRIBE_MIN_INTERVAL", "2m")
    return db_path


def _add(*extra: str, targets: tuple[str, ...] = ("127.0.0.1",)) -> list[str]:
    return ["schedule", "add", "--name", "lab", *extra, "--", *targets]


REFUSALS = [
    pytest.param(
        _add("--profile", "nope", "--every", "1h"),
        "Profile 'nope' refused: it is not one of quick",
        id="unknown-profile",
    ),
    pytest.param(
        _add("--profile", "quick", "--every", "30s"),
        "every 30s is shorter than the minimum of 2m (SCANSCRIBE_MIN_INTERVAL)",
        id="cadence-below-minimum",
    ),
    pytest.param(
        _add("--profile", "quick", "--every", "soon"),
        "'soon' is not a duration",
        id="bad-duration",
    ),
    pytest.param(
        _add("--profile", "quick", "--cron", "0 25 * * *"),
        "Cron expression '0 25 * * *' refused: it needs 5 valid fields",
        id="bad-cron",
    ),
    pytest.param(
        _add("--profile", "quick", "--cron", "0 3 * * * *"),
        "it needs 5 valid fields",
        id="six-field-cron",
    ),
    pytest.param(
        _add("--profile", "quick", "--cron", "*/5 * * * *", "--tz", "Mars/Olympus"),
        "Time zone 'Mars/Olympus' refused",
        id="bad-time-zone",
    ),
    pytest.param(
        _add("--profile", "quick", "--cron", "* * * * *"),
        "only 1m apart, closer than the minimum of 2m",
        id="cron-below-minimum",
    ),
    pytest.param(
        _add("--profile", "quick", "--every", "1h", targets=("127.0.0.1", "10.0.0.1")),
        "Target '10.0.0.1' refused: it is outside the scope",
        id="target-out-of-scope",
    ),
    pytest.param(
        _add("--profile", "quick", "--every", "1h", targets=("-iL", "/etc/passwd")),
        "refused",
        id="option-as-target",
    ),
    pytest.param(
        _add("--profile", "quick", "--every", "1h", "--alert-webhook", "javascript:alert(1)"),
        "Webhook URL 'javascript:alert(1)' refused: it must be an http:// or https:// URL",
        id="malformed-webhook",
    ),
    pytest.param(
        _add("--profile", "quick", "--every", "1h", "--alert-webhook", "http://u:p@h.test/x"),
        "no user name or password in it",
        id="webhook-with-credentials",
    ),
    pytest.param(
        _add("--profile", "quick", "--every", "1h", "--alert-email", "soc@example.com\nBcc: x@y.z"),
        "refused: give one plain address such as soc@example.com",
        id="malformed-email",
    ),
    pytest.param(
        _add("--profile", "quick", "--every", "1h", "--alert-email", "soc@example.com"),
        "E-mail alerts need a mail server: set SCANSCRIBE_SMTP_URL",
        id="email-without-smtp",
    ),
    pytest.param(
        _add("--profile", "quick", "--every", "1h", "--alert-on", "opened,sunrise"),
        "--alert-on sunrise refused: it accepts opened, new_host, risk_high, any_change",
        id="unknown-alert-kind",
    ),
    pytest.param(
        _add("--profile", "quick", "--every", "1h", "--ports", "70000"),
        "70000",
        id="bad-port",
    ),
]


@pytest.mark.parametrize(("argv", "reason"), REFUSALS)
def test_refused_input_exits_2_with_the_reason_and_saves_nothing(
    cli_env: Path, capsys: pytest.CaptureFixture[str], argv: list[str], reason: str
) -> None:
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert reason in err and out == ""
    store = SQLiteMonitorStore(cli_env)
    assert store.list_schedules() == []
    store.close()


def test_a_bad_setting_is_refused_by_name(
    cli_env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCANSCRIBE_SMTP_URL", "mail.example.com")
    assert main(_add("--profile", "quick", "--every", "1h")) == 2
    assert "SCANSCRIBE_SMTP_URL is not a mail server address" in capsys.readouterr().err


def test_a_schedule_is_added_listed_paused_resumed_and_removed(
    cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = _add(
        "--profile",
        "quick",
        "--ports",
        "22,80",
        "--cron",
        "30 2 * * 1-5",
        "--tz",
        "Europe/Paris",
        "--alert-webhook",
        "https://hooks.example.com/services/T0/B0/s3cr3t",
        "--alert-on",
        "opened,risk_high",
        "--format",
        "json",
    )
    assert main(argv) == 0
    added = json.loads(capsys.readouterr().out)
    assert added["name"] == "lab" and added["next_run"].endswith("Z")
    assert added["cadence"] == "cron 30 2 * * 1-5 (Europe/Paris)"
    assert added["alert_on"] == ["opened", "risk_high"] and added["ports"] == "22,80"
    # The webhook URL's path holds its secret: it is never printed.
    assert added["webhooks"] == ["https://hooks.example.com/…"]
    sid = added["id"]

    assert main(["schedule", "list", "--format", "json"]) == 0
    assert [s["id"] for s in json.loads(capsys.readouterr().out)] == [sid]
    assert main(["schedule", "pause", sid]) == 0
    assert "paused" in capsys.readouterr().out
    assert main(["schedule", "list"]) == 0
    assert "paused" in capsys.readouterr().out
    assert main(["schedule", "resume", sid]) == 0
    assert "active, next run" in capsys.readouterr().out
    assert main(["schedule", "runs", sid, "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert main(["schedule", "remove", sid]) == 0
    capsys.readouterr()
    assert main(["schedule", "remove", sid]) == 2
    assert "No schedule with id" in capsys.readouterr().err


def test_analysts_create_and_manage_their_own_schedules_and_admins_manage_all(
    services: Services, db_path: Path
) -> None:
    gate = Gate(services.store)  # roles as given here; outcomes go to the audit trail
    store = SQLiteMonitorStore(db_path)
    settings = MonitorSettings(min_interval_s=60.0)
    spec = ScheduleSpec(name="nightly", targets="127.0.0.1", profile="quick", every="1h")
    viewer = Identity("vic", "viewer", "password")
    bob, eve = Identity("bob", "analyst", "password"), Identity("eve", "analyst", "password")
    admin = Identity("ada", "admin", "password")
    with pytest.raises(Forbidden, match=r"'schedule\.create' needs analyst"):
        create_schedule(store, spec, services.config, settings, gate=gate, who=viewer)
    assert store.list_schedules() == []
    s = create_schedule(store, spec, services.config, settings, gate=gate, who=bob)
    assert s.owner == "bob"
    assert not set_paused(store, s.id, True, gate=gate, who=bob).active  # one's own
    with pytest.raises(Forbidden, match=r"'schedule\.manage' needs admin"):
        remove_schedule(store, s.id, gate=gate, who=eve)
    with pytest.raises(Forbidden):
        set_paused(store, s.id, False, gate=gate, who=eve)
    assert not store.get_schedule(s.id).active
    assert set_paused(store, s.id, False, gate=gate, who=admin).active
    remove_schedule(store, s.id, gate=gate, who=admin)
    assert store.list_schedules() == []
    trail = [(e.actor, e.action, e.outcome) for e in services.store.list_audit()]
    assert ("vic", "schedule.create", "denied") in trail
    assert ("eve", "schedule.manage", "denied") in trail
    assert ("ada", "schedule.manage", "ok") in trail
    store.close()
