"""Login when exposed: salted hashes, constant-time checks, a growing delay, scans refused."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import auth
import ui
from config import PROJECT_ROOT as ROOT


def test_hash_is_salted_and_verifies() -> None:
    a = auth.hash_password("correct horse battery")
    b = auth.hash_password("correct horse battery")
    assert a != b  # a fresh salt every time
    assert a.startswith("scrypt$")
    assert auth.verify_password("correct horse battery", a)
    assert not auth.verify_password("correct horse batterx", a)


@pytest.mark.parametrize("stored", ["", "plain", "scrypt$1$2$3$!!$!!", "md5$x$y$z$a$b"])
def test_malformed_hash_never_matches(stored: str) -> None:
    assert not auth.verify_password("anything", stored)


@pytest.mark.parametrize(
    ("address", "loopback"),
    [
        ("127.0.0.1", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("", False),
        ("10.1.2.3", False),
        ("scanbox.example", False),
    ],
)
def test_loopback_detection(address: str, loopback: bool) -> None:
    assert auth.is_loopback(address) is loopback


def test_hash_command_reads_stdin_and_refuses_short_passwords() -> None:
    ok = subprocess.run(
        [sys.executable, "-m", "auth", "hash"],
        input="a long enough password\n",
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert ok.returncode == 0
    assert auth.verify_password("a long enough password", ok.stdout.strip())
    short = subprocess.run(
        [sys.executable, "-m", "auth", "hash"],
        input="short\n",
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert short.returncode == 2 and "12 characters" in short.stderr


@pytest.fixture
def locked_app(monkeypatch: pytest.MonkeyPatch, db_path: Path) -> Iterator[None]:
    monkeypatch.setenv("SCANSCRIBE_DB", str(db_path))
    monkeypatch.setenv("OLLAMA_HOST", "http://127.0.0.1:9")
    monkeypatch.setenv("SCANSCRIBE_PASSWORD_HASH", auth.hash_password("open sesame 123"))
    ui._services.clear()
    yield
    ui._services.clear()


def test_dashboard_asks_for_the_password_before_any_page(locked_app: None) -> None:
    at = AppTest.from_file(str(ROOT / "dashboard.py"), default_timeout=30).run()
    assert not at.exception
    assert at.button(key="login_password").label == "Log in"
    assert "Start here" not in str([s.value for s in at.subheader])
    # A forged or unknown cookie value gets no further.
    at.session_state["_auth_cookie"] = "forged.0123"
    at.run()
    assert "Start here" not in str([s.value for s in at.subheader])
    # The session the login endpoint would have created lets the page through.
    at.session_state["_auth_cookie"] = ui._services().sessions.create("admin", "password")
    at.run()
    assert not at.exception
    assert at.title[0].value == "ScanScribe"
    assert "Start here" in str([s.value for s in at.subheader])


@pytest.mark.parametrize(
    ("host", "exposed", "allowed"),
    [
        ("127.0.0.1:8501", False, True),
        ("localhost:8501", False, True),
        ("[::1]:8501", False, True),
        (None, False, True),
        ("evil.example:8501", False, False),
        ("10.0.0.5:8501", False, False),
        ("evil.example", True, True),
    ],
)
def test_foreign_host_header_is_refused_on_a_loopback_server(
    host: str | None, exposed: bool, allowed: bool
) -> None:
    assert auth.host_header_allowed(host, exposed) is allowed


@pytest.mark.browser
def test_foreign_host_header_stops_the_dashboard_over_http(tmp_path: Path, artifacts: Path) -> None:
    """A real `streamlit run` asked for under a foreign name shows the refusal, no page."""
    from tests.browser import chromium_page, streamlit_server

    env = {"SCANSCRIBE_DB": str(tmp_path / "h.db"), "OLLAMA_HOST": "http://127.0.0.1:9"}
    # Chromium maps the foreign name to loopback, as a DNS-rebinding attack would arrange.
    rules = "--host-resolver-rules=MAP rebind.test 127.0.0.1"
    with (
        streamlit_server(env, artifacts / "host-header-streamlit.log") as url,
        chromium_page(extra_args=[rules]) as page,
    ):
        port = url.rsplit(":", 1)[1]
        page.goto(f"http://rebind.test:{port}", wait_until="domcontentloaded")
        page.get_by_text("serves loopback only").wait_for(timeout=30_000)
        assert "Start here" not in page.inner_text("body")
        page.goto(url, wait_until="domcontentloaded")
        page.get_by_text("Start here").wait_for(timeout=30_000)


@pytest.mark.browser
def test_deep_link_to_a_page_still_asks_for_the_password(tmp_path: Path, artifacts: Path) -> None:
    """Opening /scan directly must not skip the login; after it, /scan opens; the sidebar
    shows page titles."""
    from tests.browser import chromium_page, streamlit_server

    env = {
        "SCANSCRIBE_DB": str(tmp_path / "d.db"),
        "OLLAMA_HOST": "http://127.0.0.1:9",
        "SCANSCRIBE_PASSWORD_HASH": auth.hash_password("open sesame 123"),
    }
    with (
        streamlit_server(env, artifacts / "deep-link-streamlit.log") as url,
        chromium_page() as page,
    ):
        page.goto(url + "/scan", wait_until="domcontentloaded")
        page.get_by_text("Log in to use ScanScribe").wait_for(timeout=30_000)
        assert page.locator(".st-key-scan_targets").count() == 0
        page.locator(".st-key-login_password button").click()
        page.locator("#name").fill("admin")
        page.locator("#password").fill("open sesame 123")
        page.locator("#login").click()
        page.locator(".st-key-scan_targets").wait_for(timeout=30_000)
        assert page.url.endswith("/scan")
        sidebar = page.locator("[data-testid='stSidebarNav']").inner_text()
        assert "System status" in sidebar and "status" not in sidebar.replace("System status", "")
        page.screenshot(path=str(artifacts / "deep-link-after-login.png"), full_page=True)
