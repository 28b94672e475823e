"""Monitor settings, read from environment variables and checked once.

``SCANSCRIBE_MIN_INTERVAL`` the shortest cadence (default ``5m``), ``SCANSCRIBE_WEBHOOK_SECRET``
the key that signs webhook bodies, ``SCANSCRIBE_SMTP_URL`` the mail server (``smtp://`` or
``smtps://``), with ``SCANSCRIBE_SMTP_USER``, ``SCANSCRIBE_SMTP_PASSWORD`` and
``SCANSCRIBE_SMTP_FROM`` (and ``SCANSCRIBE_SMTP_CA_FILE``, the certificate authority to trust
for a mail server with an internal certificate), and ``SCANSCRIBE_SCHEDULER`` (``on`` or
``off``) whether the dashboard runs a scheduler of its own.
"""

from __future__ import annotations

import os
import re
import socket
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from config import ConfigError

DEFAULT_MIN_INTERVAL = "5m"
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$", re.IGNORECASE)
_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
# One address: a local part and a dotted domain, nothing that could start a second header.
EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+$")


def parse_duration(raw: str) -> float:
    """``30s``, ``30m``, ``6h`` or ``1d`` as seconds; ValueError naming the accepted forms."""
    match = _DURATION.match(raw or "")
    if not match or float(match.group(1)) <= 0:
        raise ValueError(
            f"{raw!r} is not a duration. It accepts a number and a unit: s, m, h or d "
            "(for example 30m, 6h, 1d)."
        )
    return float(match.group(1)) * _UNITS[match.group(2).lower()]


@dataclass(frozen=True)
class SmtpSettings:
    """Where and how alert e-mail is sent."""

    host: str
    port: int
    tls: bool  # smtps:// (TLS from the first byte); smtp:// upgrades with STARTTLS when offered
    user: str = ""
    password: str = field(default="", repr=False)
    sender: str = "scanscribe@localhost"
    # PEM file of the certificate authority that signed the server's certificate; when set it is
    # trusted for the mail server instead of the system's list.
    ca_file: str = ""

    def tls_context(self) -> ssl.SSLContext:
        """The TLS settings for the mail server: certificate and host name always checked."""
        return ssl.create_default_context(cafile=self.ca_file or None)


@dataclass(frozen=True)
class MonitorSettings:
    """Every monitor setting, already validated."""

    min_interval_s: float = 300.0
    webhook_secret: str = field(default="", repr=False)
    smtp: SmtpSettings | None = None
    scheduler_enabled: bool = True


def _smtp(env: Mapping[str, str]) -> SmtpSettings | None:
    raw = env.get("SCANSCRIBE_SMTP_URL", "").strip()
    if not raw:
        return None
    parts = urlsplit(raw)
    try:
        port = parts.port
    except ValueError:
        port = -1
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname or port == -1:
        raise ConfigError(
            "SCANSCRIBE_SMTP_URL is not a mail server address. It accepts smtp://HOST[:PORT] "
            "(STARTTLS when the server offers it) or smtps://HOST[:PORT] (TLS), for example "
            "smtp://mail.example.com:587."
        )
    tls = parts.scheme == "smtps"
    user = env.get("SCANSCRIBE_SMTP_USER", "").strip() or unquote(parts.username or "")
    password = env.get("SCANSCRIBE_SMTP_PASSWORD", "") or unquote(parts.password or "")
    sender = env.get("SCANSCRIBE_SMTP_FROM", "").strip() or f"scanscribe@{socket.getfqdn()}"
    if not EMAIL.match(sender):
        raise ConfigError(
            f"SCANSCRIBE_SMTP_FROM: {sender!r} is not an e-mail address. It accepts one "
            "address such as scanscribe@example.com."
        )
    return SmtpSettings(
        host=parts.hostname,
        port=port or (465 if tls else 25),
        tls=tls,
        user=user,
        password=password,
        sender=sender,
        ca_file=_ca_file(env.get("SCANSCRIBE_SMTP_CA_FILE", "").strip()),
    )


def _ca_file(path: str) -> str:
    """``path`` once it is known to hold at least one PEM certificate ("" stays "")."""
    if not path:
        return ""
    fix = (
        "Point it at the PEM file of the certificate authority that signed the mail server's "
        "certificate, or leave it empty to trust the system's authorities."
    )
    try:
        ssl.create_default_context(cafile=path)
    except FileNotFoundError:
        raise ConfigError(f"SCANSCRIBE_SMTP_CA_FILE: {path!r} does not exist. {fix}") from None
    except (ssl.SSLError, OSError, ValueError) as exc:
        raise ConfigError(
            f"SCANSCRIBE_SMTP_CA_FILE: {path!r} holds no PEM certificate "
            f"({type(exc).__name__}). {fix}"
        ) from None
    return path


def load(env: Mapping[str, str] | None = None) -> MonitorSettings:
    """Read and validate the monitor settings from ``env`` (the process environment)."""
    env = os.environ if env is None else env
    raw_min = env.get("SCANSCRIBE_MIN_INTERVAL", "").strip() or DEFAULT_MIN_INTERVAL
    try:
        min_interval = parse_duration(raw_min)
    except ValueError as exc:
        raise ConfigError(f"SCANSCRIBE_MIN_INTERVAL: {exc}") from None
    switch = env.get("SCANSCRIBE_SCHEDULER", "").strip().lower() or "on"
    if switch not in ("on", "off"):
        raise ConfigError(
            f"SCANSCRIBE_SCHEDULER: {switch!r} is not a switch. It accepts 'on' (the default: "
            "the dashboard runs a scheduler) or 'off'."
        )
    return MonitorSettings(
        min_interval_s=min_interval,
        webhook_secret=env.get("SCANSCRIBE_WEBHOOK_SECRET", ""),
        smtp=_smtp(env),
        scheduler_enabled=switch == "on",
    )
