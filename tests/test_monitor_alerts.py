"""Alerts: what they say, how they travel (a real webhook receiver, a real SMTP server), and that
hostile scan text stays inert, bodies are signed, secrets stay out, retries end and nothing drops.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest

from monitor.brief import Brief
from monitor.delivery import Deliverer, WebhookChannel, channels_from
from monitor.models import Run, Schedule, run_id
from monitor.scheduler import prepare_alert
from monitor.settings import MonitorSettings, SmtpSettings
from monitor.storage import SQLiteMonitorStore
from scanner.models import Report
from scanner.parser import parse_report
from tests.test_monitor_helpers import SmtpServer, WebhookReceiver, parts, smtp_server, webhook

__all__ = ["smtp_server", "webhook"]

SECRET = "whsec-test-0123456789"
PASSWORD = "smtp-pa55word"
HOSTILE_PRODUCT = "<script>alert(1)</script> **URGENT** [click here](http://127.0.0.1:9/x)"
HOSTILE_VERSION = '![i](http://127.0.0.1:9/p.png) <a href="javascript:alert(1)">x</a> www.evil.test'


def _tags(markup: str) -> list[tuple[str, list[tuple[str, str | None]]]]:
    """Every start tag of an HTML document with its attributes."""
    found: list[tuple[str, list[tuple[str, str | None]]]] = []

    class Collect(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            found.append((tag, attrs))

    Collect().feed(markup)
    return found


def _xml_attr(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;")


def report(report_id: str, extra_ports: str = "", extra_hosts: str = "") -> Report:
    """A report of 127.0.0.1 (ssh open) parsed from nmap XML, plus the given ports and hosts."""
    xml = f"""<?xml version="1.0"?>
<nmaprun scanner="nmap" args="nmap -sT" start="1700000000" version="7.93">
<host><status state="up" reason="conn-refused"/><address addr="127.0.0.1" addrtype="ipv4"/>
<ports><port protocol="tcp" portid="22"><state state="open" reason="syn-ack"/>
<service name="ssh"/></port>{extra_ports}</ports></host>{extra_hosts}
<runstats><finished time="1700000002"/><hosts up="1" down="0" total="1"/></runstats>
</nmaprun>"""
    return parse_report(
        xml.encode(), report_id=report_id, targets=("127.0.0.0/30",), profile="standard"
    )


HOSTILE_TELNET = (
    '<port protocol="tcp" portid="23"><state state="open" reason="syn-ack"/>'
    f'<service name="telnet" product="{_xml_attr(HOSTILE_PRODUCT)}" '
    f'version="{_xml_attr(HOSTILE_VERSION)}"/></port>'
)


def schedule(**changes: object) -> Schedule:
    """A schedule of 127.0.0.0/30 alerting one webhook and one address."""
    base = Schedule(
        id="sched-test",
        name="Lab <b>web</b> [x](http://evil.test)",
        targets=("127.0.0.0/30",),
        profile="standard",
        every_s=300.0,
        webhooks=(),
        emails=("soc@example.com",),
        created_at=1000.0,
        next_run=1000.0,
    )
    fields = {**base.__dict__, **changes}
    return Schedule(**fields)  # type: ignore[arg-type]


def _run(s: Schedule) -> Run:
    return Run(id=run_id(s.id, 1300.0), schedule_id=s.id, due_at=1300.0)


def no_brief(*_: object) -> Brief:
    """Schedules without --brief."""
    return Brief(None, "")


def settings_for(smtp: SmtpServer, user: str = "") -> MonitorSettings:
    """Settings with a webhook secret and the loopback mail server."""
    return MonitorSettings(
        min_interval_s=1.0,
        webhook_secret=SECRET,
        smtp=SmtpSettings(
            host="127.0.0.1",
            port=smtp.controller.port,
            tls=False,
            user=user,
            password=PASSWORD if user else "",
            sender="scanscribe@example.com",
        ),
    )


def deliver_one(
    db: Path, s: Schedule, settings: MonitorSettings, **kw: object
) -> tuple[SQLiteMonitorStore, Deliverer, str]:
    """Raise the alert of the hostile change and try its deliveries once; (store, deliverer,
    alert id)."""
    alert, deliveries = prepare_alert(
        s, _run(s), report("r-old"), report("r-new", HOSTILE_TELNET), no_brief, time.time()
    )
    assert alert is not None
    store = SQLiteMonitorStore(db)
    store.save_alert(alert, deliveries)
    deliverer = Deliverer(store, channels_from(settings), "test", pause=lambda s: None, **kw)  # type: ignore[arg-type]
    deliverer.deliver(deliveries, alert)
    return store, deliverer, alert.id


def test_an_opened_port_is_posted_signed_with_hostile_text_kept_as_inert_data(
    tmp_path: Path, webhook: WebhookReceiver, smtp_server: SmtpServer
) -> None:
    s = schedule(webhooks=(webhook.url,))
    store, _, alert_id = deliver_one(tmp_path / "db", s, settings_for(smtp_server))
    [post] = webhook.posts()
    # Signed: the receiver can check the body with the shared secret.
    expected = "sha256=" + hmac.new(SECRET.encode(), post.body, hashlib.sha256).hexdigest()
    assert post.headers["X-ScanScribe-Signature"] == expected
    body = json.loads(post.body)
    assert body["event"] == "scan.changed"
    assert body["schedule_id"] == "sched-test" and body["report_id"] == "r-new"
    assert body["previous_report_id"] == "r-old" and body["targets"] == ["127.0.0.0/30"]
    [opened] = body["opened"]
    assert (opened["address"], opened["port"], opened["protocol"]) == ("127.0.0.1", 23, "tcp")
    # Scan text arrives as the JSON string it was, for the receiver to treat as data ...
    assert opened["product"] == HOSTILE_PRODUCT and opened["version"] == HOSTILE_VERSION
    assert body["risk_high"][0]["port"] == 23 and body["risk_high"][0]["level"] == "high"
    assert body["new_hosts"] == [] and body["closed"] == [] and body["brief"] is None
    # ... while the line chat tools display carries none of it, nor the name's markup.
    text = body["text"]
    assert "127.0.0.1:23/tcp" in text and "1 port opened" in text
    for bad in ("<", ">", "[", "]", "(", "*", "://", "javascript:", "www.", "!", "&"):
        assert bad not in text, bad
    # No secret anywhere: not the signing key, not the webhook URL's secret path.
    raw = post.body.decode()
    assert SECRET not in raw and "s3cr3tpath" not in raw
    assert all(SECRET not in v for v in post.headers.values())
    [delivered] = [d for d in store.list_deliveries(alert_id) if d.channel == "webhook"]
    assert delivered.status == "delivered" and delivered.attempts == 1


def test_the_alert_email_has_the_same_facts_escaped_and_defanged(
    tmp_path: Path, webhook: WebhookReceiver, smtp_server: SmtpServer
) -> None:
    s = schedule(webhooks=(webhook.url,))
    deliver_one(tmp_path / "db", s, settings_for(smtp_server))
    [(sender, rcpts, msg)] = smtp_server.messages()
    assert sender == "scanscribe@example.com" and rcpts == ["soc@example.com"]
    subject = "[ScanScribe] Lab b web b x http evil test: 1 port opened, 0 new hosts"
    assert msg["Subject"] == subject
    plain, rich = parts(msg)
    # The facts: the opened port, its risk, the reports.
    for body in (plain, rich):
        assert "127.0.0.1 23/tcp" in body and "r-new" in body and "r-old" in body
        assert "Telnet: cleartext remote login" in body
    # HTML: every value escaped, nothing live.
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in rich
    tags = _tags(rich)
    assert {t for t, _ in tags} <= {"html", "body", "p", "table", "tr", "th", "td", "h3", "ul"} | {
        "li",
        "code",
        "pre",
    }
    assert all(not attrs for _, attrs in tags)  # no href, src, style or handler anywhere
    for live in ("<script", "http://", "javascript:"):
        assert live not in rich, live
    # Plain text: no scheme or www a mail client would turn into a link.
    assert "http[:]//127.0.0.1:9/x" in plain and "javascript[:]alert(1)" in plain
    for live in ("http://", "javascript:", "www.evil"):
        assert live not in plain, live
    assert SECRET not in plain + rich and "s3cr3tpath" not in plain + rich


def test_failed_posts_are_retried_with_every_attempt_recorded(
    tmp_path: Path, webhook: WebhookReceiver, smtp_server: SmtpServer
) -> None:
    webhook.statuses = [500, 503]
    s = schedule(webhooks=(webhook.url,), emails=())
    store, _, alert_id = deliver_one(tmp_path / "db", s, settings_for(smtp_server))
    assert len(webhook.posts()) == 3
    [d] = store.list_deliveries(alert_id)
    assert d.status == "delivered" and d.attempts == 3
    assert [(e["ok"], e["detail"]) for e in d.log] == [
        (False, "the webhook answered HTTP 500"),
        (False, "the webhook answered HTTP 503"),
        (True, "HTTP 200"),
    ]
    # Every POST of one delivery carries the same delivery id, so a receiver can drop repeats.
    assert len({p.headers["X-ScanScribe-Delivery"] for p in webhook.posts()}) == 1


def test_an_undeliverable_alert_is_kept_and_sent_when_the_receiver_is_back(
    tmp_path: Path, webhook: WebhookReceiver, smtp_server: SmtpServer
) -> None:
    webhook.statuses = [500] * 3
    s = schedule(webhooks=(webhook.url,), emails=())
    now = [time.time()]
    store, deliverer, alert_id = deliver_one(
        tmp_path / "db", s, settings_for(smtp_server), clock=lambda: now[0]
    )
    [d] = store.list_deliveries(alert_id)
    assert d.status == "pending" and d.attempts == 3 and d.rounds == 1
    assert d.next_attempt_at == pytest.approx(now[0] + 60)
    assert deliverer.retry_due() == 0 and len(webhook.posts()) == 3  # not yet due: no attempt
    now[0] += 61
    assert deliverer.retry_due() == 1
    [d] = store.list_deliveries(alert_id)
    assert d.status == "delivered" and d.attempts == 4 and len(d.log) == 4
    assert len(webhook.posts()) == 4


def test_a_dead_webhook_is_retried_a_bounded_number_of_times_without_its_url_in_the_log(
    tmp_path: Path, smtp_server: SmtpServer, closed_port: int
) -> None:
    url = f"http://127.0.0.1:{closed_port}/hooks/s3cr3tpath"
    s = schedule(webhooks=(url,), emails=())
    store, _, alert_id = deliver_one(tmp_path / "db", s, settings_for(smtp_server))
    [d] = store.list_deliveries(alert_id)
    assert d.status == "pending" and d.attempts == 3
    assert d.last_error == "could not reach the webhook (ConnectError)"
    assert all("s3cr3tpath" not in e["detail"] for e in d.log)


def test_an_smtp_password_is_never_sent_without_tls(
    tmp_path: Path, smtp_server: SmtpServer
) -> None:
    s = schedule(emails=("soc@example.com",))
    store, _, alert_id = deliver_one(
        tmp_path / "db", s, settings_for(smtp_server, user="alerts"), attempts=1
    )
    [d] = store.list_deliveries(alert_id)
    assert d.status == "pending"
    assert "offers no STARTTLS, so the SMTP password was not sent" in d.last_error
    assert smtp_server.messages() == []


def test_no_change_or_an_unwatched_change_raises_no_alert() -> None:
    s = schedule()
    same = prepare_alert(s, _run(s), report("a"), report("b"), no_brief, 0.0)
    assert same == (None, [])
    closed = prepare_alert(s, _run(s), report("a", HOSTILE_TELNET), report("b"), no_brief, 0.0)
    assert closed == (None, [])  # default alert_on: opened ports and new hosts only
    any_change = schedule(alert_on=("any_change",))
    alert, deliveries = prepare_alert(
        any_change, _run(s), report("a", HOSTILE_TELNET), report("b"), no_brief, 0.0
    )
    assert alert is not None and alert.payload["matched"] == ["any_change"]
    assert alert.payload["closed"][0]["port"] == 23 and len(deliveries) == 1


def test_a_webhook_that_never_answers_times_out_and_is_kept(
    tmp_path: Path, silent_port: int
) -> None:
    s = schedule(webhooks=(f"http://127.0.0.1:{silent_port}/hook",), emails=())
    alert, deliveries = prepare_alert(
        s, _run(s), report("r-old"), report("r-new", HOSTILE_TELNET), no_brief, time.time()
    )
    assert alert is not None
    store = SQLiteMonitorStore(tmp_path / "db")
    store.save_alert(alert, deliveries)
    channels = {"webhook": WebhookChannel(SECRET, timeout_s=0.3)}
    started = time.monotonic()
    Deliverer(store, channels, "test", pause=lambda s: None).deliver(deliveries, alert)
    assert time.monotonic() - started < 5  # three bounded tries, not a hang
    [d] = store.list_deliveries(alert.id)
    assert d.status == "pending" and d.attempts == 3
    assert [e["detail"] for e in d.log] == ["no answer within 0.3 s"] * 3
