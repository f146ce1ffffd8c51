"""Problem details (RFC 9457, ``application/problem+json``) for every error of the intake.

A problem carries ``type``, ``title``, ``status``, ``detail`` and, for input errors,
``errors: [{"field": "items[0].hs_code", "message": ...}]`` naming every bad field.
FastAPI's and Starlette's own errors (404, 405, 422 on query parameters, 500) are
rendered the same way.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM_JSON = "application/problem+json"
MAX_LISTED_ERRORS = 50  # a body with 100,000 bad keys gets a short answer, not megabytes
PROBLEM_TYPE = "urn:singlewindow:problem:"  # + kind, e.g. urn:singlewindow:problem:invalid-json
_SOURCES = frozenset({"body", "query", "path", "header", "cookie"})
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str


class Problem(Exception):
    """Raise to answer with a problem document."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        kind: str | None = None,
        errors: Sequence[FieldError] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        unlisted = len(errors) - MAX_LISTED_ERRORS
        if unlisted > 0:
            detail = f"{detail} ({unlisted} more errors not listed)"
        self.status = status
        self.detail = detail
        self.type = PROBLEM_TYPE + kind if kind else "about:blank"
        self.errors = list(errors[:MAX_LISTED_ERRORS])
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": self.type,
            "title": HTTPStatus(self.status).phrase,
            "status": self.status,
            "detail": self.detail,
        }
        if self.errors:
            body["errors"] = [{"field": e.field, "message": e.message} for e in self.errors]
        return body


class ProblemResponse(JSONResponse):
    media_type = PROBLEM_JSON

    def render(self, content: Any) -> bytes:
        # ASCII-escaped: echoed input (field names) may hold lone surrogates.
        return json.dumps(content, ensure_ascii=True, separators=(",", ":")).encode()


def respond(problem: Problem) -> ProblemResponse:
    return ProblemResponse(problem.body(), status_code=problem.status, headers=problem.headers)


def field_path(loc: Sequence[str | int]) -> str:
    """``("items", 0, "hs_code")`` -> ``"items[0].hs_code"``; the whole body is ``"body"``."""
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "body"


def field_errors(errors: Iterable[Mapping[str, Any]]) -> list[FieldError]:
    """Pydantic error dicts as field errors (without the ``Value error, `` noise)."""
    out = []
    for error in errors:
        loc = tuple(error["loc"])
        if loc and loc[0] in _SOURCES and len(loc) > 1:
            loc = loc[1:]
        out.append(FieldError(field_path(loc), str(error["msg"]).removeprefix("Value error, ")))
    return out


async def _on_problem(_: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, Problem)
    return respond(exc)


async def _on_http(_: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    return respond(Problem(exc.status_code, detail, headers=exc.headers))


async def _on_request_validation(_: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, RequestValidationError)
    errors = field_errors(exc.errors())
    return respond(Problem(422, "the request is invalid", kind="invalid-request", errors=errors))


async def _on_crash(_: Request, exc: Exception) -> ProblemResponse:
    # Starlette re-raises the exception after this response, for the server to log it.
    return respond(Problem(500, "an unexpected error occurred"))


def install(app: FastAPI) -> None:
    """Render every error of ``app`` as a problem document."""
    app.add_exception_handler(Problem, _on_problem)
    app.add_exception_handler(StarletteHTTPException, _on_http)
    app.add_exception_handler(RequestValidationError, _on_request_validation)
    app.add_exception_handler(Exception, _on_crash)


class FieldErrorDocument(BaseModel):
    field: str
    message: str


class ProblemDocument(BaseModel):
    """An RFC 9457 problem document, as served with ``application/problem+json``."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[FieldErrorDocument] | None = None


_REF = "#/components/schemas/{model}"


def documented(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries: these statuses answer with a problem document."""
    schema = {"$ref": _REF.format(model="ProblemDocument")}
    return {
        status: {
            "description": HTTPStatus(status).phrase,
            "content": {PROBLEM_JSON: {"schema": schema}},
        }
        for status in statuses
    }


def json_body(model: type[BaseModel]) -> dict[str, Any]:
    """OpenAPI ``requestBody`` of a route that reads and validates its JSON body itself."""
    schema = {"$ref": _REF.format(model=model.__name__)}
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def document_schemas(app: FastAPI, *models: type[BaseModel]) -> None:
    """Add ProblemDocument and ``models`` (with their sub-schemas) to the app's OpenAPI."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        document = generate()  # FastAPI caches it: the additions below happen once
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        documented_models: tuple[type[BaseModel], ...] = (ProblemDocument, *models)
        for model in documented_models:
            if model.__name__ not in schemas:
                schema = model.model_json_schema(ref_template=_REF)
                schemas.update(schema.pop("$defs", {}))
                schemas[model.__name__] = schema
        return document

    app.openapi = openapi  # type: ignore[method-assign]
