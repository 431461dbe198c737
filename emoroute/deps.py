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


def _token_from(request: HTTPConnection) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token:
        return token.strip()
    return request.cookies.get("emoroute_token") or request.query_params.get("token")


def get_principal(request: HTTPConnection, settings: SettingsDep) -> Principal:
    """Return the principal for the request's bearer token; 401 without a valid one."""
    token = _token_from(request)
    if token:
        if hmac.compare_digest(token, settings.api_token):
            return Principal("supervisor")
        for agent_id, agent_token in settings.agent_token_map().items():
            if hmac.compare_digest(token, agent_token):
                return Principal("agent", agent_id)
    raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing or invalid bearer token",
                        headers={"WWW-Authenticate": "Bearer"})


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def require_supervisor(principal: PrincipalDep) -> Principal:
    """Return the principal if a supervisor; 403 otherwise."""
    if principal.role != "supervisor":
        raise HTTPException(status.HTTP_403_FORBIDDEN, "supervisor role required")
    return principal


SupervisorDep = Annotated[Principal, Depends(require_supervisor)]
