"""Benchmark: a rerun of the Reports page showing a 10,000-host / 100,000-port report.

The report is grown from a real captured scan (tests/fixtures/netns_after.xml) and imported into
a fresh SQLite file. With streamlit's AppTest, the page is run once (that builds and caches the
report's tables), then reruns are timed with the ports table shown and with it switched off
(the ``show_ports`` toggle), interleaved, best of several. Target: the page with the table
<= 1.3x the page without it. Prints the figures and exits 1 when the target is missed.

    .venv/bin/python bench/bench_report_page.py
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from synth_nmap import big_scan  # noqa: E402

TARGET = 1.3
HOSTS, PORTS = 10_000, 10
ROUNDS = 7


def main() -> int:
    """Run the benchmark and print the ratio."""
    logging.getLogger("streamlit").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["SCANSCRIBE_DB"] = str(Path(tmp) / "bench.db")
        os.environ["OLLAMA_HOST"] = "http://127.0.0.1:9"
        os.environ.pop("SCANSCRIBE_STORE", None)

        from streamlit.testing.v1 import AppTest

        import config
        import services
        from scanner.importer import import_bytes

        svc = services.build(config.load())
        t0 = time.perf_counter()
        report = import_bytes(svc.store, big_scan(HOSTS, PORTS), filename="big.xml")
        imported = time.perf_counter() - t0
        svc.close()
        assert report.open_port_count > 0

        at = AppTest.from_file(str(ROOT / "pages" / "reports.py"), default_timeout=300)
        t0 = time.perf_counter()
        at.run()
        first = time.perf_counter() - t0
        assert not at.exception, at.exception
        rows = sum(len(d.value) for d in at.dataframe)

        def rerun(show: bool) -> float:
            at.toggle(key="show_ports").set_value(show)
            t = time.perf_counter()
            at.run()
            elapsed = time.perf_counter() - t
            assert not at.exception, at.exception
            return elapsed

        rerun(True)
        rerun(False)
        with_table, without = [], []
        for _ in range(ROUNDS):
            with_table.append(rerun(True))
            without.append(rerun(False))
    ratio = min(with_table) / min(without)
    print(
        f"Reports page rerun, {HOSTS} hosts / {HOSTS * PORTS} ports: with the ports table "
        f"{min(with_table) * 1000:.0f} ms vs without {min(without) * 1000:.0f} ms = {ratio:.2f}x "
        f"(target <= {TARGET}x) {'OK' if ratio <= TARGET else 'MISSED'}"
    )
    print(
        f"  import {imported:.1f} s, first open (tables built and cached) {first:.1f} s, "
        f"{rows} table rows sent per run"
    )
    return 0 if ratio <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
