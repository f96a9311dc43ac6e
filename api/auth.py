"""Authentication (``Authorization: Bearer <API key>``) and role checks, as dependencies."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from authenticator.errors import AuthenticationError, PermissionDenied
from authenticator.services.context import ServiceContext
from authenticator.store.keys import Principal, Role, authenticate

bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer key_….…`")


def get_ctx(request: Request) -> ServiceContext:
    ctx: ServiceContext = request.app.state.ctx
    return ctx


Ctx = Annotated[ServiceContext, Depends(get_ctx)]


def current_principal(
    ctx: Ctx, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> Principal:
    if credentials is None:
        raise AuthenticationError("send an API key as Authorization: Bearer <key>")
    return authenticate(ctx.engine, credentials.credentials)


def presented_key(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> str:
    """The API key the caller presented, for registrations to seal their answer with (see
    ``authenticator.services.registrations``); use it beside a role dependency, which checks it."""
    if credentials is None:
        raise AuthenticationError("send an API key as Authorization: Bearer <key>")
    return credentials.credentials


PresentedKey = Annotated[str, Depends(presented_key)]


def require(*roles: Role) -> Callable[[Principal], Principal]:
    """A dependency admitting only the given roles (403 for the others)."""

    def check(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if principal.role not in roles:
            raise PermissionDenied(f"this needs the {' or '.join(roles)} role; this key is {principal.role}")
        return principal

    return check


Admin = Annotated[Principal, Depends(require("admin"))]
Platform = Annotated[Principal, Depends(require("platform"))]
LabRole = Annotated[Principal, Depends(require("lab"))]
AnyRole = Annotated[Principal, Depends(current_principal)]
