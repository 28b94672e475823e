"""Serving the dashboard with `streamlit run` on a free loopback port and opening it in chromium."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import config

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def offline_env(db: Path) -> dict[str, str]:
    """The dashboard on the SQLite file ``db`` with no Ollama (the pages say so and go on)."""
    return {
        "SCANSCRIBE_DB": str(db),
        "SCANSCRIBE_STORE": "sqlite",
        "OLLAMA_HOST": "http://127.0.0.1:9",
    }


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, deadline_s: float = 60.0) -> None:
    """Wait until ``url`` answers 200, or fail after the deadline."""
    end = time.monotonic() + deadline_s
    last: Exception | None = None
    while time.monotonic() < end:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError as exc:
            last = exc
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {deadline_s} s: {last}")


@contextmanager
def streamlit_server(
    env: dict[str, str], log_path: Path, address: str = "127.0.0.1"
) -> Iterator[str]:
    """Run `streamlit run dashboard.py` bound to ``address``; yield its loopback base URL.

    Bound to 0.0.0.0 it is exposed as a team would serve it; the tests still reach it through
    127.0.0.1 only.
    """
    port = free_port()
    full_env = {**os.environ, **env}
    full_env.pop("CI", None)  # the app itself never reads CI; keep its environment ordinary
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streamlit",
                "run",
                "dashboard.py",
                "--server.address",
                address,
                "--server.port",
                str(port),
                "--server.headless",
                "true",
                "--browser.gatherUsageStats",
                "false",
            ],
            cwd=config.PROJECT_ROOT,
            env=full_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(url + "/_stcore/health")
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@contextmanager
def chromium_page(
    viewport: tuple[int, int] = (1400, 1000), extra_args: list[str] | None = None
) -> Iterator[Any]:
    """A Playwright page in Debian's chromium, headless, with no background networking."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS + (extra_args or []), headless=True
        )
        try:
            # A context of its own, so a test can open a second tab that shares its cookies.
            context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
            page = context.new_page()
            yield page
        finally:
            browser.close()


def watch_text(
    page: Any,
    locator: Any,
    until: str,
    deadline_s: float,
    on_sample: Any = None,
) -> list[int]:
    """Read ``locator``'s text every 100 ms until it contains ``until`` (or the deadline passes);
    return the lengths seen before that, so a test can tell text that grew from text that
    arrived at once. ``on_sample(lengths)`` runs after each reading (for a mid-way screenshot)."""
    lengths: list[int] = []
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        text = locator.inner_text()
        if until in text:
            break
        lengths.append(len(text))
        if on_sample is not None:
            on_sample(lengths)
        page.wait_for_timeout(100)
    return lengths
