"""Benchmark: time ScanScribe spends outside the nmap child during a top-1000 loopback scan.

A job of the ``standard`` profile (top 1,000 TCP ports with version detection) scans 127.0.0.1
with a real HTTP server listening on a top-1000 port. The baseline is the nmap child's own wall
time, measured in the same run; the figure is the time from ``submit`` to the job being done,
minus that child time (validation, store writes, threads, XML parsing, saving the report), as a
share of the child's wall time. Median of several rounds. Target <= 1 %. Exits 1 when missed.

    .venv/bin/python bench/bench_scan_overhead.py
"""

from __future__ import annotations

import functools
import http.server
import logging
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import config  # noqa: E402
from scanner.runner import LocalRunner  # noqa: E402
from store.sqlite import SQLiteStore  # noqa: E402

TARGET = 0.01
ROUNDS = 3
TOP_1000_PORTS = (8080, 8000, 8888, 8081, 9000)


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass


def start_http(folder: str) -> _Server | None:
    """An HTTP server on the first free port that nmap's top 1,000 includes."""
    handler = functools.partial(_Quiet, directory=folder)
    for port in TOP_1000_PORTS:
        try:
            server = _Server(("127.0.0.1", port), handler)
        except OSError:
            continue
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server
    return None


def main() -> int:
    """Run the rounds and print the figure against the target."""
    logging.basicConfig(level=logging.ERROR)
    with tempfile.TemporaryDirectory() as tmp:
        server = start_http(tmp)
        cfg = config.load({"SCANSCRIBE_DB": str(Path(tmp) / "bench.db")})
        store = SQLiteStore(cfg.db_path)
        runner = LocalRunner(store, cfg)
        ratios, children, outsides = [], [], []
        try:
            for _ in range(ROUNDS):
                started = time.perf_counter()
                job = runner.submit("127.0.0.1", "standard")
                job = runner.wait(job.id, timeout=600)
                total = time.perf_counter() - started
                child = runner.child_wall_s(job.id)
                if job.status != "done" or child is None:
                    print(f"scan did not finish: {job.status} {job.error}")
                    return 1
                outsides.append(total - child)
                children.append(child)
                ratios.append((total - child) / child)
        finally:
            runner.shutdown()
            store.close()
            if server is not None:
                server.shutdown()
                server.server_close()
    ratio = statistics.median(ratios)
    listener = f"HTTP on {server.server_address[1]}" if server else "no listener"
    print(f"standard profile on 127.0.0.1 ({listener}), {ROUNDS} rounds")
    print(f"nmap child wall time (baseline): median {statistics.median(children) * 1000:.1f} ms")
    print(f"time outside the child:          median {statistics.median(outsides) * 1000:.2f} ms")
    verdict = "PASS" if ratio <= TARGET else "FAIL"
    print(f"ratio outside/child: {ratio * 100:.3f} % (target <= {TARGET * 100:.0f} %) {verdict}")
    return 0 if ratio <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
