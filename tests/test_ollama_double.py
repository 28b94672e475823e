"""The Ollama test double follows Ollama's documented wire format (checked with plain httpx)."""

from __future__ import annotations

import json
import threading
import time

import httpx

from tests.ollama_double import ModelScript, OllamaDouble

FINAL_FIELDS = (
    "total_duration",
    "load_duration",
    "prompt_eval_count",
    "prompt_eval_duration",
    "eval_count",
    "eval_duration",
)


def _lines(response: httpx.Response) -> list[dict[str, object]]:
    return [json.loads(line) for line in response.iter_lines() if line]


def test_metadata_endpoints_answer_like_ollama(ollama_double: OllamaDouble) -> None:
    with httpx.Client(base_url=ollama_double.url, timeout=5) as http:
        assert http.get("/api/version").json() == {"version": ollama_double.version}
        tags = http.get("/api/tags").json()["models"]
        assert [m["name"] for m in tags] == ["llama3.2:latest"]
        assert tags[0]["size"] > 0 and tags[0]["details"]["family"] == "llama"
        shown = http.post("/api/show", json={"model": "llama3.2"}).json()
        assert shown["model_info"]["llama.context_length"] == 8192
        ps = http.get("/api/ps").json()["models"]
        assert ps[0]["model"] == "llama3.2:latest" and "size_vram" in ps[0]


def test_missing_model_is_a_404_with_an_error_object(ollama_double: OllamaDouble) -> None:
    with httpx.Client(base_url=ollama_double.url, timeout=5) as http:
        r = http.post("/api/chat", json={"model": "nope:1b", "messages": []})
    assert r.status_code == 404
    assert r.json() == {"error": "model 'nope:1b' not found"}


def test_chat_streams_ndjson_and_ends_with_the_metrics_chunk(ollama_double: OllamaDouble) -> None:
    ollama_double.models["m:latest"] = ModelScript(chunks=["Hel", "lo", "!"])
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    with (
        httpx.Client(base_url=ollama_double.url, timeout=5) as http,
        http.stream("POST", "/api/chat", json=body) as r,
    ):
        assert r.headers["content-type"] == "application/x-ndjson"
        lines = _lines(r)
    assert [ln["message"]["content"] for ln in lines[:-1]] == ["Hel", "lo", "!"]  # type: ignore[index]
    assert all(ln["done"] is False for ln in lines[:-1])
    final = lines[-1]
    assert final["done"] is True and final["done_reason"] == "stop"
    assert all(isinstance(final[f], int) and final[f] > 0 for f in FINAL_FIELDS)
    assert final["eval_count"] == 3


def test_generate_streams_response_fields(ollama_double: OllamaDouble) -> None:
    ollama_double.models["m:latest"] = ModelScript(chunks=["a", "b"], thinking="hmm")
    with (
        httpx.Client(base_url=ollama_double.url, timeout=5) as http,
        http.stream("POST", "/api/generate", json={"model": "m", "prompt": "x"}) as r,
    ):
        lines = _lines(r)
    assert [ln.get("thinking") for ln in lines[:1]] == ["hmm "]
    assert [ln["response"] for ln in lines[1:-1]] == ["a", "b"]
    assert lines[-1]["done"] is True


def test_mid_stream_error_is_a_line_inside_a_200_response(ollama_double: OllamaDouble) -> None:
    ollama_double.models["m:latest"] = ModelScript(chunks=["a", "b", "c"], error_after=2)
    with (
        httpx.Client(base_url=ollama_double.url, timeout=5) as http,
        http.stream("POST", "/api/chat", json={"model": "m", "messages": []}) as r,
    ):
        assert r.status_code == 200
        lines = _lines(r)
    assert lines[-1] == {"error": ModelScript().error_message}
    assert len(lines) == 3


def test_requests_are_served_concurrently(ollama_double: OllamaDouble) -> None:
    ollama_double.models["slow:latest"] = ModelScript(chunks=["x"] * 4, chunk_delay_s=0.3)
    ollama_double.models["fast:latest"] = ModelScript(chunks=["y"] * 4)
    done: dict[str, float] = {}

    def run(model: str) -> None:
        with (
            httpx.Client(base_url=ollama_double.url, timeout=10) as http,
            http.stream("POST", "/api/chat", json={"model": model, "messages": []}) as r,
        ):
            _lines(r)
        done[model] = time.monotonic()

    t0 = time.monotonic()
    threads = [threading.Thread(target=run, args=(m,)) for m in ("slow", "fast")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert done["fast"] - t0 < 0.6 < done["slow"] - t0
    assert {r.body["model"] for r in ollama_double.chat_requests()} == {"slow", "fast"}


def test_client_closing_the_stream_is_noticed(ollama_double: OllamaDouble) -> None:
    ollama_double.models["m:latest"] = ModelScript(chunks=["x"] * 100, chunk_delay_s=0.05)
    with (
        httpx.Client(base_url=ollama_double.url, timeout=5) as http,
        http.stream("POST", "/api/chat", json={"model": "m", "messages": []}) as r,
    ):
        next(r.iter_lines())
    assert ollama_double.wait_for(lambda d: bool(d.ends), timeout=5)
    end = ollama_double.ends[0]
    assert end.how == "client_closed" and end.chunks_sent < 100
