"""Benchmark: comparing N models at once takes about as long as the slowest of them alone.

On the Ollama-protocol test double (which serves requests concurrently), for N = 2 and N = 4:
wall time of a whole comparison (streams, fact checks, coverage, saves) divided by the wall time
of the slowest model streamed alone through the same StreamJob path, same run. Target <= 1.15x.
Prints one line per N and exits 1 when a ratio misses the target.

    .venv/bin/python bench/bench_compare.py
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from llm.client import OllamaGateway  # noqa: E402
from llm.compare import ComparisonRun, Subject  # noqa: E402
from llm.prompt import Prompt  # noqa: E402
from llm.stream import StreamJob  # noqa: E402
from store.sqlite import SQLiteStore  # noqa: E402
from tests.compare_support import report, words  # noqa: E402
from tests.ollama_double import ModelScript, OllamaDouble  # noqa: E402

TARGET = 1.15
REPEATS = 3
CHUNKS = 120
CHUNK_DELAY_S = 0.008


def scripts(n: int) -> dict[str, ModelScript]:
    """N models, each slower than the last (first token later, same number of chunks)."""
    return {
        f"model{i}:latest": ModelScript(
            answer=words(CHUNKS, f"m{i}w"),
            first_token_delay_s=0.1 + 0.15 * i,
            chunk_delay_s=CHUNK_DELAY_S * (1 + 0.25 * i),
        )
        for i in range(n)
    }


def alone(gateway: OllamaGateway, model: str, prompt: Prompt) -> float:
    """Wall time of one model streamed by itself, with the comparison's prompt and options."""
    t0 = time.perf_counter()
    job = StreamJob(gateway, model, prompt.messages, prompt.options).start()
    job.wait()
    assert job.state == "complete", job.error
    return time.perf_counter() - t0


def together(
    gateway: OllamaGateway, store: SQLiteStore, subject: Subject, models: list[str]
) -> float:
    """Wall time of a whole comparison of ``models``, from start to saved."""
    t0 = time.perf_counter()
    run = ComparisonRun(gateway, store, subject, models).start()
    run.wait()
    elapsed = time.perf_counter() - t0
    assert run.comparison is not None
    assert all(r["status"] == "complete" for r in run.comparison.results)
    return elapsed


def bench(n: int, store: SQLiteStore) -> tuple[float, float, float]:
    """Median comparison time, median slowest-alone time, and their ratio."""
    with OllamaDouble(scripts(n)) as double:
        gateway = OllamaGateway(double.url, 5.0, 30.0)
        subject = Subject(report())
        models = list(double.models)
        slowest = models[-1]
        prompt = subject.prompt("executive")
        alone(gateway, slowest, prompt)  # warm the connection pool and the imports
        solo, both = [], []
        for _ in range(REPEATS):
            solo.append(alone(gateway, slowest, prompt))
            both.append(together(gateway, store, subject, models))
        gateway.close()
    s, b = statistics.median(solo), statistics.median(both)
    return b, s, b / s


def main() -> int:
    """Run N = 2 and N = 4 and print the ratios."""
    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        store = SQLiteStore(Path(tmp) / "bench.db")
        store.save_report(report())
        for n in (2, 4):
            cmp_s, solo_s, ratio = bench(n, store)
            ok = ratio <= TARGET
            failed |= not ok
            print(
                f"compare N={n}: {cmp_s:.3f} s vs slowest alone {solo_s:.3f} s "
                f"-> {ratio:.3f}x (target <= {TARGET}x) {'OK' if ok else 'MISSED'}"
            )
        store.close()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
