"""Alert e-mail over TLS to a real SMTP server (aiosmtpd) on loopback: STARTTLS and smtps with a
certificate from a test authority, the SMTP login only inside TLS, and a certificate that is not
trusted or names another host refused with nothing sent and a message saying what to set.
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from config import ConfigError
from monitor.settings import MonitorSettings, load
from tests.browser import free_port
from tests.test_monitor_alerts import PASSWORD, SECRET, deliver_one, schedule

USER = "alerts"


@dataclass
class Authority:
    """A certificate authority made for one test, and the PEM file that holds it."""

    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate
    pem: Path

    def issue(self, folder: Path, names: list[x509.GeneralName]) -> tuple[Path, Path]:
        """A server certificate for ``names`` signed by this authority: (cert file, key file)."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mail")]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
            .sign(self.key, hashes.SHA256())
        )
        cert_file, key_file = folder / "server.pem", folder / "server.key"
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_file.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return cert_file, key_file


def make_authority(folder: Path) -> Authority:
    """A fresh self-signed certificate authority, written to ``folder/ca.pem``."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ScanScribe test CA")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    pem = folder / "ca.pem"
    pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return Authority(key, cert, pem)


LOOPBACK = [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]


@dataclass
class Seen:
    """What the TLS mail server saw: logins (and whether each came inside TLS) and messages."""

    logins: list[tuple[str, str, bool]] = field(default_factory=list)
    messages: list[tuple[list[str], bytes, bool]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Handler:
    def __init__(self, seen: Seen) -> None:
        self.seen = seen

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        secure = server.transport.get_extra_info("ssl_object") is not None
        with self.seen.lock:
            self.seen.messages.append((list(envelope.rcpt_tos), envelope.content, secure))
        return "250 OK"


def _authenticator(seen: Seen) -> Any:
    def check(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        assert isinstance(data, LoginPassword)
        user, password = data.login.decode(), data.password.decode()
        secure = server.transport.get_extra_info("ssl_object") is not None
        with seen.lock:
            seen.logins.append((user, password, secure))
        return AuthResult(success=(user, password) == (USER, PASSWORD))

    return check


@contextmanager
def tls_server(cert: tuple[Path, Path], *, implicit: bool) -> Iterator[tuple[int, Seen]]:
    """An aiosmtpd server on 127.0.0.1 with ``cert``: TLS from the first byte (``implicit``,
    smtps) or STARTTLS required before anything else; logins accepted only inside TLS."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*cert)
    seen = Seen()
    tls: dict[str, Any] = (
        {"ssl_context": context} if implicit else {"tls_context": context, "require_starttls": True}
    )
    controller = Controller(
        _Handler(seen),
        hostname="127.0.0.1",
        port=free_port(),
        authenticator=_authenticator(seen),
        # aiosmtpd counts only STARTTLS as TLS here; on smtps the whole connection is TLS, and
        # the authenticator records that each login came inside it.
        auth_require_tls=not implicit,
        **tls,
    )
    controller.start()
    try:
        yield controller.port, seen
    finally:
        controller.stop()


def settings(url: str, ca_file: Path | None) -> MonitorSettings:
    """The monitor settings from the environment a team would set."""
    env = {
        "SCANSCRIBE_SMTP_URL": url,
        "SCANSCRIBE_SMTP_USER": USER,
        "SCANSCRIBE_SMTP_PASSWORD": PASSWORD,
        "SCANSCRIBE_SMTP_FROM": "scanscribe@example.com",
        "SCANSCRIBE_WEBHOOK_SECRET": SECRET,
        "SCANSCRIBE_MIN_INTERVAL": "1s",
    }
    if ca_file is not None:
        env["SCANSCRIBE_SMTP_CA_FILE"] = str(ca_file)
    return load(env)


@pytest.fixture
def authority(tmp_path: Path) -> Authority:
    """A certificate authority of this test's own."""
    return make_authority(tmp_path)


@pytest.mark.parametrize("scheme", ["smtp", "smtps"])
def test_alert_mail_goes_through_tls_with_the_login_inside_it(
    tmp_path: Path, authority: Authority, scheme: str
) -> None:
    cert = authority.issue(tmp_path, LOOPBACK)
    with tls_server(cert, implicit=scheme == "smtps") as (port, seen):
        cfg = settings(f"{scheme}://127.0.0.1:{port}", authority.pem)
        store, _, alert_id = deliver_one(tmp_path / "db", schedule(), cfg)
    [email] = [d for d in store.list_deliveries(alert_id) if d.channel == "email"]
    assert email.status == "delivered", email.last_error
    # The password reached the server once, inside TLS; so did the message.
    assert seen.logins == [(USER, PASSWORD, True)]
    [(rcpt, content, secure)] = seen.messages
    assert rcpt == ["soc@example.com"] and secure
    assert b"127.0.0.1" in content and b"23/tcp" in content


@pytest.mark.parametrize("scheme", ["smtp", "smtps"])
def test_a_certificate_from_an_unknown_authority_is_refused_and_says_what_to_set(
    tmp_path: Path, authority: Authority, scheme: str
) -> None:
    """Without SCANSCRIBE_SMTP_CA_FILE the system's authorities decide, and none of them signed
    this certificate: no password, no message, and the delivery says what to set."""
    cert = authority.issue(tmp_path, LOOPBACK)
    with tls_server(cert, implicit=scheme == "smtps") as (port, seen):
        cfg = settings(f"{scheme}://127.0.0.1:{port}", None)
        store, _, alert_id = deliver_one(tmp_path / "db", schedule(), cfg)
    [email] = [d for d in store.list_deliveries(alert_id) if d.channel == "email"]
    assert email.status != "delivered"
    assert "certificate was not accepted" in email.last_error
    assert "SCANSCRIBE_SMTP_CA_FILE" in email.last_error
    assert PASSWORD not in email.last_error
    assert seen.logins == [] and seen.messages == []


def test_a_certificate_for_another_host_is_refused(tmp_path: Path, authority: Authority) -> None:
    """Trusted authority, wrong name: a certificate for mail.example.test presented by the
    server at 127.0.0.1 is refused before the login."""
    cert = authority.issue(tmp_path, [x509.DNSName("mail.example.test")])
    with tls_server(cert, implicit=False) as (port, seen):
        cfg = settings(f"smtp://127.0.0.1:{port}", authority.pem)
        store, _, alert_id = deliver_one(tmp_path / "db", schedule(), cfg)
    [email] = [d for d in store.list_deliveries(alert_id) if d.channel == "email"]
    assert email.status != "delivered"
    assert "certificate was not accepted" in email.last_error
    assert "127.0.0.1" in email.last_error
    assert seen.logins == [] and seen.messages == []


def test_a_ca_file_that_is_missing_or_not_a_certificate_is_refused_at_start(
    tmp_path: Path,
) -> None:
    missing = tmp_path / "nope.pem"
    with pytest.raises(ConfigError, match=r"SCANSCRIBE_SMTP_CA_FILE: .* does not exist"):
        settings("smtp://127.0.0.1:25", missing)
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    with pytest.raises(ConfigError, match="holds no PEM certificate") as caught:
        settings("smtp://127.0.0.1:25", junk)
    assert "certificate authority that signed" in str(caught.value)
