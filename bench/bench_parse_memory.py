"""Benchmark: peak memory while parsing a 10,000-host nmap XML file (10 ports per host).

The file is grown from a real captured scan (tests/fixtures/netns_after.xml) and held in memory
before measuring. tracemalloc's peak for ScanScribe's parse (the whole typed Report kept) is
compared with the peak of a bare ``xml.etree.ElementTree.iterparse`` pass that keeps one row
tuple per port and clears each host element, over the same bytes, same run. Target <= 1.5x.
Prints the figures and exits 1 when the target is missed.

    .venv/bin/python bench/bench_parse_memory.py
"""

from __future__ import annotations

import gc
import io
import sys
import tracemalloc
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from synth_nmap import big_scan  # noqa: E402

from scanner.parser import parse_report  # noqa: E402

TARGET = 1.5
HOSTS, PORTS = 10_000, 10


def baseline(data: bytes) -> list[tuple[object, ...]]:
    """A bare iterparse pass keeping one row per port."""
    rows: list[tuple[object, ...]] = []
    address = ""
    for _, el in ET.iterparse(io.BytesIO(data), events=("end",)):
        tag = el.tag
        if tag == "address" and el.get("addrtype") != "mac":
            address = el.get("addr", "")
        elif tag == "port":
            st = el.find("state")
            sv = el.find("service")
            sv_get = sv.get if sv is not None else {}.get
            rows.append(
                (
                    address,
                    int(el.get("portid", "0")),
                    el.get("protocol", ""),
                    st.get("state", "") if st is not None else "",
                    st.get("reason", "") if st is not None else "",
                    sv_get("name", ""),
                    sv_get("product", ""),
                    sv_get("version", ""),
                    sv_get("extrainfo", ""),
                    " ".join(c.text or "" for c in el.iter("cpe")),
                    ", ".join(s.get("id", "") for s in el.iter("script")),
                )
            )
        elif tag == "host":
            el.clear()
    return rows


def peak(fn: Callable[[], object]) -> tuple[int, object]:
    """Peak traced bytes while ``fn`` runs (its result kept alive until measured)."""
    gc.collect()
    tracemalloc.start()
    try:
        result = fn()
        _, top = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return top, result


def main() -> int:
    """Run the benchmark and print the ratio."""
    data = big_scan(HOSTS, PORTS)
    base, rows = peak(lambda: baseline(data))
    n_rows = len(rows)  # type: ignore[arg-type]
    del rows
    mine, report = peak(lambda: parse_report(data, report_id="bench"))
    n_ports = sum(len(h.ports) for h in report.hosts)  # type: ignore[attr-defined]
    assert n_rows == n_ports == HOSTS * PORTS
    ratio = mine / base
    print(
        f"peak memory parsing {HOSTS} hosts x {PORTS} ports ({len(data) / 1e6:.0f} MB of XML): "
        f"{mine / 1e6:.1f} MB vs iterparse rows {base / 1e6:.1f} MB = {ratio:.2f}x "
        f"(target <= {TARGET}x) {'OK' if ratio <= TARGET else 'MISSED'}"
    )
    return 0 if ratio <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
