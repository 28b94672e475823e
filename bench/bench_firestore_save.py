"""Benchmark: saving a summary to Firestore (the emulator) while a 4-second summary streams.

The Summarize page saves the summary about once a second while it streams, then once more when
it ends. This measures the time those saves take against the time of the stream itself, same run:

- baseline: a 4-second answer streamed by the Ollama test double (in a process of its own, as
  Ollama is) through the real ``ollama`` client, nothing saved;
- ScanScribe: the same stream, saving the growing summary to the Firestore emulator through
  FirestoreStore at most once a second and at the end; the time spent inside the saves is summed.

Medians of a few rounds. Target: save time <= 1 % of the baseline stream's time. The emulator is
started here (node, npm @firestore-emulator/server) on a free loopback port and stopped at the
end. Prints the figures and exits 1 when the target is missed.

    .venv/bin/python bench/bench_firestore_save.py
"""

from __future__ import annotations

import logging
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import ollama  # noqa: E402

import config  # noqa: E402
from store.firestore import FirestoreStore  # noqa: E402
from store.records import Summary  # noqa: E402
from tests.fixtures_firestore import (  # noqa: E402
    Emulator,
    emulator_missing,
    firestore_env,
    open_firestore,
)

DOUBLE = """
import sys
from tests.ollama_double import ModelScript, OllamaDouble
model, chunks, delay = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
words = [f" word{i}" for i in range(chunks)]
double = OllamaDouble({model: ModelScript(chunks=words, chunk_delay_s=delay)}).start()
print(double.url, flush=True)
sys.stdin.read()
double.stop()
"""

TARGET = 0.01
ROUNDS = 5
CHUNKS = 200
CHUNK_DELAY_S = 0.02  # 200 chunks x 20 ms: a 4-second answer
SAVE_EVERY_S = 1.0
MODEL = "bench:latest"


class Saver:
    """Saves the growing summary the way the Summarize page does, timing every save."""

    def __init__(self, store: FirestoreStore, summary_id: str) -> None:
        self.store = store
        self.summary_id = summary_id
        self.created = time.time()
        self.last = 0.0
        self.spent: list[float] = []

    def __call__(self, text: str, done: bool) -> None:
        now = time.perf_counter()
        if not done and now - self.last < SAVE_EVERY_S:
            return
        self.last = now
        summary = Summary(
            id=self.summary_id,
            report_id="rep-bench",
            model=MODEL,
            audience="executive",
            text=text,
            status="complete" if done else "streaming",
            created_at=self.created,
            updated_at=time.time(),
            metrics={"eval_count": CHUNKS},
        )
        started = time.perf_counter()
        self.store.save_summary(summary)
        self.spent.append(time.perf_counter() - started)


def stream(client: ollama.Client, on_text: Saver | None = None) -> tuple[float, str]:
    """Stream the answer; call ``on_text(text, done)`` as it grows. Returns (seconds, text)."""
    started = time.perf_counter()
    text = ""
    parts = client.chat(
        model=MODEL, messages=[{"role": "user", "content": "summarize"}], stream=True
    )
    for part in parts:
        text += part.message.content or ""
        if on_text is not None:
            on_text(text, False)
    if on_text is not None:
        on_text(text, True)
    return time.perf_counter() - started, text


def main() -> int:
    """Run the rounds and print the ratio."""
    logging.basicConfig(level=logging.WARNING)
    missing = emulator_missing()
    if missing:
        print(f"cannot run: {missing}")
        return 1
    # Ollama is a server of its own in real use, so the stand-in runs in a process of its own:
    # in this one its threads would compete with the saves for the interpreter lock.
    double = subprocess.Popen(
        [sys.executable, "-c", DOUBLE, MODEL, str(CHUNKS), str(CHUNK_DELAY_S)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert double.stdout is not None
    url = double.stdout.readline().strip()
    emulator = Emulator().start()
    try:
        client = ollama.Client(host=url, timeout=httpx.Timeout(30.0))
        with tempfile.TemporaryDirectory() as tmp:
            env = firestore_env(emulator.host, Path(tmp) / "outbox.db", "demo-bench")
            store = open_firestore(config.load(env))
            assert store.health()["ok"], "the emulator did not answer"
            baselines: list[float] = []
            save_totals: list[float] = []
            save_counts: list[int] = []
            for rnd in range(ROUNDS):
                baseline_s, _ = stream(client)
                baselines.append(baseline_s)

                saver = Saver(store, f"sum-bench-{rnd}")
                stream(client, saver)
                save_totals.append(sum(saver.spent))
                save_counts.append(len(saver.spent))
                print("  saves (ms):", [round(x * 1000, 1) for x in saver.spent])
            pending = len(store.pending())
            store.close()
    finally:
        emulator.stop()
        double.communicate("", timeout=10)

    baseline = statistics.median(baselines)
    saves = statistics.median(save_totals)
    ratio = saves / baseline
    print(f"stream alone (baseline): {baseline:.3f} s (median of {ROUNDS})")
    print(
        f"saves during the stream: {saves * 1000:.1f} ms over {statistics.median(save_counts):.0f}"
        f" saves ({saves / statistics.median(save_counts) * 1000:.1f} ms each)"
    )
    print(f"ratio: {ratio:.2%} of the stream (target <= {TARGET:.0%}); pending after: {pending}")
    return 0 if ratio <= TARGET and pending == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
