"""Benchmark: ScanScribe's summary stream on a real model against the raw ``ollama`` client.

The model is Gemma 3 270M in llama.cpp behind an adapter written for the tests that serves
Ollama's HTTP API (tests/real_model_server.py, started with ``scripts/real-model``): a real model
that tokenizes and takes real time, not Ollama. Same run, same adapter, same prompt, options and
seed (so both sides get the same tokens), warmed first, rounds alternating:

- baseline: ``ollama.Client(host).chat(..., stream=True)``, from the call to its first content
  chunk, and its decode rate (tokens after the first / time from the first to the last content
  chunk, ``eval_count`` from the final chunk);
- ScanScribe: the path ``python -m llm summarize`` takes, from the click (``llm.summarize.prepare``
  reads the report and builds the prompt; ``SummaryRun.start`` sends the request from a worker
  thread, checks the model against the installed list and saves the empty summary while the
  request is out) to the first piece of ``StreamJob.follow``, and its decode rate measured the
  same way.

Targets: time to first token at most +5 ms, decode rate at least 0.95x (medians). Evaluating the
prompt takes the model seconds and varies by tens of milliseconds from one run to the next on a
busy machine, so the time to first token is compared net of the model's own prompt-evaluation
time from each answer's final chunk (both raw figures are printed too); ScanScribe's side reads
it through a pass-through of its gateway, which only adds to its time.

Prompt economy: the /24 report of the shared corpus (53 hosts up, 126 open ports) summarized
through the same path; prints the prompt tokens the model counted (``prompt_eval_count``) and the
time to first token. Target: at most 2,000 prompt tokens.

Prints the figures and exits 1 when a target is missed.

    .venv/bin/python bench/bench_real_model.py
"""

from __future__ import annotations

import re
import selectors
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import ollama  # noqa: E402

from llm.client import Chunk, OllamaGateway, ServerStats  # noqa: E402
from llm.summarize import SummaryRun, prepare  # noqa: E402
from scanner.parser import parse_report  # noqa: E402
from store.sqlite import SQLiteStore  # noqa: E402
from tests.fixtures_ollama import sample_report  # noqa: E402

TTFT_TARGET_MS = 5.0
RATE_TARGET = 0.95
PROMPT_TOKENS_TARGET = 2000
ROUNDS = 7
NUM_PREDICT = 32
MODEL = "gemma3:270m"
TIMEOUT_S = 300.0
START_DEADLINE_S = 600.0  # the first start builds llama-cpp-python
CORPUS_24 = (
    ROOT.parent / "shared" / "corpus" / "real-nmap" / "real" / "phage__nmap-2016-04-10-11-36-46.xml"
)


@dataclass(frozen=True)
class Sample:
    """One streamed answer as the caller saw it."""

    ttft_s: float
    decode_s: float  # first content to last content
    tokens: int  # eval_count of the final chunk
    prompt_tokens: int
    prompt_eval_s: float  # the model's own prompt evaluation, from the final chunk
    setup_s: float = 0.0  # from the click to the request: report read, prompt, thread start
    handoff_s: float = 0.0  # from the worker thread's first token to the reader's first piece

    @property
    def wait_s(self) -> float:
        """Time to first token beyond the model's own prompt evaluation: what the path adds."""
        return self.ttft_s - self.prompt_eval_s

    @property
    def rate(self) -> float:
        """Tokens per second after the first token, as the caller received them."""
        return (self.tokens - 1) / self.decode_s if self.decode_s > 0 else 0.0


class TappedGateway(OllamaGateway):
    """The product's gateway, keeping the last stream's final statistics for the benchmark.

    The model's own prompt-evaluation time is in them; the pass-through only adds to
    ScanScribe's side of the comparison.
    """

    last: ServerStats | None = None
    sent_at: float = 0.0  # perf_counter when the last stream's request was made

    def take_stats(self) -> ServerStats | None:
        """The last stream's final statistics (None if it had none); forgets them."""
        stats, self.last = self.last, None
        return stats

    def chat_stream(self, *args: Any, **kw: Any) -> Generator[Chunk, None, None]:
        """Stream as the product does, noting the final chunk's statistics."""
        self.sent_at = time.perf_counter()
        inner = super().chat_stream(*args, **kw)
        try:
            for chunk in inner:
                if chunk.stats is not None:
                    self.last = chunk.stats
                yield chunk
        finally:
            inner.close()


@contextmanager
def real_model(log: Path) -> Iterator[str]:
    """Start ``scripts/real-model`` on a free loopback port; yield its URL; stop it."""
    with (
        log.open("w") as err,
        subprocess.Popen(
            [str(ROOT / "scripts" / "real-model"), "0", "--num-predict", str(NUM_PREDICT)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        ) as proc,
    ):
        assert proc.stdout is not None
        try:
            line = ""
            with selectors.DefaultSelector() as sel:
                sel.register(proc.stdout, selectors.EVENT_READ)
                end = time.monotonic() + START_DEADLINE_S
                while not line and proc.poll() is None and time.monotonic() < end:
                    if sel.select(timeout=0.5):
                        line = proc.stdout.readline()
            found = re.search(r"listening on (http://127\.0\.0\.1:\d+)", line)
            if found is None:
                raise SystemExit(
                    f"scripts/real-model did not start (exit {proc.poll()}); its stderr:\n"
                    f"{log.read_text()[-3000:]}"
                )
            yield found.group(1)
        finally:
            proc.terminate()  # the server exits on SIGTERM; leaving the block waits for it


def app_run(
    store: SQLiteStore, gateway: TappedGateway, report_id: str
) -> tuple[Sample, SummaryRun]:
    """One summary through ScanScribe's own path, timed from the click."""
    first = last = 0.0
    gateway.take_stats()
    t0 = time.perf_counter()
    run = prepare(
        store, gateway, report_id, MODEL, "executive", options={"num_predict": NUM_PREDICT}
    ).start()
    first_wall = 0.0
    for _piece in run.job.follow(window_s=0):
        last = time.perf_counter()
        first_wall = first_wall or time.time()
        first = first or last
    run.wait()
    m = run.job.metrics
    stats = gateway.take_stats()
    if run.job.error is not None or first == 0.0 or stats is None:
        raise SystemExit(f"the summary failed: {run.job.error or 'no text or no final chunk'}")
    sample = Sample(
        ttft_s=first - t0,
        decode_s=last - first,
        tokens=m.output_tokens or 0,
        prompt_tokens=m.prompt_tokens or 0,
        prompt_eval_s=stats.prompt_eval_duration_ns / 1e9,
        setup_s=gateway.sent_at - t0,
        handoff_s=first_wall - (run.job.started_at or 0.0) - (m.ttft_s or 0.0),
    )
    return sample, run


def raw_run(client: ollama.Client, messages: list[Any], options: dict[str, Any]) -> Sample:
    """The same request through the raw ``ollama`` client."""
    first = last = 0.0
    final: ollama.ChatResponse | None = None
    t0 = time.perf_counter()
    for part in client.chat(model=MODEL, messages=messages, options=options, stream=True):
        if part.message.content:
            last = time.perf_counter()
            first = first or last
        if part.done:
            final = part
    if final is None or first == 0.0:
        raise SystemExit("the raw client's stream ended without text or its final chunk")
    return Sample(
        ttft_s=first - t0,
        decode_s=last - first,
        tokens=final.eval_count or 0,
        prompt_tokens=final.prompt_eval_count or 0,
        prompt_eval_s=(final.prompt_eval_duration or 0) / 1e9,
    )


def overhead(url: str, store: SQLiteStore) -> bool:
    """Time to first token and decode rate, ScanScribe against the raw client; True if met."""
    report = sample_report()
    store.save_report(report)
    gateway = TappedGateway(url, 5.0, TIMEOUT_S)
    client = ollama.Client(host=url, timeout=httpx.Timeout(TIMEOUT_S))
    try:
        # Warm the model (load, first allocation) and take the exact request the app sends.
        _, run = app_run(store, gateway, report.id)
        messages = list(run.prompt.messages)
        options = dict(run.prompt.options)
        raw_run(client, messages, options)
        raw: list[Sample] = []
        app: list[Sample] = []
        for i in range(ROUNDS):
            # Alternate which side goes first, so neither always follows the other.
            if i % 2:
                app.append(app_run(store, gateway, report.id)[0])
                raw.append(raw_run(client, messages, options))
            else:
                raw.append(raw_run(client, messages, options))
                app.append(app_run(store, gateway, report.id)[0])
    finally:
        gateway.close()
        client._client.close()

    def med(samples: list[Sample], attr: str) -> float:
        return float(statistics.median(getattr(s, attr) for s in samples))

    if {s.tokens for s in raw + app} != {raw[0].tokens}:
        print(f"note: answers differ in length: {sorted({s.tokens for s in raw + app})} tokens")
    ttft_raw, ttft_app = med(raw, "ttft_s") * 1000, med(app, "ttft_s") * 1000
    wait_raw, wait_app = med(raw, "wait_s") * 1000, med(app, "wait_s") * 1000
    rate_raw, rate_app = med(raw, "rate"), med(app, "rate")
    added = wait_app - wait_raw
    ratio = rate_app / rate_raw
    print(
        f"request: {raw[0].prompt_tokens} prompt tokens, {raw[0].tokens} generated "
        f"(num_predict {NUM_PREDICT}, seed {options.get('seed')}), medians of {ROUNDS} rounds"
    )
    print(
        f"time to first token: raw client {ttft_raw:.1f} ms, ScanScribe {ttft_app:.1f} ms "
        f"(difference {ttft_app - ttft_raw:+.1f} ms, mostly the model's own run-to-run spread)"
    )
    print(
        f"  of which beyond the model's prompt evaluation: raw client {wait_raw:.1f} ms, "
        f"ScanScribe {wait_app:.1f} ms ({med(app, 'setup_s') * 1000:.1f} ms of it before the "
        "request: report read, prompt built, worker started; "
        f"{med(app, 'handoff_s') * 1000:.1f} ms from the worker thread to the reader)"
    )
    print(f"decode rate: raw client {rate_raw:.1f} tok/s, ScanScribe {rate_app:.1f} tok/s")
    ok_ttft = added <= TTFT_TARGET_MS
    ok_rate = ratio >= RATE_TARGET
    print(
        f"TTFT added by ScanScribe (beyond the model's own time): {added:+.1f} ms "
        f"(target <= +{TTFT_TARGET_MS:g} ms) {'OK' if ok_ttft else 'MISSED'}"
    )
    print(
        f"decode rate ScanScribe / raw: {ratio:.3f}x (target >= {RATE_TARGET}x) "
        f"{'OK' if ok_rate else 'MISSED'}"
    )
    return ok_ttft and ok_rate


def prompt_economy(url: str, store: SQLiteStore) -> bool:
    """The /24 corpus report through ScanScribe's path: prompt tokens and time to first token."""
    report = parse_report(CORPUS_24.read_bytes(), report_id="bench-24", source="import")
    store.save_report(report)
    up = sum(1 for h in report.hosts if h.status == "up")
    open_ports = sum(1 for h in report.hosts for p in h.ports if p.state == "open")
    gateway = TappedGateway(url, 5.0, TIMEOUT_S)
    try:
        sample, run = app_run(store, gateway, report.id)
    finally:
        gateway.close()
    omitted = {k: v for k, v in run.prompt.omitted.items() if v}
    print(
        f"/24 report {CORPUS_24.name}: {up} hosts up, {open_ports} open ports; "
        f"prompt {len(run.prompt.facts):,} characters of facts"
        + (f", left out {omitted}" if omitted else "")
    )
    print(
        f"time to first token {sample.ttft_s:.2f} s from the click "
        f"(model's prompt evaluation {sample.prompt_eval_s:.2f} s)"
    )
    ok = sample.prompt_tokens <= PROMPT_TOKENS_TARGET
    print(
        f"prompt tokens (the model's count): {sample.prompt_tokens:,} "
        f"(target <= {PROMPT_TOKENS_TARGET:,}) {'OK' if ok else 'MISSED'}"
    )
    return ok


def main() -> int:
    """Run the benchmark and print the result."""
    with tempfile.TemporaryDirectory() as tmp, real_model(Path(tmp) / "real-model.log") as url:
        store = SQLiteStore(Path(tmp) / "bench.db")
        try:
            ok = overhead(url, store)
            ok = prompt_economy(url, store) and ok
        finally:
            store.close()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
