"""FastAPI dependency aliases: settings, services and the caller's role."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import Depends, HTTPException, status
from starlette.requests import HTTPConnection

from emoroute.app import Services
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


def token_from(request: HTTPConnection) -> str | None:
    """Return the bearer token, else the dashboard cookie, else a ?token= query parameter."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token:
        return token.strip()
    return request.cookies.get("emoroute_token") or request.query_params.get("token")


def principal_for_token(token: str | None, settings: Settings) -> Principal | None:
    """Return the principal a bearer token stands for, or None."""
    if not token:
        return None
    if hmac.compare_digest(token, settings.api_token):
        return Principal("supervisor")
    for agent_id, agent_token in settings.agent_token_map().items():
        if hmac.compare_digest(token, agent_token):
            return Principal("agent", agent_id)
    return None


def get_principal(request: HTTPConnection, settings: SettingsDep) -> Principal:
    """Return the principal for the request's bearer token (or dashboard cookie); 401 without one."""
    principal = principal_for_token(token_from(request), settings)
    if principal is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing or invalid bearer token",
                            headers={"WWW-Authenticate": "Bearer"})
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def require_supervisor(principal: PrincipalDep) -> Principal:
    """Return the principal if a supervisor; 403 otherwise."""
    if principal.role != "supervisor":
        raise HTTPException(status.HTTP_403_FORBIDDEN, "supervisor role required")
    return principal


SupervisorDep = Annotated[Principal, Depends(require_supervisor)]
