"""ScanScribe: the Streamlit entry point. It wires the pages together and nothing else."""

from __future__ import annotations

import logging

import ui

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

ui.run_app()
