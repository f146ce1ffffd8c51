"""The dependencies every route of the intake's API shares: the service, and the verified
caller of a protected route (``Authorization: Bearer <JWT>``, within its rate)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from services.intake.auth import Principal
from services.intake.service import IntakeService

_BEARER = HTTPBearer(
    auto_error=False,  # no token: the service refuses it, with a problem document
    bearerFormat="JWT",
    description="a JWT from the configured issuer naming `sub` and the `usccs` it acts for",
)
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)]


def _service(request: Request) -> IntakeService:
    service: IntakeService = request.app.state.intake
    return service


Service = Annotated[IntakeService, Depends(_service)]


async def caller(service: Service, credentials: Credentials) -> Principal:
    """The dependency of every protected route: the verified principal, within its rate."""
    return await service.authenticate(None if credentials is None else credentials.credentials)


Caller = Annotated[Principal, Depends(caller)]
