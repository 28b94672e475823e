"""Errors of the LLM layer, each with a message that says what to do about it.

Exceptions::

    LLMError                base class; pages and commands catch this one
    ├── LLMUnavailable      Ollama does not answer at OLLAMA_HOST (not running, wrong address)
    ├── ModelMissing        the model is not installed in Ollama
    ├── LLMTimeout          Ollama accepted the request but stopped sending within the timeout
    └── StreamBroken        the stream failed part-way; ``partial`` holds the text that arrived

Third-party errors (httpx, ollama) are translated into these at the boundary, in llm.client.
"""

from __future__ import annotations


class LLMError(Exception):
    """Base class of every failure talking to the model server."""


class LLMUnavailable(LLMError):
    """Ollama cannot be reached."""

    def __init__(self, host: str, detail: str = "") -> None:
        self.host = host
        self.detail = detail
        super().__init__(
            f"Ollama is not answering at {host}. Start it with `ollama serve` (or start the "
            "Ollama app), or set OLLAMA_HOST to the address where it runs."
            + (f" ({detail})" if detail else "")
        )


class ModelMissing(LLMError):
    """The requested model is not installed."""

    def __init__(self, model: str) -> None:
        self.model = model
        super().__init__(
            f"The model {model!r} is not installed in Ollama. Install it with "
            f"`ollama pull {model}`, or pick an installed model."
        )


class LLMTimeout(LLMError):
    """Ollama stopped sending for longer than the configured timeout."""

    def __init__(self, seconds: float, partial: str = "") -> None:
        self.seconds = seconds
        self.partial = partial
        super().__init__(
            f"Ollama sent nothing for {seconds:g} s and the request was abandoned. The model may "
            "still be loading or the machine is overloaded: try again, pick a smaller model, or "
            "raise SCANSCRIBE_OLLAMA_TIMEOUT."
        )


class StreamBroken(LLMError):
    """The stream ended with an error or a dropped connection; the partial text is kept."""

    def __init__(self, reason: str, partial: str = "") -> None:
        self.reason = reason
        self.partial = partial
        super().__init__(
            f"The answer stopped part-way: {reason}. The text that arrived is kept and marked "
            "incomplete; retry, and check the Ollama server log if it happens again."
        )
