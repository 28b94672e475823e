"""The real-model adapter speaks Ollama's API as ScanScribe's gateway expects: endpoints, NDJSON
streaming, the final statistics from llama.cpp's counters, the options, and 404 for an unknown
model (tests/real_model_server.py: a real model behind an adapter for the tests, not Ollama).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from llm.client import Chunk, OllamaGateway, ServerStats
from llm.errors import LLMError, ModelMissing
from tests.fixtures_real_model import RealModel

pytestmark = pytest.mark.real_model

ASK = [{"role": "user", "content": "Name three colours."}]


@pytest.fixture
def gateway(real_model: RealModel) -> Iterator[OllamaGateway]:
    """ScanScribe's own Ollama gateway, pointed at the adapter."""
    gw = OllamaGateway(real_model.url, 5, 120)
    yield gw
    gw.close()


def _answer(
    gw: OllamaGateway, model: str, options: dict[str, object], messages: list[dict[str, str]] = ASK
) -> tuple[str, int, ServerStats]:
    chunks: list[Chunk] = list(gw.chat_stream(model, messages, options))
    stats = chunks[-1].stats
    assert stats is not None and all(c.stats is None for c in chunks[:-1])
    pieces = [c.content for c in chunks if c.content]
    return "".join(pieces), len(pieces), stats


def test_the_endpoints_answer_as_ollama_does(real_model: RealModel, gateway: OllamaGateway) -> None:
    with httpx.Client(base_url=real_model.url, timeout=30) as http:
        assert "not Ollama" in http.get("/").text
        missing = http.post("/api/chat", json={"model": "llama3:8b", "messages": ASK})
        assert missing.status_code == 404
        assert missing.json() == {"error": "model 'llama3:8b' not found"}
    assert "test adapter" in gateway.version()
    names = [m.name for m in gateway.list_models()]
    assert names == sorted([real_model.model, real_model.alt, real_model.findings])
    details = gateway.show(real_model.model)
    assert details.family == "gemma3" and details.context_length == 32768
    with pytest.raises(ModelMissing):
        gateway.show("llama3:8b")
    with pytest.raises(ModelMissing):
        list(gateway.chat_stream("llama3:8b", ASK))
    _answer(gateway, real_model.model, {"num_predict": 2, "num_ctx": 512})
    (running,) = [r for r in gateway.running() if r.name == real_model.model]
    assert running.context_length == 512 and running.size > 200_000_000


def test_counts_and_durations_come_from_the_model(
    real_model: RealModel, gateway: OllamaGateway
) -> None:
    opts = {"num_predict": 6, "seed": 3, "temperature": 1.0, "num_ctx": 512}
    _, pieces, stats = _answer(gateway, real_model.model, opts)
    assert stats.done_reason == "length" and stats.eval_count == 6 and 1 <= pieces <= 6
    assert stats.prompt_eval_count > 5 and stats.prompt_eval_duration_ns > 0
    assert stats.eval_duration_ns > 0
    assert stats.total_duration_ns >= stats.prompt_eval_duration_ns + stats.eval_duration_ns
    longer = [{"role": "user", "content": ASK[0]["content"] + " Then name three animals."}]
    _, _, more = _answer(gateway, real_model.model, opts, longer)
    assert more.prompt_eval_count > stats.prompt_eval_count  # counted, not a constant


def test_seed_stop_and_num_ctx_are_honoured(real_model: RealModel, gateway: OllamaGateway) -> None:
    opts: dict[str, object] = {"num_predict": 16, "seed": 11, "temperature": 1.0, "num_ctx": 512}
    first, _, _ = _answer(gateway, real_model.model, opts)
    again, _, _ = _answer(gateway, real_model.model, opts)
    assert first == again and first.strip()
    # The alternative name samples with another seed: another answer to the same request.
    other, _, _ = _answer(gateway, real_model.alt, opts)
    assert other != first
    # A stop string taken from the middle of the answer ends it just before.
    cut = len(first) // 2
    stop = first[cut : cut + 3]
    stopped, _, stats = _answer(gateway, real_model.model, {**opts, "stop": [stop]})
    assert stopped == first[: first.index(stop)] and stats.done_reason == "stop"
    # A prompt longer than num_ctx is refused, never silently cut.
    long = [{"role": "user", "content": "port 22 open. " * 200}]
    with pytest.raises(LLMError, match="context window"):
        _answer(gateway, real_model.model, {"num_ctx": 256}, long)


def test_generate_streams_ndjson_and_an_empty_prompt_loads(real_model: RealModel) -> None:
    body = {
        "model": real_model.alt,
        "prompt": "The sky is",
        "options": {"num_predict": 5, "seed": 1, "num_ctx": 512},
    }
    with (
        httpx.Client(base_url=real_model.url, timeout=60) as http,
        http.stream("POST", "/api/generate", json=body) as response,
    ):
        assert response.headers["content-type"] == "application/x-ndjson"
        lines = [json.loads(line) for line in response.iter_lines() if line]
        loaded = http.post("/api/generate", json={"model": real_model.alt, "prompt": ""}).json()
    assert all(not line["done"] and "response" in line for line in lines[:-1])
    final = lines[-1]
    assert final["done"] and final["done_reason"] == "length" and final["eval_count"] == 5
    assert final["prompt_eval_count"] > 0 and final["eval_duration"] > 0
    assert loaded["done"] and loaded["done_reason"] == "load"
