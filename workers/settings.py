"""Worker settings: ``SCANSCRIBE_BROKER`` (the Redis URL) and a worker's site name.

``SCANSCRIBE_BROKER=redis://:PASSWORD@HOST:PORT/DB`` sends scans to Celery workers; unset keeps
scans in the dashboard's own process. A Redis without a password is refused: anyone who can
write to the queues could otherwise ask every worker for scans.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import quote, unquote, urlsplit

from config import ConfigError

BROKER_ENV = "SCANSCRIBE_BROKER"
SITE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
EXAMPLE = "redis://:PASSWORD@10.0.0.5:6379/0"


@dataclass(frozen=True)
class Broker:
    """A validated broker URL; ``url`` holds the password, so it is never logged or shown."""

    url: str = field(repr=False)
    host: str
    port: int
    db: int

    def describe(self) -> str:
        """Where the broker is, without its password."""
        return f"redis://{self.host}:{self.port}/{self.db}"


def parse_broker(raw: str) -> Broker:
    """Validate a Redis URL with a password, or raise ConfigError naming what it accepts."""
    text = raw.strip()
    try:
        parts = urlsplit(text)
        port = parts.port or 6379
    except ValueError:
        port = 0
        parts = urlsplit("")
    if parts.scheme not in ("redis", "rediss") or not parts.hostname or not 0 < port < 65536:
        raise ConfigError(
            f"{BROKER_ENV} is not a Redis URL. It accepts redis://:PASSWORD@HOST:PORT/DB, "
            f"for example {EXAMPLE!r}."
        )
    if not parts.password:
        raise ConfigError(
            f"{BROKER_ENV} has no password. Set `requirepass` in redis.conf and put it in the "
            f"URL: {EXAMPLE!r}."
        )
    db_text = parts.path.strip("/") or "0"
    if not db_text.isdigit() or int(db_text) > 15:
        raise ConfigError(f"{BROKER_ENV}: {db_text!r} is not a Redis database number (0 to 15).")
    if parts.query or parts.fragment:
        raise ConfigError(f"{BROKER_ENV} takes no options after the database number.")
    user = unquote(parts.username or "")
    password = unquote(parts.password)
    # Rebuilt from the parts, so nothing but what was checked reaches the client.

    cred = f"{quote(user, safe='')}:{quote(password, safe='')}@"
    url = f"{parts.scheme}://{cred}{parts.hostname}:{port}/{int(db_text)}"
    return Broker(url=url, host=parts.hostname, port=port, db=int(db_text))


def load_broker(env: Mapping[str, str] | None = None) -> Broker | None:
    """The broker the environment names, or None when scans stay in this process."""
    env = os.environ if env is None else env
    raw = env.get(BROKER_ENV, "").strip()
    return parse_broker(raw) if raw else None


def check_site(name: str) -> str:
    """A site name: lower-case letters, digits, ``-`` and ``_``, up to 32; else ConfigError."""
    if not SITE.match(name or ""):
        raise ConfigError(
            f"Site {name!r} is not a site name. It accepts up to 32 lower-case letters, digits, "
            "'-' and '_', starting with a letter or digit (for example 'dc1' or 'lab')."
        )
    return name
