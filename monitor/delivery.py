"""Delivering alerts by webhook and e-mail: bounded retries with back-off, every attempt kept.

A delivery is one alert to one webhook or address. Each round tries it a few times with growing
pauses; when the round fails the delivery stays ``pending`` and comes back after a longer wait
(a minute, then five, fifteen, then hourly), for as long as it takes: nothing is dropped. Several
schedulers may share the store, so a delivery is leased before it is tried.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import smtplib
import ssl
import time
from collections.abc import Callable, Mapping
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx

from monitor.alerts import EVENT, SIGNATURE_HEADER, email_html, email_subject, email_text, sign
from monitor.errors import DeliveryFailed
from monitor.models import Alert, Delivery
from monitor.settings import MonitorSettings, SmtpSettings
from monitor.storage import MonitorStore
from store.base import NotFound, StoreError

log = logging.getLogger(__name__)

ATTEMPTS_PER_ROUND = 3
BACKOFF_S = (0.5, 2.0)
RETRY_LATER_S = (60.0, 300.0, 900.0, 3600.0)
SEND_TIMEOUT_S = 10.0
LEASE_S = 120.0
LOG_KEPT = 100


def redact_url(url: str) -> str:
    """A webhook URL without its path, query or credentials: chat webhooks keep secrets there."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}/…"


def payload_bytes(payload: Mapping[str, Any]) -> bytes:
    """The exact bytes that are posted (and signed)."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class Channel(Protocol):
    """One way to deliver an alert."""

    kind: str

    def send(self, target: str, alert: Alert, delivery_id: str) -> str:
        """Deliver ``alert`` to ``target``; a short outcome, or DeliveryFailed."""
        ...


class WebhookChannel:
    """POSTs the alert's JSON, signed with HMAC-SHA256 when a secret is set."""

    kind = "webhook"

    def __init__(self, secret: str = "", timeout_s: float = SEND_TIMEOUT_S) -> None:
        self._secret = secret
        self.timeout_s = timeout_s
        # No proxies from the environment and no redirects: the body goes where it was told.
        self._http = httpx.Client(timeout=timeout_s, trust_env=False, follow_redirects=False)

    def send(self, target: str, alert: Alert, delivery_id: str) -> str:
        """POST the payload; 2xx is delivered, anything else (or no answer) is a failure."""
        body = payload_bytes(alert.payload)
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "ScanScribe",
            "X-ScanScribe-Event": EVENT,
            "X-ScanScribe-Delivery": delivery_id,
        }
        if self._secret:
            headers[SIGNATURE_HEADER] = sign(body, self._secret)
        try:
            resp = self._http.post(target, content=body, headers=headers)
        except httpx.TimeoutException:
            raise DeliveryFailed(f"no answer within {self.timeout_s:g} s") from None
        except httpx.HTTPError as exc:
            # The exception text can quote the URL; only its type is kept.
            raise DeliveryFailed(f"could not reach the webhook ({type(exc).__name__})") from None
        if 200 <= resp.status_code < 300:
            return f"HTTP {resp.status_code}"
        raise DeliveryFailed(f"the webhook answered HTTP {resp.status_code}")

    def close(self) -> None:
        """Close the HTTP connections."""
        self._http.close()


class EmailChannel:
    """Sends a plain-text and an HTML part through the configured SMTP server."""

    kind = "email"

    def __init__(self, smtp: SmtpSettings | None, timeout_s: float = SEND_TIMEOUT_S) -> None:
        self.smtp = smtp
        self.timeout_s = timeout_s

    def message(self, target: str, alert: Alert, delivery_id: str) -> EmailMessage:
        """The e-mail for one recipient."""
        assert self.smtp is not None
        msg = EmailMessage()
        msg["Subject"] = email_subject(alert.payload)
        msg["From"] = self.smtp.sender
        msg["To"] = target
        msg["Date"] = formatdate(localtime=False)
        msg["Message-ID"] = make_msgid(domain=self.smtp.sender.rsplit("@", 1)[1])
        msg["X-ScanScribe-Delivery"] = delivery_id
        msg.set_content(email_text(alert.payload))
        msg.add_alternative(email_html(alert.payload), subtype="html")
        return msg

    def send(self, target: str, alert: Alert, delivery_id: str) -> str:
        """Connect, upgrade with STARTTLS when offered, log in when configured, send."""
        cfg = self.smtp
        if cfg is None:
            raise DeliveryFailed("no mail server is configured: set SCANSCRIBE_SMTP_URL")
        msg = self.message(target, alert, delivery_id)
        context = cfg.tls_context()
        try:
            smtp: smtplib.SMTP = (
                smtplib.SMTP_SSL(cfg.host, cfg.port, timeout=self.timeout_s, context=context)
                if cfg.tls
                else smtplib.SMTP(cfg.host, cfg.port, timeout=self.timeout_s)
            )
            with smtp:
                smtp.ehlo()
                secure = cfg.tls
                if not cfg.tls and smtp.has_extn("starttls"):
                    smtp.starttls(context=context)
                    smtp.ehlo()
                    secure = True
                if cfg.user:
                    if not secure:
                        raise DeliveryFailed(
                            f"{cfg.host} offers no STARTTLS, so the SMTP password was not sent; "
                            "use smtps:// or a server with STARTTLS"
                        )
                    smtp.login(cfg.user, cfg.password)
                smtp.send_message(msg)
        except DeliveryFailed:
            raise
        except ssl.SSLCertVerificationError as exc:
            raise DeliveryFailed(
                f"{cfg.host}'s certificate was not accepted ({exc.verify_message}), so nothing "
                "was sent; if your own certificate authority signed it, set "
                "SCANSCRIBE_SMTP_CA_FILE to that authority's PEM file"
            ) from None
        except smtplib.SMTPResponseException as exc:
            raise DeliveryFailed(f"the mail server answered {exc.smtp_code}") from None
        except (smtplib.SMTPException, OSError) as exc:
            detail = f"could not send through {cfg.host} ({type(exc).__name__})"
            raise DeliveryFailed(detail) from None
        return f"accepted by {cfg.host}"


def channels_from(settings: MonitorSettings) -> dict[str, Channel]:
    """The webhook and e-mail channels the settings describe."""
    return {
        "webhook": WebhookChannel(settings.webhook_secret),
        "email": EmailChannel(settings.smtp),
    }


class Deliverer:
    """Tries deliveries now and again later, recording every attempt."""

    def __init__(
        self,
        store: MonitorStore,
        channels: Mapping[str, Channel],
        owner: str,
        *,
        clock: Callable[[], float] = time.time,
        pause: Callable[[float], object] = time.sleep,
        attempts: int = ATTEMPTS_PER_ROUND,
        backoff_s: tuple[float, ...] = BACKOFF_S,
        retry_later_s: tuple[float, ...] = RETRY_LATER_S,
    ) -> None:
        self.store = store
        self.channels = channels
        self.owner = owner
        self._clock = clock
        self._pause = pause
        self.attempts = attempts
        self.backoff_s = backoff_s
        self.retry_later_s = retry_later_s

    def attempt_round(self, delivery: Delivery, alert: Alert) -> Delivery:
        """Up to ``attempts`` tries with back-off; the outcome is saved either way."""
        channel = self.channels.get(delivery.channel)
        entries = list(delivery.log)
        d = delivery
        for i in range(self.attempts):
            at = self._clock()
            try:
                if channel is None:
                    raise DeliveryFailed(f"no {delivery.channel} channel in this process")
                outcome = channel.send(delivery.target, alert, delivery.id)
            except DeliveryFailed as exc:
                entries.append({"at": at, "ok": False, "detail": exc.detail})
                d = dataclasses.replace(d, attempts=d.attempts + 1, last_error=exc.detail)
                log.warning("alert %s to %s failed: %s", alert.id, _where(d), exc.detail)
                if i + 1 < self.attempts:
                    self._pause(self.backoff_s[min(i, len(self.backoff_s) - 1)])
                continue
            entries.append({"at": at, "ok": True, "detail": outcome})
            d = dataclasses.replace(
                d,
                status="delivered",
                attempts=d.attempts + 1,
                delivered_at=self._clock(),
                last_error="",
                log=tuple(entries[-LOG_KEPT:]),
            )
            self.store.save_delivery(d)
            return d
        wait = self.retry_later_s[min(d.rounds, len(self.retry_later_s) - 1)]
        d = dataclasses.replace(
            d,
            rounds=d.rounds + 1,
            next_attempt_at=self._clock() + wait,
            log=tuple(entries[-LOG_KEPT:]),
        )
        self.store.save_delivery(d)
        return d

    def deliver(self, deliveries: list[Delivery], alert: Alert) -> list[Delivery]:
        """Try the deliveries of a new alert now (each one leased first)."""
        out = []
        for d in deliveries:
            now = self._clock()
            if self.store.lease_delivery(d.id, self.owner, now, now + LEASE_S):
                out.append(self.attempt_round(d, alert))
        return out

    def retry_due(self) -> int:
        """Try every pending delivery whose time has come; how many were delivered."""
        delivered = 0
        now = self._clock()
        for d in self.store.due_deliveries(now):
            if not self.store.lease_delivery(d.id, self.owner, now, now + LEASE_S):
                continue
            try:
                alert = self.store.get_alert(d.alert_id)
            except NotFound:
                log.error("delivery %s names a missing alert %s", d.id, d.alert_id)
                continue
            except StoreError:
                log.exception("could not read alert %s", d.alert_id)
                continue
            if self.attempt_round(d, alert).status == "delivered":
                delivered += 1
        return delivered


def _where(d: Delivery) -> str:
    return redact_url(d.target) if d.channel == "webhook" else d.target
