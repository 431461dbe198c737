"""FastAPI dependency aliases: settings, services and the caller's role."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import Depends, HTTPException, status
from starlette.requests import HTTPConnection

from emoroute.services import Services
from emoroute.settings import Settings


def get_services(request: HTTPConnection) -> Services:
    """Return the app's services."""
    return request.app.state.services  # type: ignore[no-any-return]


def get_settings(request: HTTPConnection) -> Settings:
    """Return the app's settings."""
    return request.app.state.settings  # type: ignore[no-any-return]


ServicesDep = Annotated[Services, Depends(get_services)]
SettingsDep = Annotated[Settings, Depends(get_settings)]


@dataclass(frozen=True)
class Principal:
    """Who is asking: a supervisor (sees everything) or one agent."""

    role: Literal["supervisor", "agent"]
    agent_id: str | None = None


SESSION_COOKIE = "emoroute_session"


def bearer_token(request: HTTPConnection) -> str | None:
    """Return the ``Authorization: Bearer`` token, if any (the only credential /api/* accepts)."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


def _same(a: str, b: str) -> bool:
    # bytes, so that a token with non-ASCII characters is simply wrong (compare_digest refuses such str)
    return hmac.compare_digest(a.encode("utf-8", "surrogateescape"), b.encode("utf-8", "surrogateescape"))


def principal_for_token(token: str | None, settings: Settings) -> Principal | None:
    """Return the principal a bearer token stands for, or None."""
    if not token:
        return None
    if _same(token, settings.api_token):
        return Principal("supervisor")
    for agent_id, agent_token in settings.agent_token_map().items():
        if _same(token, agent_token):
            return Principal("agent", agent_id)
    return None


def _session_key(settings: Settings) -> bytes:
    return hmac.new(settings.secret_key.encode(), b"emoroute/dashboard-session/v1", hashlib.sha256).digest()


def _fingerprint(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()[:16]


def session_cookie(principal: Principal, token: str, settings: Settings, now: float | None = None) -> str:
    """Return a signed, expiring session for a principal who proved ``token`` (the token itself is not kept).

    It names the role, the agent, its expiry and a fingerprint of the token, so rotating that
    token (or the secret key) ends the session.
    """
    expires = int((now if now is not None else time.time()) + settings.session_max_age_s)
    # a random nonce: every sign-in is its own session, which logout can revoke alone
    payload = f"{principal.role}|{principal.agent_id or ''}|{expires}|{_fingerprint(token)}|{secrets.token_hex(8)}"
    signature = hmac.new(_session_key(settings), payload.encode(), hashlib.sha256).hexdigest()
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=") + "." + signature


def principal_for_session(cookie: str | None, settings: Settings, now: float | None = None) -> Principal | None:
    """Return the principal of a valid, unexpired session cookie, else None."""
    if not cookie or "." not in cookie or len(cookie) > 512:
        return None
    encoded, _, signature = cookie.rpartition(".")
    try:
        payload = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    expected = hmac.new(_session_key(settings), payload.encode(), hashlib.sha256).hexdigest()
    if not _same(signature, expected):
        return None
    role, agent_id, expires, fingerprint = (payload.split("|") + ["", "", "", ""])[:4]
    if not expires.isdigit() or int(expires) < (now if now is not None else time.time()):
        return None
    if role == "supervisor":
        return Principal("supervisor") if _same(fingerprint, _fingerprint(settings.api_token)) else None
    token = settings.agent_token_map().get(agent_id)
    if role == "agent" and token is not None and _same(fingerprint, _fingerprint(token)):
        return Principal("agent", agent_id)
    return None


def session_id(cookie: str | None) -> str | None:
    """Return the id a session cookie is revoked by (its signature), or None if it is not one."""
    if not cookie or "." not in cookie or len(cookie) > 512:
        return None
    signature = cookie.rpartition(".")[2]
    return signature[:32] if len(signature) == 64 else None


def session_expiry(cookie: str | None) -> float | None:
    """Return when a session cookie expires (not checked: use :func:`principal_for_session` first)."""
    if not cookie or "." not in cookie:
        return None
    encoded = cookie.rpartition(".")[0]
    try:
        expires = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode().split("|")[2]
    except (ValueError, UnicodeDecodeError, IndexError):
        return None
    return float(expires) if expires.isdigit() else None


def dashboard_principal(request: HTTPConnection, settings: Settings) -> Principal | None:
    """Return who is asking on a dashboard route: a bearer token, else the session cookie."""
    return principal_for_token(bearer_token(request), settings) or principal_for_session(
        request.cookies.get(SESSION_COOKIE), settings)


async def get_principal(request: HTTPConnection, services: ServicesDep) -> Principal:
    """Return the principal for the request's bearer token; 401 without one (the API takes no cookie).

    Wrong tokens count against the client's address like failed dashboard sign-ins: past the
    limit its tokens are not even checked for the rest of the minute (429).
    """
    token = bearer_token(request)
    challenge = {"WWW-Authenticate": "Bearer"}
    if token is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing bearer token", headers=challenge)
    client = request.client.host if request.client else "?"
    if await services.login_guard.blocked(client):
        raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, "too many wrong tokens from this address; "
                            "wait a minute", headers={"Retry-After": "60"})
    principal = principal_for_token(token, services.settings)
    if principal is None:
        services.metrics.login_failures.inc()
        await services.login_guard.failed(client)
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "invalid bearer token", headers=challenge)
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def require_supervisor(principal: PrincipalDep) -> Principal:
    """Return the principal if a supervisor; 403 otherwise."""
    if principal.role != "supervisor":
        raise HTTPException(status.HTTP_403_FORBIDDEN, "supervisor role required")
    return principal


SupervisorDep = Annotated[Principal, Depends(require_supervisor)]
