"""A TEST DOUBLE of the Ollama HTTP server, for tests and benchmarks only.

It speaks Ollama's documented wire format on 127.0.0.1 (a free port): /api/version, /api/tags,
/api/show, /api/ps, and NDJSON streaming of /api/chat and /api/generate, ending with a
``done: true`` chunk that carries the durations (nanoseconds) and token counts. A missing model
gets 404 ``{"error": "model 'x' not found"}``. Each model follows a script: the answer, the delay
before the first token and between chunks, thinking text, a mid-stream ``{"error": ...}`` line
with HTTP 200, a stall, or a dropped connection. Requests are served concurrently, every request
is recorded, and a stream the client closes early is noticed (as Ollama stops generating then).
"""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DEFAULT_ANSWER = (
    "The scan found 127.0.0.1 with port 22/tcp open running OpenSSH. "
    "Restrict SSH to the admin network and verify the version against vendor advisories."
)


@dataclass
class ModelScript:
    """How one model of the double answers."""

    answer: str = DEFAULT_ANSWER
    chunks: list[str] | None = None  # explicit pieces; otherwise the answer split into words
    thinking: str = ""
    first_token_delay_s: float = 0.0
    # Send the status line and headers only with the first piece, after first_token_delay_s,
    # as a server that writes nothing until the model has read the prompt.
    headers_with_first_token: bool = False
    chunk_delay_s: float = 0.0
    error_after: int | None = None  # send {"error": ...} after this many content chunks
    error_message: str = "an error was encountered while running the model"
    stall_after: int | None = None  # stop sending (connection kept open) after this many
    drop_after: int | None = None  # close the socket abruptly after this many
    size: int = 4_109_000_000
    family: str = "llama"
    parameter_size: str = "7B"
    context_length: int = 8192
    capabilities: tuple[str, ...] = ("completion",)
    load_duration_ns: int = 1_500_000

    def pieces(self) -> list[str]:
        """The content pieces this model streams."""
        if self.chunks is not None:
            return list(self.chunks)
        words = self.answer.split(" ")
        return [w if i == 0 else " " + w for i, w in enumerate(words)]


@dataclass
class Recorded:
    """One request the double received."""

    method: str
    path: str
    body: dict[str, Any] = field(default_factory=dict)


@dataclass
class StreamEnd:
    """How one stream ended, seen from the server side."""

    model: str
    path: str
    chunks_sent: int
    how: str  # complete | client_closed | error | dropped | stalled


class OllamaDouble:
    """A threaded HTTP server imitating Ollama; use as a context manager or start()/stop()."""

    def __init__(self, models: dict[str, ModelScript] | None = None, version: str = "0.12.6"):
        self.models: dict[str, ModelScript] = (
            dict(models) if models is not None else {"llama3.2:latest": ModelScript()}
        )
        self.version = version
        self.requests: list[Recorded] = []
        self.ends: list[StreamEnd] = []
        self.active_streams = 0
        self._cond = threading.Condition()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> OllamaDouble:
        """Listen on a free loopback port and serve in a background thread."""
        double = self

        class Handler(_Handler):
            owner = double

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="ollama-double"
        )
        self._thread.daemon = True
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; stalled streams are released."""
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> OllamaDouble:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The port it listens on."""
        assert self._server is not None
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """The value to put in OLLAMA_HOST."""
        return f"http://127.0.0.1:{self.port}"

    # -- what tests look at --------------------------------------------------------------------
    def chat_requests(self) -> list[Recorded]:
        """The /api/chat and /api/generate requests received so far."""
        with self._cond:
            return [r for r in self.requests if r.path in ("/api/chat", "/api/generate")]

    def wait_for(self, predicate: Callable[[OllamaDouble], bool], timeout: float = 10.0) -> bool:
        """Wait until ``predicate(self)`` holds (checked whenever something happens)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(self):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True

    def _record(self, rec: Recorded) -> None:
        with self._cond:
            self.requests.append(rec)
            self._cond.notify_all()

    def _stream_started(self) -> None:
        with self._cond:
            self.active_streams += 1
            self._cond.notify_all()

    def _stream_ended(self, end: StreamEnd) -> None:
        with self._cond:
            self.active_streams -= 1
            self.ends.append(end)
            self._cond.notify_all()

    def _sent(self) -> None:
        with self._cond:
            self._cond.notify_all()


def _client_gone(sock: socket.socket) -> bool:
    """True when the client closed its end (readable with nothing to read)."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
        if not readable:
            return False
        return sock.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True


class _Handler(BaseHTTPRequestHandler):
    owner: OllamaDouble
    protocol_version = "HTTP/1.1"
    # Ollama (Go) sends with TCP_NODELAY; without it each line waits for a delayed ACK (~40 ms).
    disable_nagle_algorithm = True

    def handle(self) -> None:
        """Serve a connection; a client that resets it between requests is not an error."""
        try:
            super().handle()
        except (ConnectionResetError, BrokenPipeError):
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet."""

    # -- plumbing ------------------------------------------------------------------------------
    def _json(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _read_body(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else {}
        except json.JSONDecodeError:
            body = {"_raw": raw.decode(errors="replace")}
        return body if isinstance(body, dict) else {"_raw": body}

    def _script(self, name: str) -> tuple[str, ModelScript] | None:
        models = self.owner.models
        if name in models:
            return name, models[name]
        if ":" not in name and name + ":latest" in models:
            return name + ":latest", models[name + ":latest"]
        return None

    def _not_found(self, name: str) -> None:
        self._json(404, {"error": f"model '{name}' not found"})

    # -- endpoints -----------------------------------------------------------------------------
    def do_GET(self) -> None:
        """GET /api/version, /api/tags, /api/ps."""
        self.owner._record(Recorded("GET", self.path))
        if self.path == "/api/version":
            self._json(200, {"version": self.owner.version})
        elif self.path == "/api/tags":
            self._json(200, {"models": [_tag(n, s) for n, s in self.owner.models.items()]})
        elif self.path == "/api/ps":
            names = list(self.owner.models.items())[:1]
            self._json(200, {"models": [_ps(n, s) for n, s in names]})
        else:
            self._json(404, {"error": "not found"})

    def do_POST(self) -> None:
        """POST /api/show, /api/chat, /api/generate."""
        body = self._read_body()
        self.owner._record(Recorded("POST", self.path, body))
        name = str(body.get("model") or body.get("name") or "")
        if self.path not in ("/api/show", "/api/chat", "/api/generate"):
            self._json(404, {"error": "not found"})
            return
        found = self._script(name)
        if found is None:
            self._not_found(name)
            return
        full, script = found
        if self.path == "/api/show":
            self._json(200, _show(full, script))
            return
        if body.get("stream", True) is False:
            text = "".join(script.pieces())
            final = _final(full, script, text, chat=self.path == "/api/chat")
            self._json(200, final)
            return
        self._stream(full, script, body, chat=self.path == "/api/chat")

    def _stream(self, name: str, script: ModelScript, body: dict[str, Any], chat: bool) -> None:
        owner = self.owner
        started = time.monotonic_ns()
        sent = 0
        how = "complete"
        if not script.headers_with_first_token:
            self._headers()
        owner._stream_started()
        try:
            if not self._pause(script.first_token_delay_s):
                how = "client_closed"
                return
            if script.headers_with_first_token:
                self._headers()
            want_thinking = body.get("think") is not False
            if script.thinking and want_thinking:
                for word in script.thinking.split(" "):
                    self._line(_piece(name, "", word + " ", chat))
            for i, piece in enumerate(script.pieces()):
                if script.error_after is not None and i == script.error_after:
                    self._line({"error": script.error_message})
                    how = "error"
                    break
                if script.stall_after is not None and i == script.stall_after:
                    how = "stalled"
                    while not owner._stopping.is_set() and not _client_gone(self.connection):
                        owner._stopping.wait(0.02)
                    if _client_gone(self.connection):
                        how = "client_closed"
                    self.close_connection = True
                    return
                if script.drop_after is not None and i == script.drop_after:
                    how = "dropped"
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if i and not self._pause(script.chunk_delay_s):
                    how = "client_closed"
                    return
                if _client_gone(self.connection):
                    how = "client_closed"
                    return
                self._line(_piece(name, piece, "", chat))
                sent += 1
                owner._sent()
            else:
                text = "".join(script.pieces())
                final = _final(name, script, text, chat, time.monotonic_ns() - started)
                final["message" if chat else "response"] = (
                    {"role": "assistant", "content": ""} if chat else ""
                )
                self._line(final)
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except OSError:
            how = "client_closed"
            self.close_connection = True
        finally:
            owner._stream_ended(StreamEnd(name, self.path, sent, how))

    def _headers(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()

    def _line(self, obj: dict[str, Any]) -> None:
        data = json.dumps(obj).encode() + b"\n"
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _pause(self, seconds: float) -> bool:
        """Wait ``seconds`` like a model thinking; False if the client went away meanwhile."""
        if seconds <= 0:
            return True
        deadline = time.monotonic() + seconds
        while True:
            if _client_gone(self.connection):
                self.close_connection = True
                return False
            left = deadline - time.monotonic()
            if left <= 0 or self.owner._stopping.is_set():
                return True
            self.owner._stopping.wait(min(left, 0.02))


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000000000Z", time.gmtime())


def _details(s: ModelScript) -> dict[str, Any]:
    return {
        "parent_model": "",
        "format": "gguf",
        "family": s.family,
        "families": [s.family],
        "parameter_size": s.parameter_size,
        "quantization_level": "Q4_K_M",
    }


def _tag(name: str, s: ModelScript) -> dict[str, Any]:
    return {
        "name": name,
        "model": name,
        "modified_at": "2026-11-01T10:00:00.000000000Z",
        "size": s.size,
        "digest": "0" * 64,
        "details": _details(s),
    }


def _ps(name: str, s: ModelScript) -> dict[str, Any]:
    return {
        "name": name,
        "model": name,
        "size": s.size,
        "digest": "0" * 64,
        "details": _details(s),
        "expires_at": "2026-11-22T10:05:00.000000000Z",
        "size_vram": s.size,
        "context_length": s.context_length,
    }


def _show(name: str, s: ModelScript) -> dict[str, Any]:
    return {
        "modelfile": f"FROM {name}\n",
        "parameters": f"num_ctx {s.context_length}",
        "template": "{{ .Prompt }}",
        "details": _details(s),
        "model_info": {
            "general.architecture": s.family,
            f"{s.family}.context_length": s.context_length,
        },
        "capabilities": list(s.capabilities),
        "modified_at": "2026-11-01T10:00:00.000000000Z",
    }


def _piece(name: str, content: str, thinking: str, chat: bool) -> dict[str, Any]:
    base: dict[str, Any] = {"model": name, "created_at": _now(), "done": False}
    if chat:
        message: dict[str, Any] = {"role": "assistant", "content": content}
        if thinking:
            message["thinking"] = thinking
        base["message"] = message
    else:
        base["response"] = content
        if thinking:
            base["thinking"] = thinking
    return base


def _final(
    name: str, s: ModelScript, text: str, chat: bool, elapsed_ns: int | None = None
) -> dict[str, Any]:
    eval_count = max(1, len(s.pieces()))
    total = elapsed_ns if elapsed_ns is not None else 10_000_000
    final: dict[str, Any] = {
        "model": name,
        "created_at": _now(),
        "done": True,
        "done_reason": "stop",
        "total_duration": total + s.load_duration_ns,
        "load_duration": s.load_duration_ns,
        "prompt_eval_count": 412,
        "prompt_eval_duration": 2_000_000,
        "eval_count": eval_count,
        "eval_duration": max(1, total - 2_000_000) if elapsed_ns else 8_000_000,
    }
    if chat:
        final["message"] = {"role": "assistant", "content": text}
    else:
        final["response"] = text
    return final
