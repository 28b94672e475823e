"""Team access: the users file, roles checked where actions run, throttling, sessions, audit."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

import actions
import auth
import config
from auth import web
from auth.login import LoginResult, attempt_login
from auth.users import Directory, UsersFileError, add_user, edit_users, parse_users
from config import PROJECT_ROOT as ROOT
from scanner.errors import ImportRefused
from services import Services, build
from tests.ollama_double import ModelScript, OllamaDouble
from tests.store_samples import comparison, full_report, job

PASSWORDS = {"vera": "viewer password 1", "ana": "analyst password 1", "adam": "admin password 1"}
ROLE_OF = {"vera": "viewer", "ana": "analyst", "adam": "admin"}


def _write_users(path: Path) -> None:
    for name, password in PASSWORDS.items():
        edit_users(path, lambda u, n=name, p=password: add_user(u, n, ROLE_OF[n], p))


@pytest.fixture
def team(tmp_path: Path, ollama_double: OllamaDouble) -> Iterator[Services]:
    """Services with a users file of a viewer, an analyst and an admin, and one report."""
    users = tmp_path / "users.toml"
    _write_users(users)
    cfg = config.load(
        {
            "SCANSCRIBE_DB": str(tmp_path / "team.db"),
            "SCANSCRIBE_USERS": str(users),
            "OLLAMA_HOST": ollama_double.url,
            "SCANSCRIBE_OLLAMA_TIMEOUT": "3",
        }
    )
    svc = build(cfg)
    svc.store.save_report(full_report("rep-1"))
    yield svc
    svc.close()


def _who(svc: Services, name: str) -> auth.Identity:
    acc = svc.directory.account(name)
    assert acc is not None
    return auth.Identity(acc.name, acc.role, "password", "192.0.2.10")


def _state(svc: Services) -> tuple[object, ...]:
    """Everything a refused action could have changed."""
    s = svc.store
    return (
        [r.id for r in s.list_reports()],
        [(j.id, j.status) for j in s.list_jobs()],
        [x.id for x in s.list_summaries()],
        [(c.id, c.winner) for c in s.list_comparisons()],
    )


# -- the users file and its command line ---------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[users.ana\nrole = 'admin'", "not valid TOML"),
        ("[users.ana]\nrole = 'boss'\npassword = 'x'", "Unknown role 'boss'"),
        ("[users.ana]\npassword = 'x'", "'role' is missing"),
        ("[users.ana]\nrole = 'admin'\npassword = 'hunter2'", "not a scrypt hash"),
        ("[users.ana]\nrole = 'admin'\n[users.ana]\nrole = 'viewer'", "not valid TOML"),
        ("[groups]\nx = 1", "unknown section"),
        ("[oidc]\n'not-an-address' = 'viewer'", "neither an e-mail address"),
        ("[oidc]\n'@example.com' = 'root'", "Unknown role"),
    ],
)
def test_a_malformed_users_file_names_the_problem(text: str, problem: str) -> None:
    with pytest.raises(UsersFileError, match=problem.replace("(", r"\(")):
        parse_users(text, "users.toml")


def test_duplicate_names_differing_in_case_are_refused() -> None:
    good = auth.hash_password("a password of length")
    text = (
        f"[users.ana]\nrole = 'admin'\npassword = '{good}'\n"
        f"[users.Ana]\nrole = 'viewer'\npassword = '{good}'\n"
    )
    with pytest.raises(UsersFileError, match="duplicate user"):
        parse_users(text, "users.toml")


def _auth_cli(
    args: list[str], env: dict[str, str], stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "auth", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, **env},
        timeout=60,
        check=False,
    )


def test_user_commands_manage_accounts_and_refuse_bad_input(tmp_path: Path) -> None:
    users = tmp_path / "u" / "users.toml"
    env = {"SCANSCRIBE_USERS": str(users), "SCANSCRIBE_DB": str(tmp_path / "cli.db")}
    add = _auth_cli(["user", "add", "ana", "--role", "analyst", "--password-stdin"], env,
                    "analyst password 1\n")  # fmt: skip
    assert add.returncode == 0, add.stderr
    assert oct(users.stat().st_mode & 0o777) == "0o600"
    assert "analyst password 1" not in users.read_text()
    listed = _auth_cli(["user", "list", "--format", "json"], env)
    assert listed.returncode == 0 and '"role": "analyst"' in listed.stdout

    refusals = [
        (
            ["user", "add", "ana", "--role", "viewer", "--password-stdin"],
            "x" * 14,
            "already exists",
        ),
        (["user", "add", "bo", "--role", "boss", "--password-stdin"], "x" * 14, "Unknown role"),
        (["user", "add", "bo", "--role", "viewer", "--password-stdin"], "\n", "password is empty"),
        (["user", "add", "bo", "--role", "viewer", "--password-stdin"], "short\n", "12 characters"),
        (["user", "set-role", "nobody", "admin"], "", "No user 'nobody'"),
        (["user", "set-role", "ana", "root"], "", "Unknown role"),
    ]
    before = users.read_bytes()
    for args, stdin, message in refusals:
        out = _auth_cli(args, env, stdin)
        assert out.returncode == 2, (args, out.stderr)
        assert message in out.stderr and "Traceback" not in out.stderr
    assert users.read_bytes() == before  # nothing half-written by a refusal

    assert _auth_cli(["user", "set-role", "ana", "admin"], env).returncode == 0
    assert Directory(users).account("ana").role == "admin"  # type: ignore[union-attr]
    assert _auth_cli(["user", "remove", "ana"], env).returncode == 0
    assert Directory(users).account("ana") is None
    assert _auth_cli(["allow", "add", "@example.com", "--role", "viewer"], env).returncode == 0
    assert Directory(users).oidc_role("Lee@Example.com") == "viewer"
    assert Directory(users).oidc_role("lee@example.org") is None

    users.write_text("[users.x\n")
    broken = _auth_cli(["user", "list"], env)
    assert broken.returncode == 2 and "not valid TOML" in broken.stderr
    # Account changes are in the audit trail, as the machine's local user.
    from store.sqlite import SQLiteStore

    trail = SQLiteStore(tmp_path / "cli.db").list_audit(action="user.change")
    assert [e.detail for e in reversed(trail)] == [
        "added with role analyst",
        "role set to admin",
        "removed",
        "allowlisted with role viewer",
    ]


def test_a_broken_users_file_never_starts_an_open_dashboard(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from streamlit import config as st_config
    from streamlit.testing.v1 import AppTest

    import ui

    users = tmp_path / "users.toml"
    users.write_text("[users.ana]\nrole = 'superuser'\n")
    monkeypatch.setenv("SCANSCRIBE_DB", str(tmp_path / "b.db"))
    monkeypatch.setenv("SCANSCRIBE_USERS", str(users))
    monkeypatch.delenv("SCANSCRIBE_PASSWORD_HASH", raising=False)
    ui._services.clear()
    old = st_config.get_option("server.address")
    st_config.set_option("server.address", "0.0.0.0")
    try:
        at = AppTest.from_file(str(ROOT / "dashboard.py"), default_timeout=30).run()
    finally:
        st_config.set_option("server.address", old)
        ui._services.clear()
    errors = " ".join(e.value for e in at.error)
    assert "login is misconfigured" in errors and "Unknown role 'superuser'" in errors
    assert "Start here" not in str([s.value for s in at.subheader])


# -- checks where the action runs ----------------------------------------------------------------
def test_every_action_is_refused_for_a_viewer_with_nothing_changed(team: Services) -> None:
    svc = team
    ana, vera = _who(svc, "ana"), _who(svc, "vera")
    svc.store.save_job(replace(job("job-ana", time.time()), owner="ana"))
    svc.store.save_comparison(comparison("cmp-1", "rep-1", time.time()))
    before = _state(svc)
    xml = (ROOT / "tests" / "fixtures" / "loopback_sT.xml").read_bytes()
    refused = {
        "scan": lambda: actions.start_scan(svc, vera, "127.0.0.1", "quick", "22"),
        "cancel": lambda: actions.cancel_scan(svc, vera, "job-ana"),
        "import": lambda: actions.import_report(svc, vera, xml, "scan.xml"),
        "delete": lambda: actions.delete_report(svc, vera, "rep-1"),
        "summarize": lambda: actions.start_summary(
            svc, vera, "rep-1", "llama3.2:latest", "executive"
        ),
        "compare": lambda: actions.start_comparison(
            svc, vera, "rep-1", None, ["llama3.2:latest"], "executive"
        ),
        "verdict": lambda: actions.save_verdict(svc, vera, "cmp-1", "tie"),
        "outbox.send": lambda: actions.send_outbox(svc, vera),
        "delete by an analyst": lambda: actions.delete_report(svc, ana, "rep-1"),
    }
    for what, act in refused.items():
        with pytest.raises(auth.Forbidden, match="Nothing was changed"):
            act()
        assert _state(svc) == before, what
    denied = svc.store.list_audit()
    assert {e.action for e in denied if e.outcome == "denied"} == {
        "scan", "cancel", "import", "delete", "summarize", "compare", "verdict", "outbox.send",
    }  # fmt: skip
    assert all(e.actor in ("vera", "ana") for e in denied)
    # Viewers may read and export; the export is recorded.
    actions.record_export(svc, vera, "Hosts CSV", "rep-1")
    assert svc.store.list_audit(action="export")[0].actor == "vera"
    with pytest.raises(auth.Forbidden):
        auth.authorize(vera, "user.change", directory=svc.directory)


def test_analysts_cancel_their_own_scans_and_admins_anyones(team: Services) -> None:
    svc = team
    svc.store.save_job(replace(job("job-adam", time.time()), owner="adam"))
    svc.store.save_job(replace(job("job-ana", time.time()), owner="ana"))
    with pytest.raises(auth.Forbidden, match=r"cancel\.any"):
        actions.cancel_scan(svc, _who(svc, "ana"), "job-adam")
    assert svc.store.get_job("job-adam").status == "queued"
    assert actions.cancel_scan(svc, _who(svc, "ana"), "job-ana").status == "cancelled"
    assert actions.cancel_scan(svc, _who(svc, "adam"), "job-adam").status == "cancelled"
    outcomes = [(e.actor, e.target, e.outcome) for e in svc.store.list_audit(action="cancel")]
    assert ("ana", "job-adam", "denied") in outcomes
    assert ("ana", "job-ana", "ok") in outcomes and ("adam", "job-adam", "ok") in outcomes


def test_allowed_actions_are_recorded_with_their_outcome(
    team: Services, ollama_double: OllamaDouble
) -> None:
    svc = team
    ana, adam = _who(svc, "ana"), _who(svc, "adam")
    ollama_double.models["llama3.2:latest"] = ModelScript(answer="Host 127.0.0.1 is up.")
    xml = (ROOT / "tests" / "fixtures" / "loopback_sT.xml").read_bytes()
    rep = actions.import_report(svc, ana, xml, "loopback.xml")
    assert rep.owner == "ana"
    run = actions.start_summary(svc, ana, rep.id, "llama3.2:latest", "executive")
    assert run.wait(30), "the summary did not finish within 30 s"
    assert svc.store.list_summaries(rep.id)[0].owner == "ana"
    with pytest.raises(ImportRefused):
        actions.import_report(svc, ana, b"<html>not nmap</html>", "page.html")
    actions.delete_report(svc, adam, rep.id)
    trail = {(e.actor, e.action, e.outcome) for e in svc.store.list_audit()}
    assert {("ana", "import", "ok"), ("ana", "summarize", "ok"), ("ana", "import", "failed"),
            ("adam", "delete", "ok")} <= trail  # fmt: skip


def test_a_role_change_or_removal_takes_effect_on_the_next_action(team: Services) -> None:
    svc = team
    ana = _who(svc, "ana")
    xml = (ROOT / "tests" / "fixtures" / "loopback_sT.xml").read_bytes()
    actions.import_report(svc, ana, xml, "one.xml")
    users = svc.config.users_path
    assert users is not None
    edit_users(users, lambda u: replace(u, accounts={
        **u.accounts, "ana": replace(u.accounts["ana"], role="viewer")}))  # fmt: skip
    with pytest.raises(auth.Forbidden, match="viewer role"):
        actions.import_report(svc, ana, xml, "two.xml")  # ana's identity still says analyst
    edit_users(
        users, lambda u: replace(u, accounts={k: v for k, v in u.accounts.items() if k != "ana"})
    )
    with pytest.raises(auth.Forbidden, match="may no longer use ScanScribe"):
        actions.record_export(svc, ana, "JSON", "rep-1")
    assert len(svc.store.list_reports()) == 2


# -- throttling ----------------------------------------------------------------------------------
class _CountingDirectory(Directory):
    def __init__(self, users: Path) -> None:
        super().__init__(users)
        self.evaluated = 0
        self._count_lock = threading.Lock()

    def check_password(self, name: str, password: str) -> auth.users.Account | None:
        with self._count_lock:
            self.evaluated += 1
        return super().check_password(name, password)


def test_twenty_parallel_wrong_guesses_get_only_the_free_attempts_evaluated(team: Services) -> None:
    svc = team
    assert svc.config.users_path is not None
    directory = _CountingDirectory(svc.config.users_path)
    throttle = auth.Throttle(free=3, base_s=30.0)
    start = threading.Barrier(20)
    results: list[LoginResult] = []

    def guess(i: int) -> None:
        start.wait()
        res = attempt_login(directory, svc.sessions, throttle, svc.gate, "ana", f"guess {i}",
                            f"198.51.100.{i}")  # fmt: skip
        results.append(res)

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert directory.evaluated == 3
    assert all(r.cookie is None for r in results)
    assert sum(1 for r in results if r.wait_s > 0) == 17
    # The right password now waits too: the lock is on the account, whatever the address.
    locked = attempt_login(directory, svc.sessions, throttle, svc.gate, "ana",
                           PASSWORDS["ana"], "203.0.113.9")  # fmt: skip
    assert locked.cookie is None and locked.wait_s > 0 and directory.evaluated == 3
    # Another account logging in from one of those addresses does not clear ana's lock.
    ok = attempt_login(directory, svc.sessions, throttle, svc.gate, "vera", PASSWORDS["vera"],
                       "198.51.100.1")  # fmt: skip
    assert ok.cookie is not None
    assert throttle.failures("acct:ana") == 3
    assert attempt_login(directory, svc.sessions, throttle, svc.gate, "ana", PASSWORDS["ana"],
                         "203.0.113.9").wait_s > 0  # fmt: skip
    logins = svc.store.list_audit(action="login")
    assert sum(1 for e in logins if e.outcome == "failed") == 3
    assert all(e.address for e in logins)


def test_the_wait_doubles_with_each_failure_and_a_success_clears_only_its_account() -> None:
    now = [1000.0]
    throttle = auth.Throttle(free=1, base_s=2.0, cap_s=60.0, clock=lambda: now[0])
    waits = []
    for _ in range(4):
        assert throttle.reserve("acct:a", "addr:x") == 0.0
        waits.append(throttle.reserve("acct:a", "addr:x"))
        now[0] += waits[-1]
    assert waits == [2.0, 4.0, 8.0, 16.0]
    throttle.succeeded("acct:b", "addr:x")
    assert throttle.failures("acct:a") == 4


# -- sessions ------------------------------------------------------------------------------------
def test_sessions_are_signed_expire_when_idle_and_logout_ends_them_everywhere() -> None:
    now = [0.0]
    sessions = auth.SessionStore(idle_s=60, clock=lambda: now[0])
    tab1 = sessions.create("ana", "password")
    tab2 = sessions.create("ana", "password")
    other = sessions.create("vera", "password")
    sid, sig = tab1.split(".")
    assert sessions.lookup(f"{sid}.{'0' * len(sig)}") is None  # a forged signature
    assert sessions.lookup(tab1) is not None
    now[0] = 59
    assert sessions.lookup(tab2) is not None  # used within the idle time: renewed
    now[0] = 59 + 61
    assert sessions.lookup(other) is None  # idle too long
    assert sessions.end(tab1, token="wrong") is None
    assert sessions.end(tab1, token=sessions.logout_token(tab1)) == "ana"
    assert sessions.lookup(tab1) is None and sessions.lookup(tab2) is None


def test_login_endpoint_sets_an_httponly_cookie_and_refuses_what_it_should(team: Services) -> None:
    svc = team
    app = Starlette(routes=web.routes(lambda: svc))

    async def exchange() -> dict[str, httpx.Response]:
        transport = httpx.ASGITransport(app=app, client=("192.0.2.7", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            same = {"Origin": "http://testserver"}
            got = {
                "page": await c.get(web.LOGIN_PATH, params={"next": "/reports"}),
                "wrong": await c.post(
                    web.LOGIN_PATH, data={"name": "ana", "password": "nope"}, headers=same
                ),
                "cross": await c.post(
                    web.LOGIN_PATH,
                    data={"name": "ana", "password": PASSWORDS["ana"]},
                    headers={"Origin": "https://evil.example"},
                ),
                "ok": await c.post(
                    web.LOGIN_PATH,
                    data={"name": "ana", "password": PASSWORDS["ana"], "next": "//evil.example/x"},
                    headers=same,
                ),
                "https": await c.post(
                    web.LOGIN_PATH,
                    data={"name": "vera", "password": PASSWORDS["vera"]},
                    headers={**same, "X-Forwarded-Proto": "https"},
                ),
            }
            value = got["ok"].cookies[auth.COOKIE]
            c.cookies.set(auth.COOKIE, value)
            got["logout"] = await c.get(
                web.LOGOUT_PATH, params={"t": svc.sessions.logout_token(value)}
            )
            got["value"] = httpx.Response(200, text=value)
            return got

    got = asyncio.run(exchange())
    assert got["page"].status_code == 200 and 'name="password"' in got["page"].text
    assert "frame-ancestors 'none'" in got["page"].headers["content-security-policy"]
    assert got["wrong"].status_code == 401 and "Wrong name or password" in got["wrong"].text
    assert "set-cookie" not in got["wrong"].headers
    assert got["cross"].status_code == 403
    ok = got["ok"]
    assert ok.status_code == 303 and ok.headers["location"] == "/"  # no open redirect
    cookie = ok.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie
    assert PASSWORDS["ana"] not in cookie and "scrypt" not in cookie
    assert "Secure" in got["https"].headers["set-cookie"]
    value = got["value"].text
    assert got["logout"].status_code == 303 and svc.sessions.lookup(value) is None
    kinds = [(e.action, e.outcome, e.address) for e in svc.store.list_audit()]
    assert ("login", "failed", "192.0.2.7") in kinds and ("login", "ok", "192.0.2.7") in kinds
    assert ("logout", "ok", "") in kinds


def test_an_oidc_account_off_the_allowlist_is_refused_and_recorded(team: Services) -> None:
    svc = team
    users = svc.config.users_path
    assert users is not None
    edit_users(
        users, lambda u: replace(u, allow={"@example.com": "viewer", "lead@example.com": "admin"})
    )
    assert svc.directory.oidc_role("LEAD@example.com") == "admin"
    stranger = auth.Identity("eve@elsewhere.example", "admin", "oidc", "192.0.2.66")
    with pytest.raises(auth.Forbidden, match="no longer on the allowlist"):
        actions.record_export(svc, stranger, "JSON", "rep-1")
    # The allowlist, not what the session once held, decides the role.
    member = auth.Identity("lee@example.com", "admin", "oidc")
    with pytest.raises(auth.Forbidden, match="viewer role"):
        actions.delete_report(svc, member, "rep-1")
    assert [r.id for r in svc.store.list_reports()] == ["rep-1"]
    denied = [(e.actor, e.outcome) for e in svc.store.list_audit()]
    assert ("eve@elsewhere.example", "denied") in denied and ("lee@example.com", "denied") in denied
