"""The trader's window: the web page the intake serves, and the routes it needs beside the
declaration API of ``api``.

- ``GET /v1/declarations?status=&limit=&after=``: the caller's declarations (those of the
  declarants it acts for), newest first, in pages (``listing``); 422 on a bad parameter.
- ``GET /v1/declarations/{id}/events``: the status stream (Server-Sent Events, ``streams``),
  resumable with ``Last-Event-ID``; authorized as ``GET /v1/declarations/{id}`` is (404 for
  another trader's declaration, the same body as an unknown id's).
- ``POST /v1/declarations/validate``: a dry run of ``POST /v1/declarations``: the same
  checks (the body's, and 403 for a declarant the token does not act for), the same 422
  problem document, nothing lodged; 200 with the agencies the declaration would go to. The
  page validates as the trader types with it: one set of rules, the API's.
- ``GET /v1/reference``: the code lists the validators check against (countries, invoice
  currencies, units, package kinds, Incoterms, trade modes, natures of levy, customs
  offices...), for the page's pickers; ``GET /v1/reference/hs?q=``: the lines of the customs
  tariff in force whose code starts with ``q`` (digits) or whose description contains it,
  with their statutory units.
- ``GET /`` (to ``/app/``) and ``/app/...``: the page itself (``services/intake/web``: plain
  HTML, one JavaScript module, CSS, one JSON of strings per language; nothing from a CDN),
  with a strict Content-Security-Policy (no inline script or style, nothing from elsewhere),
  ``/app/config.json`` says whether the development sign-in is offered.
- ``POST /v1/dev/token`` (``{"uscc": "<uscc>[,<uscc>...]"}``): only with a development
  issuer (``Exposure.dev_issuer``, ``INTAKE_DEV_SIGNIN``, which local runs set): a token of
  that issuer (``devissuer.mint``) for a local trader; never in production, where the page
  asks for a token of the real issuer instead.

Every ``/v1`` route but the development sign-in needs the bearer token, as the rest of the
API does; the page keeps it in ``sessionStorage`` and sends it in the ``Authorization``
header, never in a URL.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Header, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.intake import errors, strictjson
from services.intake.deps import Caller, Service
from services.intake.devissuer import mint
from services.intake.errors import Problem
from services.intake.routing import route
from services.intake.schema import DeclarationRequest, DeclarationState, parse_declaration
from services.intake.service import NotYourDeclarant
from services.intake.streams import Stream
from singlewindow import events as ev
from singlewindow import identifiers

WEB = Path(__file__).with_name("web")
# nothing inline, nothing from elsewhere: the page's own files and its own API only
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; manifest-src 'self'; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-cache",
}
MAX_HS_LINES = 50

DeclarationId = Annotated[str, PathParam(min_length=1, max_length=64)]
LastEventId = Annotated[
    int | None,
    Header(alias="Last-Event-ID", ge=0, le=2**53, description="the id of the last event read"),
]


class EventStream(StreamingResponse):
    """A ``text/event-stream`` response of a :class:`~streams.Stream`, which gives its place
    back however the response ends (read to its end, the client gone, the server stopping)."""

    def __init__(self, stream: Stream) -> None:
        super().__init__(
            stream,
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )
        self.stream = stream

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.stream.close()


class PageHeaders:
    """ASGI middleware: the page's security headers on every answer of ``app``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.headers = [(k.lower().encode(), v.encode()) for k, v in PAGE_HEADERS.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *self.headers]}
            await send(message)

        await self.app(scope, receive, with_headers)


@cache
def code_lists() -> dict[str, Any]:
    """What the page's pickers offer: the lists the validators check against."""

    def rows(filename: str, *names: str) -> list[dict[str, str]]:
        return [{n: row[n] for n in names} for row in identifiers.code_table(filename)]

    accepted = identifiers.accepted_currencies()
    currencies = rows("iso4217_currencies.csv", "alpha_3", "name")
    return {
        "declaration_types": list(ev.DeclarationType),
        "transport_modes": list(ev.TransportMode),
        "document_types": list(ev.DocumentType),
        "countries": rows("iso3166_countries.csv", "alpha_2", "name"),
        "currencies": [c for c in currencies if c["alpha_3"] in accepted],
        "units": rows("rec20_units.csv", "code", "name", "name_zh"),
        "package_kinds": rows("package_kinds.csv", "code", "name", "bulk"),
        "incoterms": rows("incoterms.csv", "code", "name", "includes"),
        "trade_modes": rows("trade_modes.csv", "code", "name_zh", "name_en", "record_required"),
        "levy_natures": rows("levy_natures.csv", "code", "name_zh", "name_en"),
        "customs_offices": rows("customs_offices.csv", "code", "name_zh", "name_en"),
    }


def tariff_lines(query: str, limit: int) -> list[dict[str, Any]]:
    """The lines of the customs tariff in force matching ``query``: by code prefix (digits),
    else by words of the description (every one, case-insensitive)."""
    from services.customs.reference import reference_on  # the customs tariff, read once

    tariff = reference_on(datetime.now(UTC)).tariff
    query = query.strip()
    if query.isdigit():
        found = (line for code, line in tariff.items() if code.startswith(query))
    else:
        words = query.casefold().split()
        found = (
            line
            for line in tariff.values()
            if all(word in line.description.casefold() for word in words)
        )
    lines = []
    for line in found:
        lines.append(
            {
                "hs_code": line.hs_code,
                "description": line.description,
                "unit": line.unit1,
                "second_unit": line.unit2,
                "licence": line.licence,
            }
        )
        if len(lines) == limit:
            break
    return lines


def add_window(app: FastAPI, dev_issuer: Path | None = None) -> None:
    """The page and its routes on the intake's ``app`` (see the module's text); the
    development sign-in only with ``dev_issuer`` (a development issuer's directory)."""
    router = APIRouter()
    problems = errors.documented(401, 403, 404, 422, 429, 503)

    @router.get("/v1/declarations", responses=problems)
    async def declarations(
        service: Service,
        principal: Caller,
        status: Annotated[DeclarationState | None, Query(description="only these")] = None,
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
        after: Annotated[str | None, Query(max_length=200, description="a page's next")] = None,
    ) -> dict[str, Any]:
        """The caller's declarations (of the declarants it acts for), newest first:
        ``{"declarations": [...], "next": <cursor of the next page, or null>}``."""
        return await service.declarations(principal, status and str(status), limit, after)

    @router.get(
        "/v1/declarations/{declaration_id}/events",
        response_class=StreamingResponse,
        responses={200: {"content": {"text/event-stream": {}}}, **problems},
    )
    async def events(
        declaration_id: DeclarationId,
        service: Service,
        principal: Caller,
        last_event_id: LastEventId = None,
    ) -> Response:
        """The declaration's status as Server-Sent Events: one ``status`` event (``id``:
        the revision, ``data``: the body of ``GET /v1/declarations/{id}``) per change of
        the trader's view, the current one first (unless ``Last-Event-ID`` has it)."""
        return EventStream(await service.follow(principal, declaration_id, last_event_id))

    @router.post(
        "/v1/declarations/validate",
        responses=errors.documented(400, 401, 403, 413, 415, 422, 429),
        openapi_extra={"requestBody": errors.json_body(DeclarationRequest)},
    )
    async def validate(request: Request, service: Service, principal: Caller) -> dict[str, Any]:
        """Check a declaration as ``POST /v1/declarations`` would, lodging nothing: the same
        422 (every bad field named) or 403; else the agencies it would go to."""
        limits = service.limits
        body = await strictjson.read_body(request, limits.max_body_bytes)
        declaration = parse_declaration(strictjson.parse(body, limits.max_json_depth))
        if not principal.acts_for(declaration.declarant.uscc):
            raise NotYourDeclarant(declaration.declarant.uscc)
        agencies, table = route(declaration, service.table)
        return {"valid": True, "agencies": list(agencies), "routing_version": table}

    @router.get("/v1/reference", responses=errors.documented(401, 429))
    async def reference(_: Caller) -> Response:
        """The code lists a declaration's fields are checked against."""
        return JSONResponse(code_lists(), headers={"Cache-Control": "private, max-age=3600"})

    @router.get("/v1/reference/hs", responses=errors.documented(401, 422, 429))
    async def hs_codes(
        _: Caller,
        q: Annotated[str, Query(min_length=2, max_length=60, description="code or words")],
        limit: Annotated[int, Query(ge=1, le=MAX_HS_LINES)] = 20,
    ) -> dict[str, Any]:
        """Lines of the customs tariff in force, with their descriptions and units."""
        return {"lines": tariff_lines(q, limit)}

    @router.get("/", include_in_schema=False)
    async def home() -> Response:
        return RedirectResponse("/app/", status_code=302)

    config = json.dumps({"dev_signin": dev_issuer is not None}).encode()

    @router.get("/app/config.json", include_in_schema=False)
    async def page_config() -> Response:
        return Response(config, media_type="application/json", headers=PAGE_HEADERS)

    if dev_issuer is not None:
        issuer = dev_issuer

        @router.post("/v1/dev/token", include_in_schema=False)
        async def dev_token(request: Request) -> dict[str, Any]:
            """A development issuer's token for the USCCs asked (local runs only)."""
            data = strictjson.parse(await strictjson.read_body(request, 4096), 4)
            asked = data.get("uscc") if isinstance(data, dict) else None
            usccs = [u.strip() for u in str(asked or "").split(",") if u.strip()]
            if not usccs:
                raise Problem(422, "give the USCC to sign in for", kind="invalid-sign-in")
            try:
                token = mint(f"local-trader-{usccs[0]}", usccs, directory=issuer)
            except ValueError as exc:
                raise Problem(422, str(exc), kind="invalid-sign-in") from None
            return {"token": token, "usccs": usccs}

    app.include_router(router)
    app.mount("/app", PageHeaders(StaticFiles(directory=WEB, html=True)), name="window")
