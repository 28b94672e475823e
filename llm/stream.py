"""One model's answer streamed in a worker thread, with metrics and a stop switch.

The worker never touches Streamlit: it appends text to a thread-safe buffer that any number of
readers follow (a page after a rerun starts reading again from the beginning). ``follow``
coalesces the pieces that arrive within a short window, because ``st.write_stream`` re-sends the
whole text at every piece it is given.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import httpx

from llm.client import Chunk, OllamaGateway, ServerStats
from llm.errors import LLMError, LLMTimeout, StreamBroken
from llm.mdsafe import visible_controls

log = logging.getLogger(__name__)

STATES = ("pending", "running", "complete", "stopped", "failed")
# Pieces arriving within this window reach the page as one update: about 50 updates a second at
# most, smooth to the eye, while st.write_stream re-sends the whole text far less often.
DEFAULT_WINDOW_S = 0.02

Callback = Callable[["StreamJob"], None]
# How often a reader waiting for the first words says again what the model is doing.
WAIT_TICK_S = 0.5


def waiting_note(model: str, elapsed_s: float, thinking_chars: int) -> str:
    """What to say before the answer's first words: who is busy, doing what, for how long."""
    if thinking_chars:
        doing = f"is thinking ({thinking_chars:,} characters of reasoning so far)"
    else:
        doing = "is reading the prompt; on a CPU this can take a minute or more"
    return f"Waiting for the first words: {model} {doing} · {elapsed_s:.0f} s"


@dataclass(frozen=True)
class StreamMetrics:
    """What one stream cost; None where it is not known (yet)."""

    ttft_s: float | None = None  # measured here: Ollama does not report it
    total_s: float | None = None  # measured here, request to last byte
    tokens_per_s: float | None = None  # eval_count / eval_duration
    prompt_tokens: int | None = None
    output_tokens: int | None = None
    load_s: float | None = None
    server_total_s: float | None = None
    chunks: int = 0
    done_reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Plain values for storage and JSON."""
        return asdict(self)


def metrics_from(
    ttft_s: float | None, total_s: float | None, chunks: int, stats: ServerStats | None
) -> StreamMetrics:
    """Combine the app's timings with the server's final statistics."""
    if stats is None:
        return StreamMetrics(ttft_s=ttft_s, total_s=total_s, chunks=chunks)
    tps = stats.eval_count / (stats.eval_duration_ns / 1e9) if stats.eval_duration_ns else None
    return StreamMetrics(
        ttft_s=ttft_s,
        total_s=total_s,
        tokens_per_s=tps,
        prompt_tokens=stats.prompt_eval_count,
        output_tokens=stats.eval_count,
        load_s=stats.load_duration_ns / 1e9,
        server_total_s=stats.total_duration_ns / 1e9,
        chunks=chunks,
        done_reason=stats.done_reason,
    )


def _shut(response: httpx.Response) -> None:
    """Close a streaming response's socket from any thread, waking a blocked read."""
    stream = response.extensions.get("network_stream")
    sock = stream.get_extra_info("socket") if stream is not None else None
    if isinstance(sock, socket.socket):
        # shutdown (unlike close) wakes a recv blocked in the worker and sends FIN at once.
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


class StreamJob:
    """Stream one model's answer in a worker thread; read it with :meth:`follow`."""

    def __init__(
        self,
        gateway: OllamaGateway,
        model: str,
        messages: Sequence[Mapping[str, Any]],
        options: Mapping[str, Any] | None = None,
        *,
        think: bool | None = None,
        on_progress: Callback | None = None,
        on_finish: Callback | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.gateway = gateway
        self.model = model
        self.messages = list(messages)
        self.options = dict(options or {})
        self.think = think
        self._on_progress = on_progress
        self._on_finish = on_finish
        self._clock = clock
        self._cond = threading.Condition()
        self._pieces: list[str] = []
        self._thinking: list[str] = []
        self._state = "pending"
        self._finished = False
        self._ending = False  # the worker or an early Stop has begun to finish the job
        self._t0: float | None = None
        self._stop = threading.Event()
        self._response: httpx.Response | None = None
        self._thread: threading.Thread | None = None
        self.error: LLMError | None = None
        self.metrics = StreamMetrics()
        self.started_at: float | None = None

    # -- control -------------------------------------------------------------------------------
    def start(self) -> StreamJob:
        """Start streaming in a daemon worker thread."""
        self._thread = threading.Thread(target=self.run, name=f"stream-{self.model}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """End the stream now; the text that arrived is kept and the state becomes ``stopped``.

        Before the server has answered at all (a model reading a long prompt may send nothing,
        not even headers, for minutes) there is no connection to close yet: the job ends here
        at once, and the worker drops the response the moment it arrives.
        """
        with self._cond:
            self._stop.set()
            response = self._response
            early = response is None and self._state == "running" and not self._ending
        if response is not None:
            _shut(response)
        elif early:
            started = self._t0 if self._t0 is not None else self._clock()
            self._end(None, self._clock() - started, 0, None)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the stream has ended (and on_finish has run); False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self._finished, timeout)

    def wait_text(self, timeout: float) -> bool:
        """Wait until the answer's first text has arrived or the stream has ended; False when
        ``timeout`` passed first (the model is still reading the prompt, or thinking)."""
        with self._cond:
            return self._cond.wait_for(lambda: bool(self._pieces) or self._finished, timeout)

    def waiting_notes(self, model: str, tick_s: float = WAIT_TICK_S) -> Iterator[str]:
        """Until the first words arrive (or the stream ends), every ``tick_s`` what to say about
        ``model`` meanwhile (see :func:`waiting_note`); ends at once when text is already there."""
        start = time.monotonic()
        while not self.wait_text(tick_s):
            yield waiting_note(model, time.monotonic() - start, len(self.thinking))

    # -- state ---------------------------------------------------------------------------------
    @property
    def state(self) -> str:
        """pending, running, complete, stopped or failed."""
        return self._state

    @property
    def finished(self) -> bool:
        """True once the stream ended and its final callback ran."""
        return self._finished

    @property
    def stop_requested(self) -> bool:
        """True once stop() was called."""
        return self._stop.is_set()

    @property
    def text(self) -> str:
        """The answer so far."""
        with self._cond:
            return "".join(self._pieces)

    @property
    def thinking(self) -> str:
        """The reasoning text so far, kept apart from the answer."""
        with self._cond:
            return "".join(self._thinking)

    def follow(self, start: int = 0, window_s: float = DEFAULT_WINDOW_S) -> Iterator[str]:
        """Yield the answer as it grows, pieces arriving within ``window_s`` joined into one.

        The first piece is yielded as soon as it arrives; the generator ends with the stream.
        """
        seen = [start]
        last = float("-inf")
        cond = self._cond
        while True:
            with cond:
                cond.wait_for(lambda: seen[0] < len(self._pieces) or self._finished)
                i = seen[0]
                if i >= len(self._pieces):
                    return
                gap = window_s - (self._clock() - last)
                if gap > 0:
                    # Let more pieces gather, but never hold text back once the stream ended.
                    cond.wait_for(lambda: self._finished, gap)
                new = self._pieces[i:]
                seen[0] = len(self._pieces)
            last = self._clock()
            yield "".join(new)

    # -- the worker ----------------------------------------------------------------------------
    def _hand_response(self, response: httpx.Response) -> None:
        with self._cond:
            self._response = response
            stopping = self._stop.is_set()
        if stopping:
            _shut(response)

    def run(self) -> None:
        """Stream to the end in the calling thread (start() runs this in a worker)."""
        clock = self._clock
        t0 = self._t0 = clock()
        self.started_at = time.time()
        ttft: float | None = None
        stats: ServerStats | None = None
        chunks = 0
        with self._cond:
            self._state = "running"
        try:
            if self._stop.is_set():
                return
            stream = self.gateway.chat_stream(
                self.model,
                self.messages,
                self.options,
                think=self.think,
                on_response=self._hand_response,
            )
            try:
                for chunk in stream:
                    if ttft is None and (chunk.content or chunk.thinking):
                        ttft = clock() - t0
                    stats = chunk.stats or stats
                    chunks += self._take(chunk)
                    if self._stop.is_set():
                        break
                    if self._on_progress is not None and (chunk.content or chunk.thinking):
                        self._call(self._on_progress)
            finally:
                stream.close()  # closes the HTTP response: Ollama stops generating
        except LLMError as exc:
            if not self._stop.is_set():
                if isinstance(exc, StreamBroken | LLMTimeout):
                    exc.partial = self.text
                self.error = exc
                log.warning("stream of %s failed: %s", self.model, exc)
        except Exception as exc:  # a worker must always end in a recorded state
            log.exception("stream of %s failed unexpectedly", self.model)
            self.error = LLMError(f"Unexpected error while streaming: {exc}")
        finally:
            self._end(ttft, clock() - t0, chunks, stats)

    def _end(
        self, ttft: float | None, total_s: float, chunks: int, stats: ServerStats | None
    ) -> None:
        """Record the final state and metrics, run on_finish, wake the readers: once, by
        whichever comes first, the worker or an early Stop."""
        with self._cond:
            if self._ending:
                return
            self._ending = True
            self.metrics = metrics_from(ttft, total_s, chunks, stats)
            if self._stop.is_set():
                self._state = "stopped"
            elif self.error is not None or stats is None:
                self._state = "failed"
                if self.error is None:
                    self.error = StreamBroken("the stream ended without its final chunk")
            else:
                self._state = "complete"
            self._response = None
        if self._on_finish is not None:
            self._call(self._on_finish)
        with self._cond:
            self._finished = True
            self._cond.notify_all()

    def _take(self, chunk: Chunk) -> int:
        if not (chunk.content or chunk.thinking):
            return 0
        with self._cond:
            if self._ending:
                return 0  # stopped before this arrived: the job has already ended
            # Model output is untrusted: its control characters are made visible here, once,
            # before any reader, the store, an export or a terminal sees the text.
            if chunk.content:
                self._pieces.append(visible_controls(chunk.content))
            if chunk.thinking:
                self._thinking.append(visible_controls(chunk.thinking))
            self._cond.notify_all()
        return 1

    def _call(self, callback: Callback) -> None:
        try:
            callback(self)
        except Exception:  # a failing save must not kill the stream it is saving
            log.exception("stream callback failed for %s", self.model)
