"""Benchmark: time to first token added by ScanScribe over the raw ``ollama`` client.

Same run, same Ollama test double, same stream (first token immediately). Baseline: the raw
``ollama.Client.chat(stream=True)`` from the call to its first chunk. ScanScribe: from the click
(``llm.summarize.prepare`` reads the report and builds the prompt; ``SummaryRun.start`` sends
the request from a worker thread and, while it is out, checks the model and saves the empty
summary) to the first escaped piece that ``st.write_stream`` would receive; and the bare
streaming path (StreamJob + follow) alone. Medians over interleaved rounds.
Target: the full path adds <= 5 ms. Prints the figures and exits 1 when the target is missed.

    .venv/bin/python bench/bench_ttft.py
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import ollama  # noqa: E402

from llm.client import OllamaGateway  # noqa: E402
from llm.mdsafe import MarkdownEscaper  # noqa: E402
from llm.prompt import build_prompt  # noqa: E402
from llm.stream import StreamJob  # noqa: E402
from llm.summarize import prepare  # noqa: E402
from store.sqlite import SQLiteStore  # noqa: E402
from tests.fixtures_ollama import sample_report  # noqa: E402
from tests.ollama_double import ModelScript, OllamaDouble  # noqa: E402

TARGET_MS = 5.0
ROUNDS = 60
MODEL = "bench:latest"


def main() -> int:
    """Run the benchmark and print the result."""
    script = ModelScript(chunks=["The", " scan", " found", " one", " host."])
    with OllamaDouble({MODEL: script}) as double, tempfile.TemporaryDirectory() as tmp:
        store = SQLiteStore(Path(tmp) / "bench.db")
        report = sample_report()
        store.save_report(report)
        prompt = build_prompt(report)
        messages = list(prompt.messages)
        raw = ollama.Client(host=double.url, timeout=httpx.Timeout(30.0))
        gateway = OllamaGateway(double.url, 5.0, 30.0)

        def raw_ttft() -> float:
            t0 = time.perf_counter()
            stream = raw.chat(model=MODEL, messages=messages, options=prompt.options, stream=True)
            next(iter(stream))
            t = time.perf_counter() - t0
            for _ in stream:
                pass
            return t

        def job_ttft() -> float:
            t0 = time.perf_counter()
            job = StreamJob(gateway, MODEL, messages, prompt.options).start()
            next(MarkdownEscaper().wrap(job.follow()))
            t = time.perf_counter() - t0
            job.wait()
            return t

        def app_ttft() -> float:
            t0 = time.perf_counter()
            run = prepare(store, gateway, report.id, MODEL, "executive").start()
            next(MarkdownEscaper().wrap(run.job.follow()))
            t = time.perf_counter() - t0
            run.wait()
            return t

        for f in (raw_ttft, job_ttft, app_ttft):  # warm connections and imports
            f()
        samples: dict[str, list[float]] = {"raw": [], "job": [], "app": []}
        for _ in range(ROUNDS):
            samples["raw"].append(raw_ttft())
            samples["job"].append(job_ttft())
            samples["app"].append(app_ttft())
        store.close()
        gateway.close()
    med = {k: statistics.median(v) * 1000 for k, v in samples.items()}
    added_job = med["job"] - med["raw"]
    added_app = med["app"] - med["raw"]
    print(f"raw ollama client, call to first chunk: {med['raw']:.2f} ms (median of {ROUNDS})")
    print(f"StreamJob + follow + escaper:           {med['job']:.2f} ms (+{added_job:.2f} ms)")
    print(f"full Summarize click to first piece:    {med['app']:.2f} ms (+{added_app:.2f} ms)")
    ok = added_app <= TARGET_MS
    print(
        f"TTFT added by ScanScribe: {added_app:.2f} ms (target <= {TARGET_MS:g} ms) "
        f"{'OK' if ok else 'MISSED'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
