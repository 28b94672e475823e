"""The Ollama gateway and the stream worker, with the real ollama client against the test double."""

from __future__ import annotations

import time

import httpx
import ollama
import pytest

import config
from llm.client import OllamaGateway, same_model
from llm.errors import LLMTimeout, LLMUnavailable, ModelMissing, StreamBroken
from llm.stream import StreamJob
from tests.ollama_double import ModelScript, OllamaDouble

MESSAGES = [{"role": "user", "content": "summarize"}]


@pytest.fixture
def gateway(llm_config: config.Config) -> OllamaGateway:
    """A gateway to the double with a 2 s read timeout."""
    gw = OllamaGateway.from_config(llm_config)
    yield gw  # type: ignore[misc]
    gw.close()


def _down_gateway() -> OllamaGateway:
    return OllamaGateway.from_config(config.load({"OLLAMA_HOST": "http://127.0.0.1:9"}))


def test_timeouts_are_explicit_not_the_clients_default_of_none(gateway: OllamaGateway) -> None:
    timeout = gateway._client._client.timeout
    assert timeout.read == 2.0 and timeout.connect == 5.0


def test_version_models_show_and_running(
    gateway: OllamaGateway, ollama_double: OllamaDouble
) -> None:
    ollama_double.models["qwen3:8b"] = ModelScript(capabilities=("completion", "thinking"))
    assert gateway.version() == ollama_double.version
    models = gateway.list_models()
    assert [m.name for m in models] == ["llama3.2:latest", "qwen3:8b"]
    assert models[0].size == ModelScript().size and models[0].family == "llama"
    details = gateway.show("qwen3:8b")
    assert details.context_length == 8192 and "thinking" in details.capabilities
    assert [r.name for r in gateway.running()] == ["llama3.2:latest"]
    assert gateway.require_model("llama3.2") == "llama3.2:latest"
    assert same_model("mistral", "mistral:latest") and not same_model("mistral:7b", "mistral")


def test_server_down_says_how_to_start_it() -> None:
    gw = _down_gateway()
    with pytest.raises(LLMUnavailable) as info:
        gw.list_models()
    assert "ollama serve" in str(info.value) and "OLLAMA_HOST" in str(info.value)
    # While streaming, a down server raises httpx.ConnectError, not ConnectionError.
    with pytest.raises(LLMUnavailable) as info:
        list(gw.chat_stream("llama3.2", MESSAGES))
    assert isinstance(info.value.__cause__, httpx.ConnectError | ConnectionError)
    with pytest.raises(LLMUnavailable):
        gw.version()


def test_missing_model_says_which_pull_to_run(gateway: OllamaGateway) -> None:
    with pytest.raises(ModelMissing) as info:
        list(gateway.chat_stream("mistral:7b", MESSAGES))
    assert "`ollama pull mistral:7b`" in str(info.value)
    assert isinstance(info.value.__cause__, ollama.ResponseError)
    with pytest.raises(ModelMissing):
        gateway.require_model("mistral:7b")
    with pytest.raises(ModelMissing):
        gateway.show("mistral:7b")


def test_stream_yields_text_then_the_final_statistics(
    gateway: OllamaGateway, ollama_double: OllamaDouble
) -> None:
    ollama_double.models["m:latest"] = ModelScript(chunks=["One ", "two ", "three."])
    chunks = list(gateway.chat_stream("m", MESSAGES, {"num_ctx": 4096}, think=False))
    assert "".join(c.content for c in chunks) == "One two three."
    assert chunks[-1].stats is not None and chunks[-1].stats.eval_count == 3
    sent = ollama_double.chat_requests()[-1].body
    assert sent["options"] == {"num_ctx": 4096} and sent["think"] is False
    assert "tools" not in sent or not sent["tools"]


def test_mid_stream_error_line_becomes_stream_broken(
    gateway: OllamaGateway, ollama_double: OllamaDouble
) -> None:
    ollama_double.models["m:latest"] = ModelScript(chunks=["a", "b", "c"], error_after=2)
    got: list[str] = []
    with pytest.raises(StreamBroken) as info:
        for c in gateway.chat_stream("m", MESSAGES):
            got.append(c.content)
    assert got == ["a", "b"]
    assert "Ollama reported an error" in str(info.value)


def test_dropped_connection_becomes_stream_broken(
    gateway: OllamaGateway, ollama_double: OllamaDouble
) -> None:
    ollama_double.models["m:latest"] = ModelScript(chunks=["a", "b", "c"], drop_after=1)
    with pytest.raises(StreamBroken) as info:
        list(gateway.chat_stream("m", MESSAGES))
    assert isinstance(info.value.__cause__, httpx.RemoteProtocolError | httpx.ReadError)


def test_stall_becomes_a_timeout_not_a_hang(
    gateway: OllamaGateway, ollama_double: OllamaDouble
) -> None:
    ollama_double.models["m:latest"] = ModelScript(chunks=["a", "b"], stall_after=1)
    t0 = time.monotonic()
    with pytest.raises(LLMTimeout) as info:
        list(gateway.chat_stream("m", MESSAGES))
    assert 1.5 < time.monotonic() - t0 < 6
    assert "SCANSCRIBE_OLLAMA_TIMEOUT" in str(info.value)


def test_job_collects_text_metrics_and_keeps_thinking_apart(
    gateway: OllamaGateway, ollama_double: OllamaDouble
) -> None:
    ollama_double.models["r1:latest"] = ModelScript(
        chunks=["Port ", "22 ", "is open."], thinking="let me think", first_token_delay_s=0.2
    )
    job = StreamJob(gateway, "r1", MESSAGES).start()
    assert job.wait(10)
    assert job.state == "complete" and job.error is None
    assert job.text == "Port 22 is open." and "think" not in job.text
    assert job.thinking == "let me think "
    m = job.metrics
    assert m.ttft_s is not None and 0.2 <= m.ttft_s < 2
    assert m.total_s is not None and m.total_s >= m.ttft_s
    assert m.output_tokens == 3 and m.prompt_tokens == 412 and m.load_s == 0.0015
    assert m.tokens_per_s is not None and m.tokens_per_s > 0


def test_follow_coalesces_pieces_but_shows_the_text_growing(
    gateway: OllamaGateway, ollama_double: OllamaDouble
) -> None:
    pieces = [f"w{i} " for i in range(60)]
    ollama_double.models["m:latest"] = ModelScript(chunks=pieces, chunk_delay_s=0.01)
    job = StreamJob(gateway, "m", MESSAGES).start()
    seen = list(job.follow(window_s=0.1))
    assert "".join(seen) == "".join(pieces)
    assert 3 <= len(seen) < 30  # grows visibly, far fewer updates than pieces
    # A reader that arrives later (a rerun) gets everything from the start at once.
    assert list(job.follow()) == ["".join(pieces)]


def test_stop_keeps_partial_text_and_closes_the_stream(
    gateway: OllamaGateway, ollama_double: OllamaDouble
) -> None:
    ollama_double.models["m:latest"] = ModelScript(chunks=["x"] * 500, chunk_delay_s=0.01)
    job = StreamJob(gateway, "m", MESSAGES).start()
    first = next(job.follow(window_s=0))
    assert first
    job.stop()
    assert job.wait(5)
    assert job.state == "stopped" and job.error is None
    assert 0 < len(job.text) < 500
    assert ollama_double.wait_for(lambda d: bool(d.ends), timeout=5)
    assert ollama_double.ends[0].how == "client_closed"
    assert ollama_double.ends[0].chunks_sent < 500


def test_stop_during_a_stall_returns_at_once(
    gateway: OllamaGateway, ollama_double: OllamaDouble
) -> None:
    ollama_double.models["m:latest"] = ModelScript(chunks=["a", "b"], stall_after=1)
    job = StreamJob(gateway, "m", MESSAGES).start()
    assert next(job.follow(window_s=0)) == "a"
    t0 = time.monotonic()
    job.stop()
    assert job.wait(5)
    assert time.monotonic() - t0 < 1.0  # well under the 2 s read timeout
    assert job.state == "stopped" and job.text == "a"
    assert ollama_double.wait_for(lambda d: bool(d.ends), timeout=5)
    assert ollama_double.ends[0].how == "client_closed"


def test_stop_before_the_server_answers_at_all_ends_at_once(
    gateway: OllamaGateway, ollama_double: OllamaDouble
) -> None:
    """A server that sends nothing, not even headers, while the model reads the prompt: Stop
    ends the job at once, and the answer that comes later is dropped unread."""
    ollama_double.models["m:latest"] = ModelScript(
        chunks=["late "] * 50, first_token_delay_s=1.5, headers_with_first_token=True
    )
    finished: list[str] = []
    job = StreamJob(gateway, "m", MESSAGES, on_finish=lambda j: finished.append(j.state))
    job.start()
    assert ollama_double.wait_for(lambda d: d.active_streams == 1, timeout=5)
    assert not job.wait_text(0.2)  # nothing yet: the model is still reading
    t0 = time.monotonic()
    job.stop()
    assert job.wait(0.5), "Stop waited for the server"
    assert time.monotonic() - t0 < 0.5
    assert (job.state, job.text, finished) == ("stopped", "", ["stopped"])
    # The late answer's connection is closed as soon as it arrives; nothing of it is taken.
    assert ollama_double.wait_for(lambda d: bool(d.ends), timeout=5)
    assert ollama_double.ends[0].how == "client_closed"
    assert job.text == "" and finished == ["stopped"]


def test_failure_keeps_partial_text_on_the_error(
    gateway: OllamaGateway, ollama_double: OllamaDouble
) -> None:
    ollama_double.models["m:latest"] = ModelScript(chunks=["a", "b", "c"], drop_after=2)
    job = StreamJob(gateway, "m", MESSAGES).start()
    assert job.wait(5)
    assert job.state == "failed" and isinstance(job.error, StreamBroken)
    assert job.error.partial == "ab" == job.text


def test_two_jobs_share_a_gateway_and_a_slow_model_does_not_hold_up_a_fast_one(
    gateway: OllamaGateway, ollama_double: OllamaDouble
) -> None:
    ollama_double.models["slow:latest"] = ModelScript(chunks=["s"] * 10, chunk_delay_s=0.1)
    ollama_double.models["fast:latest"] = ModelScript(chunks=["f"] * 10)
    slow = StreamJob(gateway, "slow", MESSAGES).start()
    fast = StreamJob(gateway, "fast", MESSAGES).start()
    assert fast.wait(0.8), "the fast model waited for the slow one"
    assert not slow.finished
    assert slow.wait(5)
    assert (slow.text, fast.text) == ("s" * 10, "f" * 10)
