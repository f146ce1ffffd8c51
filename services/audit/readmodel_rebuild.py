"""Rebuild the read model from the log into a shadow collection and diff it with the live one."""

from __future__ import annotations

from dataclasses import dataclass, field

from services.audit.log import LoggedEvent
from singlewindow.db import mongo_client
from singlewindow.readmodel import COLLECTION, Doc, apply
from singlewindow.settings import Settings


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
    if into == COLLECTION:
        raise ValueError("the shadow collection must not be the live one")
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
        elif live[key] != shadow[key]:
            fields = sorted(
                k
                for k in live[key].keys() | shadow[key].keys()
                if live[key].get(k) != shadow[key].get(k)
            )
            diff.differences.append(f"{key}: differs in {', '.join(fields)}")
    return diff
