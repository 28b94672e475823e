"""The one seam between ScanScribe and Ollama: the official ``ollama`` client, with explicit
timeouts, typed results and errors translated at the boundary (see llm.errors).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import ollama

from config import Config
from llm.errors import LLMError, LLMTimeout, LLMUnavailable, ModelMissing, StreamBroken

log = logging.getLogger(__name__)

ResponseHook = Callable[[httpx.Response], None]

# The response of a stream is handed to whoever started it (so that Stop can close its socket
# from another thread). httpx calls response hooks in the thread that sent the request, which is
# the thread iterating the stream, so a thread-local routes it to the right caller even when
# several streams share one client.
_local = threading.local()


def _announce_response(response: httpx.Response) -> None:
    hook: ResponseHook | None = getattr(_local, "on_response", None)
    if hook is not None:
        hook(response)


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """One model installed in Ollama (from /api/tags)."""

    name: str
    size: int
    family: str = ""
    parameter_size: str = ""
    quantization: str = ""


@dataclass(frozen=True, slots=True)
class RunningModel:
    """One model loaded in memory (from /api/ps)."""

    name: str
    size: int
    size_vram: int
    context_length: int | None = None
    expires_at: str = ""


@dataclass(frozen=True, slots=True)
class ModelDetails:
    """What /api/show says about a model."""

    name: str
    family: str = ""
    parameter_size: str = ""
    quantization: str = ""
    context_length: int | None = None
    capabilities: tuple[str, ...] = ()
    parameters: str = ""


@dataclass(frozen=True, slots=True)
class ServerStats:
    """The statistics of the final ``done`` chunk; Ollama reports durations in nanoseconds."""

    done_reason: str = ""
    total_duration_ns: int = 0
    load_duration_ns: int = 0
    prompt_eval_count: int = 0
    prompt_eval_duration_ns: int = 0
    eval_count: int = 0
    eval_duration_ns: int = 0


@dataclass(frozen=True, slots=True)
class Chunk:
    """One piece of a streamed answer: text, reasoning text, or the final statistics."""

    content: str = ""
    thinking: str = ""
    stats: ServerStats | None = None


def same_model(a: str, b: str) -> bool:
    """True when two model names denote the same model (Ollama adds ``:latest`` to bare names)."""

    def norm(name: str) -> str:
        name = name.strip()
        return name if ":" in name else name + ":latest"

    return norm(a) == norm(b)


def _stats(part: ollama.ChatResponse) -> ServerStats:
    return ServerStats(
        done_reason=part.done_reason or "",
        total_duration_ns=part.total_duration or 0,
        load_duration_ns=part.load_duration or 0,
        prompt_eval_count=part.prompt_eval_count or 0,
        prompt_eval_duration_ns=part.prompt_eval_duration or 0,
        eval_count=part.eval_count or 0,
        eval_duration_ns=part.eval_duration or 0,
    )


class OllamaGateway:
    """Typed access to one Ollama server; safe to share between threads."""

    def __init__(self, host: str, connect_timeout_s: float, read_timeout_s: float) -> None:
        self.host = host
        self.read_timeout_s = read_timeout_s
        # The ollama client's default timeout is none: a stalled server would hang for ever.
        timeout = httpx.Timeout(read_timeout_s, connect=connect_timeout_s)
        self._client = ollama.Client(
            host=host, timeout=timeout, event_hooks={"response": [_announce_response]}
        )
        # /api/version is the one endpoint the ollama package does not wrap.
        self._http = httpx.Client(base_url=host, timeout=timeout)
        self._details: dict[str, ModelDetails] = {}

    @classmethod
    def from_config(cls, cfg: Config) -> OllamaGateway:
        """A gateway to ``cfg.ollama_host`` with the configured timeouts."""
        return cls(cfg.ollama_host, cfg.ollama_connect_timeout_s, cfg.ollama_timeout_s)

    def close(self) -> None:
        """Close the HTTP connections."""
        self._client._client.close()
        self._http.close()

    @contextmanager
    def _translate(self, model: str | None = None) -> Iterator[None]:
        try:
            yield
        except ollama.ResponseError as exc:
            if exc.status_code == 404 and model is not None:
                raise ModelMissing(model) from exc
            if exc.status_code == -1:
                # An {"error": ...} line inside a 200 stream: the model failed part-way.
                raise StreamBroken(f"Ollama reported an error: {exc.error}") from exc
            raise LLMError(f"Ollama refused the request: {exc.error}") from exc
        except httpx.ConnectTimeout as exc:
            raise LLMUnavailable(self.host, "connection timed out") from exc
        except (httpx.ConnectError, ConnectionError) as exc:
            raise LLMUnavailable(self.host, "connection refused") from exc
        except httpx.TimeoutException as exc:
            raise LLMTimeout(self.read_timeout_s) from exc
        except (httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError) as exc:
            raise StreamBroken("the connection to Ollama was lost") from exc
        except (json.JSONDecodeError, ValueError) as exc:
            raise StreamBroken("Ollama sent a line that is not valid JSON") from exc

    def version(self) -> str:
        """The server's version string; raises LLMUnavailable when it does not answer."""
        with self._translate():
            response = self._http.get("/api/version")
            response.raise_for_status()
            return str(response.json().get("version", "unknown"))

    def list_models(self) -> list[ModelInfo]:
        """The installed models, sorted by name."""
        with self._translate():
            listed = self._client.list()
        models = [
            ModelInfo(
                name=m.model or "",
                size=int(m.size or 0),
                family=(m.details.family or "") if m.details else "",
                parameter_size=(m.details.parameter_size or "") if m.details else "",
                quantization=(m.details.quantization_level or "") if m.details else "",
            )
            for m in listed.models
        ]
        return sorted((m for m in models if m.name), key=lambda m: m.name)

    def require_model(self, model: str) -> str:
        """The installed name of ``model``, or ModelMissing (before any prompt is sent)."""
        for m in self.list_models():
            if same_model(m.name, model):
                return m.name
        raise ModelMissing(model)

    def show(self, model: str, *, cached: bool = False) -> ModelDetails:
        """Details of one model: family, size, context length, capabilities.

        With ``cached``, a model already shown is not asked again (saves a request before a
        summary starts; details change only when the model is pulled again).
        """
        if cached and model in self._details:
            return self._details[model]
        with self._translate(model):
            shown = self._client.show(model)
        context = None
        for key, value in (shown.modelinfo or {}).items():
            if key.endswith(".context_length") and isinstance(value, int):
                context = value
        d = shown.details
        details = ModelDetails(
            name=model,
            family=(d.family or "") if d else "",
            parameter_size=(d.parameter_size or "") if d else "",
            quantization=(d.quantization_level or "") if d else "",
            context_length=context,
            capabilities=tuple(shown.capabilities or ()),
            parameters=shown.parameters or "",
        )
        self._details[model] = details
        return details

    def running(self) -> list[RunningModel]:
        """The models loaded in memory now (/api/ps)."""
        with self._translate():
            ps = self._client.ps()
        return [
            RunningModel(
                name=m.model or m.name or "",
                size=int(m.size or 0),
                size_vram=int(m.size_vram or 0),
                context_length=m.context_length,
                expires_at=m.expires_at.isoformat() if m.expires_at else "",
            )
            for m in ps.models
        ]

    def chat_stream(
        self,
        model: str,
        messages: Sequence[Mapping[str, Any]],
        options: Mapping[str, Any] | None = None,
        *,
        think: bool | None = None,
        on_response: ResponseHook | None = None,
    ) -> Generator[Chunk, None, None]:
        """Stream a chat answer: content and thinking pieces, then one chunk with the stats.

        ``on_response`` receives the HTTP response as soon as its headers arrive, so another
        thread can close it; closing it is how Ollama is told to stop generating.
        """
        _local.on_response = on_response
        try:
            with self._translate(model):
                parts = self._client.chat(
                    model=model,
                    messages=list(messages),
                    options=dict(options) if options else None,
                    think=think,
                    stream=True,
                )
                try:
                    for part in parts:
                        _local.on_response = None
                        msg = part.message
                        yield Chunk(
                            content=msg.content or "",
                            thinking=msg.thinking or "",
                            stats=_stats(part) if part.done else None,
                        )
                finally:
                    closer = getattr(parts, "close", None)
                    if closer is not None:
                        closer()
        finally:
            _local.on_response = None
