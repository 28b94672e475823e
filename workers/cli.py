"""``python -m scanner worker --site NAME [--concurrency N]``: serve one site's scan queue."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from config import ConfigError
from workers.settings import BROKER_ENV, EXAMPLE, check_site, load_broker

EXIT_REFUSED = 2


def cmd_worker(args: argparse.Namespace) -> int:
    """Run a Celery worker for the site until SIGTERM or SIGINT."""
    from workers.worker import run_worker

    try:
        site = check_site(args.site)
        broker = load_broker()
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_REFUSED
    if broker is None:
        print(
            f"{BROKER_ENV} is not set: a worker takes scans from a Redis broker. Set it to "
            f"{EXAMPLE!r} (the same value as the dashboard's).",
            file=sys.stderr,
        )
        return EXIT_REFUSED
    svc = args.services
    return run_worker(svc.config, broker, svc.store, site, args.concurrency)


def register(sub: Any) -> None:
    """Add the ``worker`` subcommand."""
    p = sub.add_parser(
        "worker",
        help="serve one site's scans from the broker (SCANSCRIBE_BROKER)",
        description="Targets are checked against this worker's own SCANSCRIBE_SCOPE.",
    )
    p.add_argument("--site", required=True, help="the site name, for example dc1 or lab")
    p.add_argument(
        "--concurrency", type=int, default=2, choices=range(1, 17), metavar="N",
        help="scans at once (1-16, default 2)",
    )  # fmt: skip
    p.set_defaults(func=cmd_worker)
