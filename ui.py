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
from store.records import JOB_ACTIVE

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
# A web address in a message (Ollama's, say): shown as a code span, which is never a link and
# copies exactly, instead of broken up with an invisible character as scan data is.
_ADDRESS = re.compile(r"\b(?:https?://|www\.)[^\s`<>\"']*[^\s`<>\"'.,;:!?)\]]")
LABEL_SOURCE, LABEL_TARGETS, MAX_URL_ID = 40, 120, 80


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
    escaping; web addresses in that text become code spans too, so they copy exactly. A message
    with an unpaired backtick is escaped whole.
    """
    parts = text.split("`")
    if len(parts) % 2 == 0:
        return escape_md(text)
    return "".join(f"`{p}`" if i % 2 else _escape_prose(p) for i, p in enumerate(parts))


def _escape_prose(text: str) -> str:
    """Escape message text between code spans, with its web addresses made code spans."""
    out, pos = [], 0
    for m in _ADDRESS.finditer(text):
        out += [escape_md(text[pos : m.start()]), f"`{m.group()}`"]
        pos = m.end()
    return "".join([*out, escape_md(text[pos:])])


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


def source_name(r: ReportSummary) -> str:
    """What made a report: its profile for a scan, the file name for an import."""
    if r.profile:
        return r.profile
    return r.source.removeprefix("import:").strip() or r.source


def report_label(r: ReportSummary) -> str:
    """The one name of a report, in every picker and list.

    Source (profile or file name), scan time (24 h), targets, hosts up and open ports, then the
    id as a suffix that is never cut, so two reports never read alike. A picker searches this
    text, so it holds the file name and every target (a long list ends with how many more).
    """
    targets = ", ".join(r.targets) or "no targets named"
    if len(targets) > LABEL_TARGETS:
        cut = targets[:LABEL_TARGETS].rsplit(", ", 1)[0]
        targets = f"{cut} +{len(r.targets) - cut.count(', ') - 1} more"
    return (
        f"{source_name(r)[:LABEL_SOURCE]} · {when(r.scanned_at)} · {targets} · "
        f"{r.hosts_up} up / {r.open_ports} open · {r.id}"
    )


def url_id(name: str) -> str | None:
    """A report, summary or comparison id from the address bar, or None when it is absent."""
    value = st.query_params.get(name)
    return value.strip()[:MAX_URL_ID] if value else None


def set_url(**params: str | None) -> None:
    """Put the page's current choices in the address bar (None removes one), if they changed.

    Only ids the page itself chose are written, so a URL is always one the app built.
    """
    qp = st.query_params
    for name, value in params.items():
        if value is None:
            if name in qp:
                del qp[name]
        elif qp.get(name) != value:
            qp[name] = value


def unknown_id(what: str, value: str) -> None:
    """Say that an id from the address bar names nothing, and what is shown instead."""
    st.error(
        escape_md(f"No {what} has the id {value[:MAX_URL_ID]!r}: it may have been deleted, or "
                  "the link was cut. Showing the newest instead.")
    )  # fmt: skip


def _apply_url(prefix: str, by_id: dict[str, ReportSummary]) -> None:
    """Preselect the picker from ``?report=ID`` or ``?diff=OLD..NEW``, once per address."""
    ss = st.session_state
    raw = st.query_params.get("diff") or st.query_params.get("report")
    if not raw or ss.get(f"{prefix}_url") == raw:
        return
    ss[f"{prefix}_url"] = raw
    old, sep, new = raw.partition("..")
    if sep:
        if old in by_id and new in by_id:
            ss[f"{prefix}_mode"] = "diff"
            ss[f"{prefix}_report"] = new
            ss[f"{prefix}_base"], ss[f"{prefix}_base_for"] = old, new
        else:
            unknown_id("pair of reports", raw)
    elif raw in by_id:
        ss[f"{prefix}_report"] = raw
    else:
        unknown_id("report", raw)


def _show_in_url(prefix: str, value: str) -> None:
    """Write the picker's choice to the address, remembered so it is not applied back."""
    st.session_state[f"{prefix}_url"] = value
    if ".." in value:
        set_url(report=None, diff=value)
    else:
        set_url(report=value, diff=None)


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
    _apply_url(prefix, by_id)
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
        _show_in_url(prefix, str(report_id))
        return str(mode), str(report_id), None
    report = by_id[report_id]
    choices = [r.id for r in earlier_choices(reports, report)]
    if not choices:
        ss.pop(base_key, None)
        st.info(
            "No earlier report scanned any of these targets, so there is nothing to compare "
            "with. Scan them again later, or import an older scan of them."
        )
        _show_in_url(prefix, str(report_id))
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
    _show_in_url(prefix, f"{base_id}..{report_id}")
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
    _scan_badge()


def _scan_badge() -> None:
    """A "scan running" badge in the sidebar while a scan of this user runs (one store read)."""
    who = identity()
    if who is None:
        return
    try:
        mine = [
            j for j in get_services().store.list_jobs(statuses=JOB_ACTIVE) if j.owner == who.name
        ]
    except StoreError:
        return  # the page itself says the store is down
    if not mine:
        return
    with st.sidebar.container(key="scan_badge"):
        st.badge(
            f"{len(mine)} scans running" if len(mine) > 1 else "Scan running",
            icon=":material/radar:",
            color="blue",
        )
        st.page_link(_pages()["scan.py"], label="Follow it on the Scan page")


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
