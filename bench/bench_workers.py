"""Benchmark: four sites' workers against one worker doing the same four scans.

Four site namespaces, each a worker whose host is 50 ms of round trip away, and one more worker
linked to all four hosts the same way. This kernel has no ``netem``; the latency comes from a
delay line between two TUN devices in a router namespace per site (tests/delayline.py). Redis
and the dashboard live in a hub namespace. The same four scans (quick profile, 1,500 ports, one
open) run once on the single worker (one at a time) and once on the four sites, one each.

Targets: the four sites take at most 0.3x the single worker's time; the median time from submit
to nmap's start is at most 200 ms.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DELAY_MS = 50
PORTS = "1-1500"
OPEN_PORT = 1200
RATIO_TARGET = 0.3
START_TARGET_S = 0.2


def measure(spec: dict[str, object]) -> dict[str, object]:
    """Inside the hub: submit each batch of four scans at once and time them (the dashboard)."""
    import config
    from store.sqlite import SQLiteStore
    from workers.board import SQLiteBoard
    from workers.dispatch import BrokerRunner
    from workers.settings import parse_broker

    db = Path(str(spec["db"]))
    cfg = config.load({"SCANSCRIBE_DB": str(db), "SCANSCRIBE_SCOPE": "10.217.0.0/16",
                       "OLLAMA_HOST": "http://127.0.0.1:9"})  # fmt: skip
    store = SQLiteStore(db)
    runner = BrokerRunner(store, cfg, parse_broker(str(spec["broker"])), SQLiteBoard(db))
    out: dict[str, object] = {}
    solo = [(str(t), "solo") for t in spec["solo_targets"]]  # type: ignore[attr-defined]
    spread = [(str(t), str(s)) for t, s in spec["site_targets"]]  # type: ignore[attr-defined]
    for name, batch in (("one worker", solo), ("four sites", spread)):
        started = time.perf_counter()
        jobs = [runner.submit(target, "quick", PORTS, site=site) for target, site in batch]
        done = [runner.wait(j.id, timeout=600) for j in jobs]
        wall = time.perf_counter() - started
        bad = [(j.id, j.status, j.error) for j in done if j.status != "done"]
        if bad:
            raise SystemExit(f"{name}: scans did not finish: {bad}")
        opened = [
            [p.port for h in store.get_report(j.report_id or "").hosts for p in h.ports
             if p.state == "open"]
            for j in done
        ]  # fmt: skip
        if any(o != [OPEN_PORT] for o in opened):
            raise SystemExit(f"{name}: unexpected open ports {opened}")
        starts = [(j.started_at or 0) - j.created_at for j in done]
        out[name] = {"wall_s": wall, "start_s": starts, "sites": sorted({j.site for j in done})}
    runner.shutdown()
    return out


def main() -> int:
    """Build the lab, start Redis and the workers, measure from the hub, judge."""
    from tests.fixtures_workers import Fleet, RedisServer
    from tests.netlab import NetLab

    tmp = Path(tempfile.mkdtemp(prefix="bench-workers-"))
    lab = NetLab()
    server: RedisServer | None = None
    fleet: Fleet | None = None
    try:
        sites = [lab.add_site(f"site{n}", delay_ms=DELAY_MS) for n in range(1, 5)]
        solo_ns, solo_redis = lab.add_worker("solo", 9)
        for site in sites:
            lab.link_to(solo_ns, site)
            lab.listen(site.host_ns, site.host_addr, OPEN_PORT)
        probe = (
            "import socket, sys, time\n"
            "t = time.perf_counter(); socket.create_connection((sys.argv[1], int(sys.argv[2])))\n"
            "print(time.perf_counter() - t)"
        )
        rtt = float(subprocess.run(
            ["ip", "netns", "exec", sites[0].worker_ns, sys.executable, "-c", probe,
             sites[0].host_addr, str(OPEN_PORT)],
            capture_output=True, text=True, timeout=30, check=True,
        ).stdout)  # fmt: skip
        server = RedisServer(
            tmp / "redis", host=solo_redis, port=6379, netns=lab.hub,
            bind=(solo_redis, *(s.redis_addr for s in sites)),
        ).start()  # fmt: skip
        env = {k: v for k, v in os.environ.items() if not k.startswith("SCANSCRIBE_")}
        env.update(SCANSCRIBE_DB=str(tmp / "db.sqlite"), PYTHONPATH=str(ROOT),
                   OLLAMA_HOST="http://127.0.0.1:9", PYTHONUNBUFFERED="1")  # fmt: skip
        fleet = Fleet(tmp, tmp / "db.sqlite", server.url, env)
        fleet.start("solo", "10.217.0.0/16", concurrency=1, netns=solo_ns,
                    SCANSCRIBE_BROKER=server.url_at(solo_redis))  # fmt: skip
        for site in sites:
            fleet.start(site.name, site.scope, concurrency=1, netns=site.worker_ns,
                        SCANSCRIBE_BROKER=server.url_at(site.redis_addr))  # fmt: skip
        spec = {
            "db": str(tmp / "db.sqlite"),
            "broker": server.url_at(solo_redis),
            "solo_targets": [s.host_addr for s in sites],
            "site_targets": [[s.host_addr, s.name] for s in sites],
        }
        proc = subprocess.run(
            ["ip", "netns", "exec", lab.hub, sys.executable, __file__, "--measure",
             json.dumps(spec)],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200, check=False,
        )  # fmt: skip
        if proc.returncode != 0:
            print(proc.stderr[-3000:], file=sys.stderr)
            return 1
        result = json.loads(proc.stdout.strip().splitlines()[-1])
    finally:
        if fleet is not None:
            fleet.stop_all()
        if server is not None:
            server.stop()
        lab.close()
    one, four = result["one worker"], result["four sites"]
    ratio = four["wall_s"] / one["wall_s"]
    # Each of the four sites' scans finds its worker free; the single worker's wait in line.
    four_starts = statistics.median(four["start_s"])
    print(f"round trip to a site's host: {rtt * 1000:.0f} ms (a TCP handshake)")
    print(f"one worker, four scans one at a time: {one['wall_s']:.2f} s")
    print(f"four sites {four['sites']}, one scan each: {four['wall_s']:.2f} s")
    print(f"ratio {ratio:.2f} (target <= {RATIO_TARGET})")
    print(f"submit to nmap start, four sites: median {four_starts * 1000:.0f} ms "
          f"(target <= {START_TARGET_S * 1000:.0f} ms)")  # fmt: skip
    ok = ratio <= RATIO_TARGET and four_starts <= START_TARGET_S and rtt >= DELAY_MS / 1000
    return 0 if ok else 1


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--measure":
        print(json.dumps(measure(json.loads(sys.argv[2]))))
        sys.exit(0)
    sys.exit(main())
