"""``python -m scanner feeds import FILE…`` and ``feeds status``.

Handlers take the parsed arguments (``args.services`` is set by scanner.cli) and return the exit
code: 0 success, 2 a refused file (nothing of it stored), 1 a runtime failure.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

from feeds import import_file, open_feed_store
from feeds.models import FeedRefused

EXIT_OK, EXIT_FAILED, EXIT_REFUSED = 0, 1, 2
KINDS = {"nvd": "NVD CVE JSON 2.0", "kev": "CISA Known Exploited Vulnerabilities"}


def _iso(ts: float) -> str:
    return (
        dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    )


def cmd_import(args: argparse.Namespace) -> int:
    """Import each file; a refused file is named with the reason and stores nothing."""
    store = open_feed_store(args.services.config)
    refused = 0
    try:
        for name in args.files:
            path = Path(name)
            try:
                done = import_file(store, path)
            except FeedRefused as exc:
                refused += 1
                print(f"{path.name}: refused. {exc}", file=sys.stderr)
                continue
            print(f"{path.name}: {done.count} entries of {KINDS[done.kind]} imported")
    finally:
        store.close()
    return EXIT_REFUSED if refused else EXIT_OK


def status_json(imports: list[Any], counts: dict[str, int]) -> dict[str, Any]:
    """What ``feeds status --format json`` prints."""
    return {
        "cves": counts["cves"],
        "ranges": counts["ranges"],
        "known_exploited": counts["kev"],
        "imports": [
            {
                "kind": i.kind,
                "file": i.name,
                "version": i.version,
                "count": i.count,
                "imported_at": _iso(i.imported_at),
            }
            for i in imports
        ],
    }


def cmd_status(args: argparse.Namespace) -> int:
    """What the feeds hold and which files were imported, newest first."""
    store = open_feed_store(args.services.config)
    try:
        data = status_json(store.imports(), store.counts())
    finally:
        store.close()
    if args.format == "json":
        print(json.dumps(data, indent=2))
        return EXIT_OK
    print(
        f"{data['cves']} CVEs with {data['ranges']} affected CPE ranges; "
        f"{data['known_exploited']} known-exploited entries"
    )
    if not data["imports"]:
        print("No feed imported yet: python -m scanner feeds import FILE (NVD 2.0 or KEV JSON)")
    for i in data["imports"]:
        print(f"  {i['imported_at']}  {i['kind']}  {i['count']:>7}  {i['file']}  {i['version']}")
    return EXIT_OK


def register(sub: Any) -> None:
    """Add ``feeds import`` and ``feeds status`` to the ``python -m scanner`` subcommands."""
    p = sub.add_parser("feeds", help="import offline CVE feeds (NVD 2.0, CISA KEV) and list them")
    fsub = p.add_subparsers(dest="feeds_command", required=True, metavar="ACTION")
    i = fsub.add_parser(
        "import",
        help="import NVD CVE JSON 2.0 files or the CISA KEV catalog (nothing is downloaded)",
    )
    i.add_argument("files", nargs="+", metavar="FILE")
    i.set_defaults(func=cmd_import)
    s = fsub.add_parser("status", help="what the feeds hold and which files were imported")
    s.add_argument("--format", choices=("table", "json"), default="table")
    s.set_defaults(func=cmd_status)
