"""The login and logout endpoints, served beside the dashboard by Streamlit's own server.

A password login is posted here rather than to a Streamlit widget so that the session can be
carried by an HttpOnly cookie, which only a server response can set. The page is static text:
nothing from a request is echoed into it except an escaped message of our own.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Protocol
from urllib.parse import quote, urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from auth.gate import Gate
from auth.login import attempt_login
from auth.sessions import COOKIE, SessionStore
from auth.throttle import Throttle
from auth.users import Directory

LOGIN_PATH = "/_scanscribe/login"
LOGOUT_PATH = "/_scanscribe/logout"
MAX_FIELD = 256


class LoginBackend(Protocol):
    """What the endpoints need from the dashboard's services."""

    @property
    def directory(self) -> Directory: ...
    @property
    def sessions(self) -> SessionStore: ...
    @property
    def throttle(self) -> Throttle: ...
    @property
    def gate(self) -> Gate: ...


def safe_next(target: str | None) -> str:
    """A local path to return to after login; anything pointing elsewhere becomes ``/``."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return "/"
    return target


def _page(message: str = "", next_path: str = "/", status: int = 200) -> HTMLResponse:
    note = f'<p class="msg">{html.escape(message)}</p>' if message else ""
    body = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ScanScribe — log in</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{{background:#0f1419;color:#e6edf3;font-family:sans-serif;display:flex;justify-content:center;
margin-top:12vh}} form{{background:#1a2129;padding:2em;border-radius:8px;min-width:18em}}
label{{display:block;margin-top:1em}} input{{width:100%;padding:.5em;margin-top:.3em;
box-sizing:border-box}} button{{margin-top:1.5em;padding:.6em 1.2em;background:#3fb68b;border:0;
border-radius:4px;color:#0f1419;font-weight:bold}} .msg{{color:#ff8a80}}
</style></head><body>
<form method="post" action="{LOGIN_PATH}">
<h1>ScanScribe</h1>{note}
<input type="hidden" name="next" value="{html.escape(next_path, quote=True)}">
<label>Name <input name="name" id="name" autocomplete="username" required maxlength="64"></label>
<label>Password <input name="password" id="password" type="password"
 autocomplete="current-password" required maxlength="{MAX_FIELD}"></label>
<button type="submit" id="login">Log in</button>
</form></body></html>"""
    headers = {
        "Cache-Control": "no-store",
        "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
        "form-action 'self'; frame-ancestors 'none'",
        "X-Frame-Options": "DENY",
    }
    return HTMLResponse(body, status_code=status, headers=headers)


def _secure(request: Request) -> bool:
    proto = request.headers.get("x-forwarded-proto", request.url.scheme)
    return proto.split(",")[0].strip().lower() == "https"


def _same_origin(request: Request) -> bool:
    """A form post must come from this site's own page (no cross-site login posts)."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None  # some browsers omit Origin on same-origin posts
    return urlsplit(origin).netloc == request.headers.get("host", "")


def routes(backend: Callable[[], LoginBackend]) -> list[BaseRoute]:
    """The login and logout routes, reading the services through ``backend`` on each request."""

    async def login(request: Request) -> Response:
        if request.method == "GET":
            return _page(next_path=safe_next(request.query_params.get("next")))
        if not _same_origin(request):
            return _page("This login form was posted from another site.", status=403)
        form = await request.form()
        name = str(form.get("name", ""))[:64]
        password = str(form.get("password", ""))[:MAX_FIELD]
        next_path = safe_next(str(form.get("next", "/")))
        address = request.client.host if request.client else ""
        svc = await run_in_threadpool(backend)
        result = await run_in_threadpool(
            attempt_login,
            svc.directory,
            svc.sessions,
            svc.throttle,
            svc.gate,
            name,
            password,
            address,
        )
        if result.cookie is None:
            status = 429 if result.wait_s else 401
            return _page(result.message, next_path, status)
        response = RedirectResponse(next_path, status_code=303)
        response.set_cookie(
            COOKIE,
            result.cookie,
            max_age=int(svc.sessions.idle_s) + 86400,
            path="/",
            httponly=True,
            samesite="lax",
            secure=_secure(request),
        )
        return response

    async def logout(request: Request) -> Response:
        svc = await run_in_threadpool(backend)
        cookie = request.cookies.get(COOKIE)
        name = svc.sessions.end(cookie, request.query_params.get("t", ""))
        if name is not None:
            await run_in_threadpool(svc.gate.record, None, "logout", name, "ok", name=name)
        response = RedirectResponse(f"{LOGIN_PATH}?next={quote('/')}", status_code=303)
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="lax")
        return response

    return [
        Route(LOGIN_PATH, login, methods=["GET", "POST"]),
        Route(LOGOUT_PATH, logout, methods=["GET"]),
    ]
