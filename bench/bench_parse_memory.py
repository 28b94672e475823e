"""Benchmark: peak memory of nmap XML imports.

1. A 10,000-host file (10 ports per host) grown from a real captured scan
   (tests/fixtures/netns_after.xml) and held in memory before measuring: tracemalloc's peak for
   ScanScribe's parse (the whole typed Report kept) is compared with the peak of a bare
   ``xml.etree.ElementTree.iterparse`` pass that keeps one row tuple per port and clears each
   host element, over the same bytes, same run. Target <= 1.5x.
2. A script-heavy file of about 95 MB (a real ``-sV --script`` host, its script results repeated
   as vulners output repeats them), imported the way ``python -m scanner import`` does it
   (read_capped, import_bytes into a SQLite store) in a fresh process: the growth of its peak
   resident memory over the same process's baseline before reading, against the bound
   3 x the file's size + 100 MB. Target <= 1.0x of the bound.
Prints the figures and exits 1 when a target is missed.

    .venv/bin/python bench/bench_parse_memory.py
"""

from __future__ import annotations

import gc
import io
import json
import subprocess
import sys
import tempfile
import tracemalloc
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from synth_nmap import big_scan, script_heavy_scan  # noqa: E402

from scanner.parser import parse_report  # noqa: E402

TARGET = 1.5
HOSTS, PORTS = 10_000, 10
HEAVY_HOSTS = 8_000
BOUND_FACTOR, BOUND_MB = 3, 100

# Run in a fresh interpreter, its resident high-water mark (VmHWM) reset just before the import:
# ru_maxrss would carry over the parent's peak through fork and exec.
_CHILD = """
import json, sys, time
from pathlib import Path
from scanner.importer import import_bytes, read_capped
from store.sqlite import SQLiteStore

def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024

path, db = Path(sys.argv[1]), Path(sys.argv[2])
store = SQLiteStore(db)
with open("/proc/self/clear_refs", "w") as fh:
    fh.write("5")
before = hwm()
t0 = time.perf_counter()
report = import_bytes(store, read_capped(path), filename=path.name)
seconds = time.perf_counter() - t0
peak = hwm()
scripts = sum(len(p.scripts) for h in report.hosts for p in h.ports)
print(json.dumps({"before": before, "peak": peak, "seconds": seconds, "scripts": scripts}))
"""


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


def heavy_import() -> bool:
    """Import a script-heavy file in a fresh process; True when it stays within the bound."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "heavy.xml"
        path.write_bytes(script_heavy_scan(HEAVY_HOSTS))
        size = path.stat().st_size
        out = subprocess.run(
            [sys.executable, "-c", _CHILD, str(path), str(Path(tmp) / "bench.db")],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
    m = json.loads(out.stdout)
    growth = m["peak"] - m["before"]
    bound = BOUND_FACTOR * size + BOUND_MB * 1e6
    ratio = growth / bound
    print(
        f"peak memory importing a script-heavy file ({size / 1e6:.0f} MB, {m['scripts']} script "
        f"results, {m['seconds']:.1f} s): {growth / 1e6:.0f} MB over the process's "
        f"{m['before'] / 1e6:.0f} MB baseline = {growth / size:.2f}x the file; bound "
        f"{BOUND_FACTOR} x size + {BOUND_MB} MB = {bound / 1e6:.0f} MB: {ratio:.2f}x "
        f"(target <= 1.0x) {'OK' if ratio <= 1.0 else 'MISSED'}"
    )
    return ratio <= 1.0


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
    heavy_ok = heavy_import()
    return 0 if ratio <= TARGET and heavy_ok else 1


if __name__ == "__main__":
    sys.exit(main())
