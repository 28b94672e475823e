"""Entry point of ``python -m scanner``."""

from __future__ import annotations

import logging
import sys

from scanner.cli import main

if __name__ == "__main__":
    # Log to stderr so that stdout holds only the requested output (one JSON object with json).
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    sys.exit(main())
