"""Helpers shared by the pages: the cached services, safe rendering of untrusted text, formats.

Only pages and dashboard.py import this module; the core packages never import streamlit.
"""

from __future__ import annotations

import datetime as dt
import re
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar, cast
from urllib.parse import quote

import streamlit as st
from streamlit.navigation.page import StreamlitPage
from streamlit.runtime.scriptrunner import get_script_run_ctx

import auth
import config as config_mod
import services as services_mod
from auth import web
from llm.errors import LLMError
from llm.mdsafe import escape_markdown
from scanner.diff import default_base, earlier_choices, mismatch
from scanner.models import ReportSummary
from services import Services
from store import Store, StoreError

T = TypeVar("T")

PAGE_DIR = config_mod.PROJECT_ROOT / "pages"
# (file, title, icon); absolute paths so the list also works when a page is the main script.
PAGES = (
    ("overview.py", "Overview", ":material/dashboard:"),
    ("scan.py", "Scan", ":material/radar:"),
    ("schedules.py", "Schedules", ":material/schedule:"),
    ("alerts.py", "Alerts", ":material/notifications:"),
    ("reports.py", "Reports", ":material/table_view:"),
    ("summarize.py", "Summarize", ":material/summarize:"),
    ("compare.py", "Compare models", ":material/compare:"),
    ("audit.py", "Audit", ":material/policy:"),
    ("status.py", "System status", ":material/monitor_heart:"),
)
_run = threading.local()

# How the Summarize and Compare pages name the two audiences of llm.prompt.AUDIENCES.
AUDIENCE_LABELS = {
    "executive": "Executive — risk and business impact",
    "technical": "Technical — findings and fixes per host",
}
# Formatting characters, escaped on top of llm.mdsafe's escaping (which already takes care of
# links, images, HTML, entities, code, directives and autolinks) so that labels read literally.
_MD_FORMAT = re.compile(r"([*_{}()#+!|~=-])")


@st.cache_resource(show_spinner=False)
def _services() -> Services:
    import monitor

    svc = services_mod.build(config_mod.load())
    monitor.start_background_scheduler(svc)  # off with SCANSCRIBE_SCHEDULER=off
    return svc


def get_services() -> Services:
    """The process-wide services, built once; a bad setting stops here with its message."""
    try:
        return _services()
    except config_mod.ConfigError as exc:
        st.error(escape_md_keep_code(f"ScanScribe cannot start: {exc}"))
    except StoreError as exc:
        st.error(escape_md_keep_code(f"ScanScribe cannot open its store: {exc}"))
    st.stop()
    raise AssertionError("st.stop() does not return")


def escape_md(text: str) -> str:
    """Escape untrusted text so markdown renders it literally: no links, images or HTML."""
    return _MD_FORMAT.sub(r"\\\1", escape_markdown(text))


def escape_md_keep_code(text: str) -> str:
    """Escape a message like :func:`escape_md` but keep its `code` spans (a command to run).

    Markdown is never rendered inside a code span, so only the text between spans needs
    escaping; a message with an unpaired backtick is escaped whole.
    """
    parts = text.split("`")
    if len(parts) % 2 == 0:
        return escape_md(text)
    return "".join(f"`{p}`" if i % 2 else escape_md(p) for i, p in enumerate(parts))


def last_good(key: str, read: Callable[[], T], what: str) -> T:
    """Read from the store; when it fails, show why and fall back to this session's last copy.

    A remote store can drop out mid-session. The page then keeps working on what it last read
    (a summary streaming meanwhile is kept in the outbox) instead of failing outright.
    """
    try:
        value = read()
    except StoreError as exc:
        slot = st.session_state.get("_last_good", {})
        if key in slot:
            st.warning(escape_md_keep_code(f"{exc} Showing {what} as last read."))
            return cast(T, slot[key])
        st.error(escape_md_keep_code(f"The store could not be read: {exc}"))
        st.stop()
    st.session_state.setdefault("_last_good", {})[key] = value
    return value


def start_run(failure_key: str, make: Callable[[], T]) -> T | None:
    """Start background work from a button callback; on failure keep why under ``failure_key``."""
    st.session_state.pop(failure_key, None)
    try:
        return make()
    except (LLMError, StoreError, ValueError, auth.Forbidden) as exc:
        st.session_state[failure_key] = str(exc)
        return None


def report_label(r: ReportSummary) -> str:
    """How a report is named in pickers: targets, when its scan ran, profile or file, and id."""
    what = (r.profile or r.source)[:40]
    targets = ", ".join(r.targets)[:60] or "no targets named"
    return f"{targets} — scanned {when(r.scanned_at)} · {what} ({r.id})"


def pick_report_or_diff(
    store: Store, reports: list[ReportSummary], prefix: str, diff_label: str
) -> tuple[str, str, str | None]:
    """A report, or two for a diff: returns (mode, report id, earlier report id or None).

    Widgets are keyed ``{prefix}_mode``, ``{prefix}_report`` and ``{prefix}_base``. The earlier
    report is one scanned before the report whose targets overlap it; it starts at the previous
    scan of the same targets, profile and ports, and starts there again whenever the report
    changes, so a pair is never left over from another report. A pair whose targets or profiles
    differ is shown with a warning.
    """
    ss = st.session_state
    by_id = {r.id: r for r in reports}
    mode = st.radio(
        "Summarize" if prefix == "sum" else "Compare on",
        ["report", "diff"],
        key=f"{prefix}_mode",
        horizontal=True,
        format_func=lambda m: "One report" if m == "report" else diff_label,
    )
    report_id = st.selectbox(
        "Report", list(by_id), key=f"{prefix}_report", format_func=lambda i: report_label(by_id[i])
    )
    base_key, base_for = f"{prefix}_base", f"{prefix}_base_for"
    if mode != "diff":
        return str(mode), str(report_id), None
    report = by_id[report_id]
    choices = [r.id for r in earlier_choices(reports, report)]
    if not choices:
        ss.pop(base_key, None)
        st.info(
            "No earlier report scanned any of these targets, so there is nothing to compare "
            "with. Scan them again later, or import an older scan of them."
        )
        return str(mode), str(report_id), None
    if ss.get(base_for) != report_id or ss.get(base_key) not in choices:
        base = last_good(
            f"base:{report_id}", lambda: default_base(store, report), "the default earlier report"
        )
        ss[base_key] = base.id if base is not None and base.id in choices else choices[0]
        ss[base_for] = report_id
    base_id = st.selectbox(
        "Earlier report",
        choices,
        key=base_key,
        format_func=lambda i: report_label(by_id[i]),
        help="Reports scanned before this one whose targets overlap it, newest scan first.",
    )
    problems = mismatch(by_id[base_id], report)
    if problems:
        st.warning(
            escape_md(
                "These two reports are not scans of the same thing: "
                + "; ".join(problems)
                + ". Changes may come from what was scanned, not from the network; "
                "the summary says so."
            ),
            icon=":material/warning:",
        )
    return str(mode), str(report_id), str(base_id)


def when(ts: float | None) -> str:
    """A timestamp as local ``YYYY-MM-DD HH:MM:SS``, or an em dash."""
    if not ts:
        return "—"
    return dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


def duration(seconds: float | None) -> str:
    """Seconds as ``1h 02m``, ``3m 05s`` or ``12.3 s``."""
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds:.1f} s"
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}h {m:02d}m" if h else f"{m}m {s:02d}s"


def _oidc_configured() -> bool:
    try:
        return "auth" in st.secrets
    except Exception:  # no secrets.toml at all is the common case
        return False


def exposed() -> bool:
    """Whether the server listens beyond loopback."""
    return not auth.is_loopback(str(st.get_option("server.address") or ""))


def login_method() -> str | None:
    """``oidc``, ``password`` or None (no login configured)."""
    if _oidc_configured():
        return "oidc"
    return "password" if get_services().directory.has_passwords else None


def _client_address() -> str:
    try:
        return str(st.context.ip_address or "")
    except Exception:  # AppTest has no connection
        return ""


def session_cookie() -> str | None:
    """This browser's session cookie (HttpOnly; the page never sees it in JavaScript)."""
    value = st.context.cookies.get(auth.COOKIE) if st.context.cookies else None
    return value or st.session_state.get("_auth_cookie")


def identity() -> auth.Identity | None:
    """Who is using this session now, with the role the directory gives them now; or None.

    None means: nobody may do or read anything (exposed with no login, or not logged in, or an
    account removed or dropped from the allowlist).
    """
    svc = get_services()
    method = login_method()
    address = _client_address()
    if method is None:
        return None if exposed() else auth.Identity.local(svc.config.user)
    if method == "oidc":
        if not getattr(st.user, "is_logged_in", False):
            return None
        email = str(st.user.get("email") or "")
        role = svc.directory.oidc_role(email) if email else None
        return auth.Identity(email, role, "oidc", address) if role else None
    sess = svc.sessions.lookup(session_cookie())
    if sess is None:
        return None
    acc = svc.directory.account(sess.name)
    return auth.Identity(acc.name, acc.role, "password", address) if acc else None


def can(action: str) -> bool:
    """Whether the current identity's role allows ``action`` (to hide controls; the core
    checks again when the action runs)."""
    who = identity()
    return who is not None and auth.role_allows(who.role, action)


def current_user() -> str:
    """The authenticated name recorded with what this session does."""
    who = identity()
    return who.name if who else ""


def _fail_closed() -> None:
    st.title("ScanScribe")
    st.error(
        "ScanScribe is closed: this dashboard listens beyond loopback and no login is "
        "configured, so it shows nothing and does nothing."
    )
    st.markdown(
        "Configure one of these, then restart it:\n"
        "- accounts with roles: set `SCANSCRIBE_USERS` to a users file and add an admin with "
        "`python -m auth user add NAME --role admin`;\n"
        "- a single admin password: `SCANSCRIBE_PASSWORD_HASH` (make one with "
        "`python -m auth hash`);\n"
        "- OIDC: `[auth]` in `.streamlit/secrets.toml` and an allowlist with "
        "`python -m auth allow add ana@example.com --role analyst`;\n"
        "- or serve it on loopback only: `--server.address 127.0.0.1`."
    )
    st.stop()


def login_gate() -> None:
    """Stop the page unless the visitor may use it: Host check, fail closed, login, allowlist."""
    host = st.context.headers.get("Host")
    if not auth.host_header_allowed(host, exposed()):
        st.error(
            "This dashboard serves loopback only, but the request came for another host name. "
            "Open it at http://127.0.0.1:8501, or serve it beyond loopback with a login."
        )
        st.stop()
    try:
        method = login_method()
    except config_mod.ConfigError as exc:
        st.error(escape_md_keep_code(f"ScanScribe cannot start: the login is misconfigured. {exc}"))
        st.stop()
    if method is None:
        if exposed():
            _fail_closed()
        return
    if identity() is not None:
        return
    st.title("ScanScribe")
    if method == "oidc":
        if getattr(st.user, "is_logged_in", False):
            email = str(st.user.get("email") or "")
            if not st.session_state.get("_oidc_refusal_recorded"):
                st.session_state["_oidc_refusal_recorded"] = True
                get_services().gate.record(
                    None, "login", email, "denied", "not on the allowlist", name=email,
                    address=_client_address(),
                )  # fmt: skip
            st.error(
                f"{escape_md(email) or 'This account'} is not allowed to use ScanScribe. Ask an "
                "admin to add it: `python -m auth allow add ADDRESS --role viewer`."
            )
            st.button("Log out", key="logout_oidc", on_click=st.logout)
            st.stop()
        st.info("Log in to use ScanScribe.")
        st.button("Log in", key="login_oidc", on_click=st.login)
        st.stop()
    st.info("Log in to use ScanScribe. A login lasts until you log out or stay idle too long.")
    path = "/" + str(st.context.url or "").split("://", 1)[-1].partition("/")[2]
    st.button(
        "Log in",
        key="login_password",
        type="primary",
        on_click=_navigate,
        args=(f"{web.LOGIN_PATH}?next={quote(path)}",),
    )
    st.stop()


def _navigate(url: str) -> None:
    """Send this browser tab to ``url`` on this server (the login form), as st.login does."""
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    ctx = get_script_run_ctx()
    if ctx is None:
        return
    msg = ForwardMsg()
    msg.auth_redirect.url = url
    ctx.enqueue(msg)


def _account_box() -> None:
    """Who is logged in, with which role, and a way to log out."""
    who = identity()
    if who is None or who.method == "local":
        return
    with st.sidebar:
        st.caption(f"Logged in as {escape_md(who.name)} · {who.role}")
        if who.method == "oidc":
            st.button("Log out", key="logout", on_click=st.logout)
        else:
            cookie = session_cookie() or ""
            token = get_services().sessions.logout_token(cookie)
            st.button(
                "Log out", key="logout", on_click=_navigate, args=(f"{web.LOGOUT_PATH}?t={token}",)
            )


def login_backend() -> Services:
    """The services the login endpoints use (the same ones the pages use)."""
    return _services()


def _pages() -> dict[str, StreamlitPage]:
    """The navigation; called only once the gate let the visitor in (titles may show counts)."""
    from widgets.alerts import unread_label

    titles = {"alerts.py": unread_label(get_services())}
    return {
        name: st.Page(PAGE_DIR / name, title=titles.get(name, title), icon=icon, default=(i == 0))
        for i, (name, title, icon) in enumerate(PAGES)
    }


def _gate() -> None:
    st.set_page_config(page_title="ScanScribe", page_icon=":material/radar:", layout="wide")
    login_gate()
    _account_box()


def run_app() -> None:
    """The entry point's whole job: page config, login gate, then the selected page."""
    _gate()
    _run.in_app = True
    try:
        st.navigation(list(_pages().values())).run()
    finally:
        _run.in_app = False


def page_guard() -> None:
    """First call of every page. A page reached without the entry point still gets the gate.

    With a ``pages/`` folder beside the entry point, Streamlit runs a page file directly on a
    deep link (its older folder routing), skipping the entry point. Such a run passes the
    login and Host checks here, then switches to the same page under the entry point's
    navigation, so widget state and the sidebar belong to one routing only. A page that is
    itself the main script (a test, or ``streamlit run pages/x.py``) just renders.
    """
    if getattr(_run, "in_app", False):
        return
    _gate()
    ctx = get_script_run_ctx()
    caller = Path(sys._getframe(1).f_globals.get("__file__", "")).resolve()
    if ctx is None or Path(ctx.main_script_path).resolve() == caller:
        return
    pages = _pages()
    st.navigation(list(pages.values()))
    if caller.name in pages:
        st.switch_page(pages[caller.name])
