"""Report subcommands of ``python -m scanner``: list, show, diff, import."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the report subcommands to the scanner command line."""
