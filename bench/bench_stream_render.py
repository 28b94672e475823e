"""Benchmark: streaming a 2,000-chunk answer into the page vs collecting it, then rendering once.

Each variant is a small Streamlit script run through ``streamlit.testing.v1.AppTest``, so every
markdown delta goes through Streamlit's real delta path (protobuf, forward-message queue), against
the same Ollama test double streaming 2,000 chunks at full speed, same run:

- baseline, collect-then-render: the raw ``ollama`` client, join the chunks, one ``st.markdown``;
- naive: every chunk handed to ``st.write_stream`` (it re-sends the whole text each time);
- ScanScribe: StreamJob in a worker thread, ``follow()`` coalescing what arrives within 20 ms,
  the markdown escaper, ``st.write_stream``; the text must still grow in several steps.

Medians of interleaved rounds. Target: ScanScribe <= 2x the baseline with >= 3 visible updates.
Prints the figures and exits 1 when the target is missed.

    .venv/bin/python bench/bench_stream_render.py
"""

from __future__ import annotations

import logging
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from streamlit.testing.v1 import AppTest  # noqa: E402

from tests.ollama_double import ModelScript, OllamaDouble  # noqa: E402

TARGET = 2.0
MIN_UPDATES = 3
CHUNKS = 2000
ROUNDS = 5
MODEL = "bench:latest"

COMMON = """
import httpx, ollama, streamlit as st
from llm.client import OllamaGateway
from llm.mdsafe import MarkdownEscaper, escape_markdown
from llm.stream import StreamJob

URL = {url!r}
MESSAGES = [{{"role": "user", "content": "summarize"}}]

@st.cache_resource
def raw_client():
    return ollama.Client(host=URL, timeout=httpx.Timeout(30.0))

@st.cache_resource
def gateway():
    return OllamaGateway(URL, 5.0, 30.0)
"""

BASELINE = """
parts = raw_client().chat(model={model!r}, messages=MESSAGES, stream=True)
text = "".join(p.message.content or "" for p in parts)
st.markdown(escape_markdown(text))
st.session_state["updates"] = 1
st.session_state["length"] = len(text)
"""

NAIVE = """
parts = raw_client().chat(model={model!r}, messages=MESSAGES, stream=True)
def pieces():
    for p in parts:
        st.session_state["updates"] = st.session_state.get("updates", 0) + 1
        yield escape_markdown(p.message.content or "")
text = st.write_stream(pieces())
st.session_state["length"] = len(text)
"""

SCANSCRIBE = """
job = StreamJob(gateway(), {model!r}, MESSAGES).start()
def counted(gen):
    n = 0
    for piece in gen:
        n += 1
        yield piece
    st.session_state["updates"] = n
text = st.write_stream(counted(MarkdownEscaper().wrap(job.follow())))
job.wait()
st.session_state["length"] = len(job.text)
"""


def _app(body: str, url: str) -> AppTest:
    source = COMMON.format(url=url) + body.format(model=MODEL)
    return AppTest.from_string(source, default_timeout=120)


def _time(body: str, url: str) -> tuple[float, int, int]:
    at = _app(body, url)
    t0 = time.perf_counter()
    at.run()
    elapsed = time.perf_counter() - t0
    if at.exception:
        raise RuntimeError(str(at.exception))
    return elapsed, int(at.session_state["updates"]), int(at.session_state["length"])


def main() -> int:
    """Run the benchmark and print the result."""
    logging.getLogger("streamlit").setLevel(logging.ERROR)  # AppTest's bare-mode warnings
    pieces = [f"w{i % 10} " for i in range(CHUNKS)]
    with OllamaDouble({MODEL: ModelScript(chunks=pieces)}) as double:
        variants = {"baseline": BASELINE, "naive": NAIVE, "scanscribe": SCANSCRIBE}
        for body in variants.values():  # warm imports, caches and connections
            _time(body, double.url)
        times: dict[str, list[float]] = {k: [] for k in variants}
        updates: dict[str, list[int]] = {k: [] for k in variants}
        for _ in range(ROUNDS):
            for name, body in variants.items():
                elapsed, n, length = _time(body, double.url)
                assert length >= len("".join(pieces)), f"{name} lost text"
                times[name].append(elapsed)
                updates[name].append(n)
    med = {k: statistics.median(v) for k, v in times.items()}
    ratio = med["scanscribe"] / med["baseline"]
    naive = med["naive"] / med["baseline"]
    fewest = min(updates["scanscribe"])
    print(f"{CHUNKS} chunks at full speed, medians of {ROUNDS} AppTest runs:")
    print(f"  collect-then-render (raw ollama client): {med['baseline'] * 1000:8.1f} ms")
    print(
        f"  naive st.write_stream per chunk:         {med['naive'] * 1000:8.1f} ms "
        f"({naive:.1f}x, {statistics.median(updates['naive']):.0f} updates)"
    )
    print(
        f"  ScanScribe (worker + 20 ms coalescing):  {med['scanscribe'] * 1000:8.1f} ms "
        f"({ratio:.2f}x, {fewest}-{max(updates['scanscribe'])} updates)"
    )
    ok = ratio <= TARGET and fewest >= MIN_UPDATES
    print(
        f"ratio {ratio:.2f}x (target <= {TARGET:g}x), text grew in >= {fewest} steps "
        f"(target >= {MIN_UPDATES}) {'OK' if ok else 'MISSED'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
