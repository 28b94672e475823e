"""ScanScribe settings, read from environment variables and checked once at start-up.

Streamlit exports the top-level keys of ``.streamlit/secrets.toml`` into the process
environment, so the dashboard and the command lines read the same variables.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

PROJECT_ROOT = Path(__file__).resolve().parent
DEFAULT_DB = PROJECT_ROOT / "data" / "scanscribe.db"
DEFAULT_SCOPE = "127.0.0.0/8,::1/128"
DEFAULT_OLLAMA_HOST = "http://127.0.0.1:11434"
STORES = ("sqlite", "firestore")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class ConfigError(ValueError):
    """A setting has a value ScanScribe cannot use; the message names it and what it accepts."""


@dataclass(frozen=True)
class Config:
    """Every setting ScanScribe reads, already validated."""

    ollama_host: str = DEFAULT_OLLAMA_HOST
    store: str = "sqlite"
    db_path: Path = DEFAULT_DB
    scope: tuple[Network, ...] = field(
        default_factory=lambda: parse_scope(DEFAULT_SCOPE, "SCANSCRIBE_SCOPE")
    )
    max_targets: int = 4096
    max_jobs: int = 2
    scan_timeout_s: int = 3600
    ollama_timeout_s: float = 120.0
    ollama_connect_timeout_s: float = 5.0
    firebase_project: str | None = None
    google_credentials: str | None = None
    firestore_emulator_host: str | None = None
    firestore_timeout_s: float = 10.0
    password_hash: str | None = None
    users_path: Path | None = None
    session_idle_min: int = 60
    server_address: str = "127.0.0.1"
    user: str = "local"


def parse_scope(raw: str, name: str = "SCANSCRIBE_SCOPE") -> tuple[Network, ...]:
    """Turn a comma-separated list of CIDRs into networks, or raise ConfigError."""
    nets: list[Network] = []
    for part in raw.split(","):
        token = part.strip()
        if not token:
            continue
        try:
            nets.append(ipaddress.ip_network(token, strict=False))
        except ValueError:
            raise ConfigError(
                f"{name}: {token!r} is not a network. It accepts comma-separated CIDRs, "
                f"for example {DEFAULT_SCOPE!r}."
            ) from None
    if not nets:
        raise ConfigError(
            f"{name} is empty. It accepts comma-separated CIDRs, for example {DEFAULT_SCOPE!r}."
        )
    return tuple(nets)


def _int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise ConfigError(f"{name}: {raw!r} is not a whole number from {low} to {high}.")
    return value


def _float(env: Mapping[str, str], name: str, default: float, low: float, high: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise ConfigError(f"{name}: {raw!r} is not a number of seconds from {low:g} to {high:g}.")
    return value


def _ollama_host(raw: str) -> str:
    host = raw.strip() or DEFAULT_OLLAMA_HOST
    if "://" not in host:
        host = "http://" + host
    parts = urlsplit(host)
    try:
        port_ok = parts.port is None or 0 < parts.port < 65536
    except ValueError:
        port_ok = False
    if parts.scheme not in ("http", "https") or not parts.hostname or not port_ok:
        raise ConfigError(
            f"OLLAMA_HOST: {raw!r} is not a server address. It accepts a URL such as "
            f"{DEFAULT_OLLAMA_HOST!r} or host:port."
        )
    return host.rstrip("/")


def load(env: Mapping[str, str] | None = None) -> Config:
    """Read and validate every setting from ``env`` (the process environment by default)."""
    env = os.environ if env is None else env
    store = env.get("SCANSCRIBE_STORE", "").strip().lower() or "sqlite"
    if store not in STORES:
        raise ConfigError(
            f"SCANSCRIBE_STORE: {store!r} is not a store. It accepts 'sqlite' (the default) "
            "or 'firestore'."
        )
    db_raw = env.get("SCANSCRIBE_DB", "").strip()
    db_path = Path(db_raw).expanduser() if db_raw else DEFAULT_DB
    if db_path.exists() and db_path.is_dir():
        raise ConfigError(
            f"SCANSCRIBE_DB: {db_raw!r} is a directory. It accepts the path of a SQLite file."
        )
    scope_raw = env.get("SCANSCRIBE_SCOPE", "").strip() or DEFAULT_SCOPE
    emulator = env.get("FIRESTORE_EMULATOR_HOST", "").strip() or None
    project = env.get("SCANSCRIBE_FIREBASE_PROJECT", "").strip() or None
    creds = env.get("GOOGLE_APPLICATION_CREDENTIALS", "").strip() or None
    if store == "firestore" and creds and not Path(creds).is_file():
        raise ConfigError(
            f"GOOGLE_APPLICATION_CREDENTIALS: {creds!r} is not a readable file. It accepts the "
            "path of a service-account JSON key kept outside the repository."
        )
    if store == "firestore" and not (creds or emulator):
        raise ConfigError(
            "SCANSCRIBE_STORE is 'firestore' but no credentials are set: set "
            "GOOGLE_APPLICATION_CREDENTIALS to a service-account key file, or "
            "FIRESTORE_EMULATOR_HOST to a local emulator (host:port)."
        )
    users_raw = env.get("SCANSCRIBE_USERS", "").strip()
    return Config(
        ollama_host=_ollama_host(env.get("OLLAMA_HOST", "")),
        store=store,
        db_path=db_path,
        scope=parse_scope(scope_raw),
        max_targets=_int(env, "SCANSCRIBE_MAX_TARGETS", 4096, 1, 65536),
        max_jobs=_int(env, "SCANSCRIBE_MAX_JOBS", 2, 1, 16),
        scan_timeout_s=_int(env, "SCANSCRIBE_SCAN_TIMEOUT", 3600, 10, 86400),
        ollama_timeout_s=_float(env, "SCANSCRIBE_OLLAMA_TIMEOUT", 120.0, 1.0, 3600.0),
        firebase_project=project,
        google_credentials=creds,
        firestore_emulator_host=emulator,
        firestore_timeout_s=_float(env, "SCANSCRIBE_FIRESTORE_TIMEOUT", 10.0, 0.5, 120.0),
        password_hash=env.get("SCANSCRIBE_PASSWORD_HASH", "").strip() or None,
        users_path=Path(users_raw).expanduser() if users_raw else None,
        session_idle_min=_int(env, "SCANSCRIBE_SESSION_IDLE_MIN", 60, 1, 7 * 24 * 60),
        server_address=env.get("STREAMLIT_SERVER_ADDRESS", "").strip() or "127.0.0.1",
        user=env.get("SCANSCRIBE_USER", "").strip() or env.get("USER", "") or "local",
    )
