"""Drills on the running dashboard: kill it with -9 mid-scan and mid-summary, then restart it;
two sessions scanning and summarizing at once. Nothing may be lost, mixed or left running.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from auth.users import add_user, edit_users
from store.sqlite import SQLiteStore
from tests.browser import chromium_page, streamlit_server
from tests.fixtures_ollama import sample_report
from tests.fixtures_scanner import group_alive
from tests.ollama_double import ModelScript, OllamaDouble

pytestmark = pytest.mark.browser


class _Slow(BaseHTTPRequestHandler):
    """An HTTP listener; with NSE scripts and version probes a scan of it takes a while."""

    def do_GET(self) -> None:
        body = b"<html><head><title>drill</title></head></html>"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


@pytest.fixture
def http_listener() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Slow)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()


def _until(check: Callable[[], object], what: str, deadline_s: float = 60.0) -> Any:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _settle(page: Any) -> None:
    page.wait_for_timeout(300)
    page.locator("[data-testid='stStatusWidget']").wait_for(state="hidden", timeout=30_000)


def _kill_app(url: str) -> None:
    """Kill -9 the streamlit process serving ``url`` (found by its port), as a crash would."""
    port = url.rsplit(":", 1)[1]
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"streamlit" in b" ".join(cmd) and port.encode() in cmd:
            os.kill(int(pid), signal.SIGKILL)
            return
    raise AssertionError("the streamlit process was not found")


def test_kill_9_mid_scan_and_mid_summary_then_restart(
    tmp_path: Path, artifacts: Path, ollama_double: OllamaDouble, http_listener: int
) -> None:
    db = tmp_path / "drill.db"
    store = SQLiteStore(db)
    store.save_report(sample_report())
    ollama_double.models.clear()
    ollama_double.models["slow:latest"] = ModelScript(
        answer=" ".join(f"w{i}" for i in range(400)), chunk_delay_s=0.05
    )
    env = {"SCANSCRIBE_DB": str(db), "OLLAMA_HOST": ollama_double.url}

    with streamlit_server(env, artifacts / "drill-first-streamlit.log") as url:
        with chromium_page() as page:
            page.goto(url + "/scan", wait_until="domcontentloaded")
            page.get_by_role("heading", name="Recent jobs").wait_for(timeout=30_000)
            _settle(page)
            page.locator(".st-key-scan_targets input").fill("127.0.0.1")
            page.locator(".st-key-scan_ports input").fill(str(http_listener))
            page.locator(".st-key-scan_profile").click()
            page.get_by_role("option", name="Safe scripts").first.click()
            page.locator(".st-key-scan_authorized label").click()
            page.locator(".st-key-scan_submit button").click()
            job = _until(
                lambda: next(
                    (j for j in store.list_jobs() if j.status == "running" and j.pgid), None
                ),
                "the scan to be running",
            )
            assert group_alive(job.pgid)

            page.goto(url + "/summarize", wait_until="domcontentloaded")
            page.locator(".st-key-sum_go button").wait_for(timeout=30_000)
            _settle(page)
            page.locator(".st-key-sum_go button").click()
            summary = _until(
                lambda: next((s for s in store.list_summaries() if "w20" in s.text), None),
                "part of the summary to be saved",
            )
            assert summary.status == "streaming"
            _kill_app(url)
        # The crash leaves nmap running in its own process group: exactly the orphan to clean.
        assert group_alive(job.pgid)

    with (
        streamlit_server(env, artifacts / "drill-restart-streamlit.log") as url,
        chromium_page() as page,
    ):
        page.goto(url + "/scan", wait_until="domcontentloaded")
        page.get_by_role("heading", name="Recent jobs").wait_for(timeout=30_000)
        _until(lambda: store.get_job(job.id).status == "interrupted", "the job interrupted")
        _until(lambda: not group_alive(job.pgid), "the orphaned nmap to be killed", 15)
        page.get_by_text("interrupted").first.wait_for(state="attached", timeout=30_000)
        page.screenshot(path=str(artifacts / "drill-restarted-scan.png"), full_page=True)
        kept = _until(
            lambda: (s := store.get_summary(summary.id)).status == "interrupted" and s,
            "the summary marked interrupted",
        )
        assert kept.text.startswith("w0 w1") and "w20" in kept.text
    store.close()


def test_two_sessions_scan_and_summarize_at_once(
    tmp_path: Path, ollama_double: OllamaDouble, http_listener: int, artifacts: Path
) -> None:
    """Two analysts logged in at once: each sees their own scan and summary, both saved."""
    db = tmp_path / "two.db"
    users = tmp_path / "users.toml"
    for name in ("one", "two"):
        edit_users(users, lambda u, n=name: add_user(u, n, "analyst", f"analyst {n} password"))
    store = SQLiteStore(db)
    first, second = sample_report("r-one"), sample_report("r-two", created_at=1_700_000_100.0)
    store.save_report(first)
    store.save_report(second)
    ollama_double.models.clear()
    ollama_double.models["one:latest"] = ModelScript(
        answer=" ".join(f"one{i}" for i in range(60)), chunk_delay_s=0.03
    )
    ollama_double.models["two:latest"] = ModelScript(
        answer=" ".join(f"two{i}" for i in range(60)), chunk_delay_s=0.03
    )
    env = {
        "SCANSCRIBE_DB": str(db),
        "OLLAMA_HOST": ollama_double.url,
        "SCANSCRIBE_USERS": str(users),
    }
    other = ThreadingHTTPServer(("127.0.0.1", 0), _Slow)
    threading.Thread(target=other.serve_forever, daemon=True).start()
    ports = {"one": http_listener, "two": int(other.server_address[1])}
    try:
        with (
            streamlit_server(env, artifacts / "drill-two-streamlit.log") as url,
            chromium_page() as a,
        ):
            # A second browser context: its own cookies, its own Streamlit session.
            b = a.context.browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
            pages = {"one": a, "two": b}
            for name, page in pages.items():
                page.goto(url + "/scan", wait_until="domcontentloaded")
                page.locator(".st-key-login_password button").click()
                page.locator("#name").fill(name)
                page.locator("#password").fill(f"analyst {name} password")
                page.locator("#login").click()
                page.get_by_role("heading", name="Recent jobs").wait_for(timeout=30_000)
                _settle(page)
            for name, page in pages.items():
                page.locator(".st-key-scan_targets input").fill("127.0.0.1")
                page.locator(".st-key-scan_ports input").fill(str(ports[name]))
                page.locator(".st-key-scan_authorized label").click()
            for page in pages.values():
                page.locator(".st-key-scan_submit button").click()
            for page in pages.values():
                page.get_by_text("Done: 100 %").first.wait_for(timeout=120_000)
            jobs = {j.ports: j for j in store.list_jobs()}
            assert sorted(jobs) == sorted(str(p) for p in ports.values())
            for job in jobs.values():
                assert job.report_id is not None
                report = store.get_report(job.report_id)
                assert {p.port for h in report.hosts for p in h.ports} == {int(job.ports)}
            for page in pages.values():
                # Each session lists only the scan it started (read once the page is idle: a
                # rerun in flight can briefly hold the old and the new copy of an element).
                _settle(page)
                _until(
                    lambda page=page: page.get_by_text("Done: 100 %").count() == 1,
                    "each session to list only its own scan",
                    deadline_s=15,
                )

            for name, page in pages.items():
                page.goto(url + "/summarize", wait_until="domcontentloaded")
                page.locator(".st-key-sum_go button").wait_for(timeout=30_000)
                _settle(page)
                page.locator(".st-key-sum_model").click()
                page.get_by_role("option", name=f"{name}:latest").click()
                page.locator(".st-key-sum_report").click()
                page.get_by_role("option", name=f"r-{name}", exact=False).click()
                _settle(page)
            for page in pages.values():
                page.locator(".st-key-sum_go button").click()
            for name, page in pages.items():
                current = page.locator(".st-key-sum_current")
                current.get_by_text("Complete.").wait_for(timeout=60_000)
                text = current.inner_text()
                assert f"{name}59" in text, text
                assert ("two0" if name == "one" else "one0") not in text, text
        saved = {s.report_id: s for s in store.list_summaries()}
        assert saved["r-one"].model == "one:latest" and "one59" in saved["r-one"].text
        assert saved["r-two"].model == "two:latest" and "two59" in saved["r-two"].text
        assert "two0" not in saved["r-one"].text and "one0" not in saved["r-two"].text
        assert {s.status for s in saved.values()} == {"complete"}
        assert len([j for j in store.list_jobs() if j.status == "done"]) == 2
    finally:
        other.shutdown()
        other.server_close()
        store.close()
