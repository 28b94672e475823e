"""Real receivers for alert tests: a webhook server and an SMTP server (aiosmtpd), on loopback."""

from __future__ import annotations

import email
import email.policy
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from tests.fixtures_firestore import free_port
from tests.fixtures_scanner import wait_for


@dataclass
class Received:
    """One POST the webhook receiver got."""

    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class WebhookReceiver:
    """A loopback HTTP server that records POSTs and answers with scripted status codes."""

    statuses: list[int] = field(default_factory=list)  # answered in order, then 200
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        """The webhook URL, with a secret-looking path as chat webhooks have."""
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/T000/B000/s3cr3tpath"

    def start(self) -> WebhookReceiver:
        """Serve in a thread."""
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver.lock:
                    receiver.received.append(Received(self.path, dict(self.headers), body))
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                """Quiet."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop serving."""
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def posts(self) -> list[Received]:
        """What arrived so far."""
        with self.lock:
            return list(self.received)


class _Sink:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], EmailMessage]] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        with self.lock:
            self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), msg))
        return "250 OK"


@dataclass
class SmtpServer:
    """A real SMTP server (aiosmtpd) on loopback that keeps every message."""

    controller: Controller
    sink: _Sink

    @property
    def url(self) -> str:
        """The SCANSCRIBE_SMTP_URL of this server."""
        return f"smtp://127.0.0.1:{self.controller.port}"

    def messages(self) -> list[tuple[str, list[str], EmailMessage]]:
        """(sender, recipients, message) of every message received."""
        with self.sink.lock:
            return list(self.sink.messages)


@pytest.fixture
def webhook() -> Iterator[WebhookReceiver]:
    """A webhook receiver on loopback answering 200."""
    receiver = WebhookReceiver().start()
    yield receiver
    receiver.stop()


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """An aiosmtpd server on 127.0.0.1 at a free port."""
    sink = _Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield SmtpServer(controller, sink)
    controller.stop()


def parts(msg: EmailMessage) -> tuple[str, str]:
    """The plain-text and HTML bodies of an alert e-mail."""
    plain = msg.get_body(preferencelist=("plain",))
    rich = msg.get_body(preferencelist=("html",))
    assert plain is not None and rich is not None
    return str(plain.get_content()), str(rich.get_content())


__all__ = ["SmtpServer", "WebhookReceiver", "parts", "smtp_server", "wait_for", "webhook"]
