"""Benchmark: the executive PDF of a 10,000-host report (3 open ports per host).

Times ScanScribe's own PDF path (reporting.pdf.render_pdf), then measures its peak memory with
tracemalloc in a second run (tracing slows Python down several times, so it is not timed),
against the HTML export of the same report (scanner.export.report_html) measured in the same
run as the baseline. Targets: under 60 s, and peak memory at most 4x the HTML export's.
Prints the figures and exits 1 when a target is missed.

    .venv/bin/python bench/bench_pdf.py
"""

from __future__ import annotations

import gc
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from reporting.pdf import render_pdf  # noqa: E402
from scanner.export import report_html  # noqa: E402
from scanner.models import Host, Port, Report  # noqa: E402

HOSTS = 10_000
TIME_LIMIT_S = 60.0
MEMORY_RATIO = 4.0


def big_report() -> Report:
    """10,000 up hosts, each with ssh, http and a critical redis port."""
    hosts = tuple(
        Host(
            address=f"10.{i // 65536}.{i // 256 % 256}.{i % 256}",
            hostnames=(f"host{i}.corp.example",),
            ports=(
                Port(22, "tcp", "open", service="ssh", product="OpenSSH", version="9.2p1"),
                Port(80, "tcp", "open", service="http", product="nginx", version="1.24"),
                Port(6379, "tcp", "open", service="redis", product="Redis", version="7.0"),
            ),
        )
        for i in range(HOSTS)
    )
    return Report(id="rep-bench", hosts=hosts, targets=("10.0.0.0/16",), profile="standard",
                  started_at=1.7e9, finished_at=1.7e9 + 600)  # fmt: skip


def measure(fn: Callable[[], object]) -> tuple[float, int, int]:
    """Seconds (untraced), peak traced bytes (a second, traced run), and the output's size."""
    gc.collect()
    start = time.perf_counter()
    out = fn()
    took = time.perf_counter() - start
    del out
    gc.collect()
    tracemalloc.start()
    out = fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return took, peak, len(out)  # type: ignore[arg-type]


def main() -> int:
    report = big_report()
    html_s, html_peak, html_size = measure(lambda: report_html(report))
    pdf_s, pdf_peak, pdf_size = measure(lambda: render_pdf(report))
    ratio = pdf_peak / html_peak
    print(f"HTML export (baseline): {html_s:6.1f} s, peak {html_peak / 2**20:7.1f} MiB, "
          f"{html_size / 2**20:.1f} MiB")  # fmt: skip
    print(f"PDF report:             {pdf_s:6.1f} s, peak {pdf_peak / 2**20:7.1f} MiB, "
          f"{pdf_size / 2**20:.1f} MiB")  # fmt: skip
    print(f"time {pdf_s:.1f} s (target < {TIME_LIMIT_S:.0f} s); time ratio {pdf_s / html_s:.1f}x; "
          f"memory ratio {ratio:.2f}x (target <= {MEMORY_RATIO}x)")  # fmt: skip
    return 0 if pdf_s < TIME_LIMIT_S and ratio <= MEMORY_RATIO else 1


if __name__ == "__main__":
    raise SystemExit(main())
