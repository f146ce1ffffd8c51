"""Strict JSON request bodies, read and parsed before anything else looks at them.

- ``Content-Type: application/json`` (parameters such as ``charset=utf-8`` allowed), else 415;
- the body at most ``limit`` bytes, counted while reading, whatever ``Content-Length`` says,
  else 413;
- ``Content-Length``, when present, a decimal count of at most 18 digits, else 400;
- strict JSON: UTF-8, nesting at most ``max_depth``, no NaN/Infinity literals, no duplicate
  keys, numbers with a fraction as ``Decimal``, else 400.

Every check is linear in the body: a hostile megabyte costs what any megabyte costs.
"""

from __future__ import annotations

import json
from decimal import Decimal

from starlette.requests import Request

from services.intake.errors import Problem


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused (415) unless JSON and (413) as soon as it exceeds ``limit`` bytes."""
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type != "application/json":
        raise Problem(415, "send the body as application/json", kind="media-type")
    too_large = Problem(413, f"the body exceeds {limit} bytes", kind="too-large")
    declared = request.headers.get("content-length", "")
    if declared and not (declared.isascii() and declared.isdigit() and len(declared) <= 18):
        raise Problem(400, "Content-Length must be a decimal byte count", kind="bad-length")
    if declared and int(declared) > limit:
        raise too_large
    body = bytearray()
    async for chunk in request.stream():  # the declared length may lie or be absent
        body += chunk
        if len(body) > limit:
            raise too_large
    return bytes(body)


def parse(body: bytes, max_depth: int) -> object:
    """Strict JSON (UTF-8, no NaN/Infinity, no duplicate keys, bounded depth) or a 400.

    Every step is linear in the body: the C decoder parses (it refuses pathological nesting
    with RecursionError), then one iterative walk measures the depth before anything else
    looks at the value.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Problem(
            400, f"the body is not UTF-8 (byte {exc.start})", kind="invalid-json"
        ) from None
    too_deep = Problem(400, f"JSON nests deeper than {max_depth} levels", kind="invalid-json")
    try:
        value = json.loads(
            text, parse_float=Decimal, parse_constant=_no_constant, object_pairs_hook=_unique_keys
        )
    except RecursionError:
        raise too_deep from None
    except ValueError as exc:
        raise Problem(400, f"the body is not valid JSON: {exc}", kind="invalid-json") from None
    if too_deep_for(value, max_depth):
        raise too_deep
    return value


def too_deep_for(value: object, limit: int) -> bool:
    """Whether parsed JSON nests deeper than ``limit``: one pass, no recursion, linear."""
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict | list):
            if depth > limit:
                return True
            children = node.values() if isinstance(node, dict) else node
            stack.extend((child, depth + 1) for child in children)
    return False


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def _unique_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("an object has a duplicate key")
    return result
