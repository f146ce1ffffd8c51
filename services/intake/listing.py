"""A trader's list of declarations (``GET /v1/declarations``): one row per read-model
document, newest first, in pages.

A row is what a list shows: the id, the status, the version, when it was lodged (the
version shown's ``submitted_at``) and last moved (``updated_at``: the latest time any of its
events carries), the declaration's type and the code of the next step (the trader's view's,
``traderview.next_step``; null for a declaration lodged before versions). The cursor of the
next page is opaque to the client: the position of the page's last row (``ports.Page``),
base64url-encoded JSON.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable
from typing import Any

from services.intake.ports import Page, page_of
from services.intake.traderview import trader_view

Doc = dict[str, Any]
MAX_CURSOR = 200  # characters: a cursor is two short strings


class BadCursor(ValueError):
    """The ``after`` parameter is not a cursor this listing gave."""


def cursor_of(page: Page) -> str:
    raw = json.dumps([page.submitted_at, page.declaration_id], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def page_from(cursor: str) -> Page:
    """The position a cursor names; BadCursor if it is none."""
    try:
        if len(cursor) > MAX_CURSOR:
            raise ValueError("too long")
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        submitted_at, declaration_id = json.loads(raw)
        if not (isinstance(submitted_at, str) and isinstance(declaration_id, str)):
            raise ValueError("not two strings")
    except (ValueError, TypeError, binascii.Error) as exc:
        raise BadCursor("not a cursor of this listing: use the 'next' of a page") from exc
    return Page(submitted_at, declaration_id)


def _times(doc: Doc) -> Iterable[str]:
    declared = doc.get("declaration") or {}
    yield declared.get("submitted_at") or ""
    for verdict in (doc.get("verdicts") or {}).values():
        yield verdict.get("decided_at") or ""
    for step in doc.get("steps") or ([doc["result"]] if doc.get("result") else []):
        yield step.get("decided_at") or ""
    yield (doc.get("withdrawal") or {}).get("withdrawn_at") or ""
    for name, time in (("payments", "paid_at"), ("findings", "recorded_at")):
        for fact in doc.get(name) or ():
            yield fact.get(time) or ""
    for gate_out in doc.get("gate_outs") or ():
        yield gate_out.get("passed_at") or ""


def row(doc: Doc) -> Doc:
    """The list's row of a read-model document (one the caller may read)."""
    declared = doc.get("declaration") or {}
    view = trader_view(doc)
    step = view.get("next_step")
    return {
        "declaration_id": doc["_id"],
        "status": doc.get("status"),
        "version": doc.get("version"),
        "submitted_at": declared.get("submitted_at"),
        "updated_at": max(_times(doc)) or None,  # ISO 8601 UTC strings: in time order
        "declaration_type": declared.get("declaration_type"),
        "next_step": {"code": step["code"]} if step else None,
    }


def listing(docs: list[Doc], limit: int) -> Doc:
    """The body of a page: ``docs`` holds up to ``limit + 1`` documents (one more than
    shown says that there is a next page)."""
    shown = docs[:limit]
    more = len(docs) > limit and shown
    return {
        "declarations": [row(d) for d in shown],
        "next": cursor_of(page_of(shown[-1])) if more else None,
    }
