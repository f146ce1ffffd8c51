"""Rebuild the read model from the log into a shadow collection and diff it with the live one.

The shadow collection is dropped first, so its name must say it is one: ``shadow_`` and then
letters, digits and ``_`` (:func:`shadow_name_problem`). The live collections (the read
model, the intake's idempotency keys) never qualify, nor does any other name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from services.audit.log import LoggedEvent
from singlewindow.db import mongo_client
from singlewindow.readmodel import COLLECTION, Doc, apply, content_of
from singlewindow.settings import Settings

SHADOW_PREFIX = "shadow_"
LIVE_COLLECTIONS = frozenset({COLLECTION, "idempotency_keys"})
_SHADOW = re.compile(re.escape(SHADOW_PREFIX) + r"[A-Za-z0-9_]{1,64}")


class NotAShadow(ValueError):
    """The collection asked for is not a shadow collection: rebuilding would destroy it."""


def shadow_name_problem(name: str) -> str | None:
    """Why ``name`` may not be dropped and rebuilt (None: it is a shadow collection name)."""
    if name in LIVE_COLLECTIONS:
        return f"{name!r} is a live collection of the platform; it is never rebuilt in place"
    if not _SHADOW.fullmatch(name):
        return (
            f"{name!r} is not a shadow collection name: it must be {SHADOW_PREFIX!r} followed "
            "by 1-64 letters, digits or '_' (e.g. shadow_20261127)"
        )
    return None


@dataclass
class Diff:
    rebuilt: int = 0
    differences: list[str] = field(default_factory=list)


def fold(events: list[LoggedEvent]) -> dict[str, Doc]:
    """The documents the projector builds from these events (pure)."""
    docs: dict[str, Doc] = {}
    for item in events:
        if item.event is not None:
            key = item.event.declaration_id
            docs[key] = apply(docs.get(key), item.event)
    return docs


async def rebuild(settings: Settings, events: list[LoggedEvent], into: str) -> Diff:
    """Drop the shadow collection ``into``, fold ``events`` into it, diff it with the live one.

    Raises :class:`NotAShadow`, touching nothing, when ``into`` is no shadow collection name.
    """
    problem = shadow_name_problem(into)
    if problem is not None:
        raise NotAShadow(problem)
    docs = fold(events)
    client = mongo_client(settings, timeout_ms=30_000)
    database = client[settings.mongodb_database]
    try:
        await database.drop_collection(into)
        for key, doc in docs.items():  # FerretDB v1's bulk replies are incomplete
            await database[into].replace_one({"_id": key}, doc, upsert=True)
        live = {d["_id"]: d async for d in database[COLLECTION].find({})}
        shadow = {d["_id"]: d async for d in database[into].find({})}
    finally:
        await client.close()
    diff = Diff(rebuilt=len(shadow))
    for key in sorted(set(live) | set(shadow)):
        if key not in live:
            diff.differences.append(f"{key}: missing from the live read model")
        elif key not in shadow:
            diff.differences.append(f"{key}: in the live read model but not in the log")
        elif content_of(live[key]) != content_of(shadow[key]):
            # the revision counts changes in the order they were read: not compared
            fields = sorted(
                k
                for k in live[key].keys() | shadow[key].keys()
                if k != "revision" and live[key].get(k) != shadow[key].get(k)
            )
            diff.differences.append(f"{key}: differs in {', '.join(fields)}")
    return diff
