"""Salted scrypt password hashes, compared in constant time."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
MIN_PASSWORD = 12


def hash_password(password: str, salt: bytes | None = None) -> str:
    """A salted scrypt hash in the form ``scrypt$N$r$p$salt$digest`` (base64 parts)."""
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(
        password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32
    )
    b64 = base64.b64encode
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${b64(salt).decode()}${b64(digest).decode()}"


def looks_like_hash(stored: str) -> bool:
    """Whether ``stored`` has the shape :func:`hash_password` writes (checked at start-up)."""
    parts = stored.split("$")
    if len(parts) != 6 or parts[0] != "scrypt" or not all(p.isdigit() for p in parts[1:4]):
        return False
    try:
        base64.b64decode(parts[4], validate=True)
        return len(base64.b64decode(parts[5], validate=True)) >= 16
    except ValueError:
        return False


def verify_password(password: str, stored: str) -> bool:
    """Compare a password with a stored hash in constant time; a malformed hash never matches."""
    try:
        scheme, n, r, p, salt_b64, digest_b64 = stored.split("$")
        if scheme != "scrypt":
            return False
        salt = base64.b64decode(salt_b64, validate=True)
        want = base64.b64decode(digest_b64, validate=True)
        got = hashlib.scrypt(
            password.encode(), salt=salt, n=int(n), r=int(r), p=int(p), dklen=len(want)
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, want)
