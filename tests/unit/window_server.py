"""The in-memory intake of ``tests.unit.test_intake_api`` served over real HTTP (uvicorn on
a free loopback port), for what needs a real connection: a stream read as it comes, a
browser."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import uvicorn

from services.intake.api import Exposure, Limits
from services.intake.server import Server
from singlewindow.events import DeclarationSubmitted, Event
from singlewindow.readmodel import apply
from tests import factories
from tests.unit.test_intake_api import FAST, Intake, running


@dataclass
class Served:
    url: str  # http://127.0.0.1:<port>
    intake: Intake

    def project(self, *events: Event) -> dict[str, Any]:
        """Fold events into the read model, as the projector would; the last document."""
        documents = self.intake.read_model.documents
        doc: dict[str, Any] = {}
        for event in events:
            doc = apply(documents.get(event.declaration_id), event)
            self.intake.read_model.put(doc)
        return doc


@asynccontextmanager
async def serving(
    limits: Limits = FAST, dev_issuer: Path | None = None, **options: Any
) -> AsyncIterator[Served]:
    """The in-memory intake (``running``) on ``http://127.0.0.1:<a free port>``; stopped as
    the real process stops: the streams ended, then the server's graceful shutdown."""
    exposure = Exposure(dev_issuer=dev_issuer)
    async with running(limits, exposure=exposure, **options) as intake:
        config = uvicorn.Config(
            intake.app, host="127.0.0.1", port=0, lifespan="off", log_level="warning"
        )
        server = Server(config)
        serve = asyncio.create_task(server.serve())
        while not server.started:
            if serve.done():
                serve.result()  # raises what stopped it
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        try:
            yield Served(f"http://127.0.0.1:{port}", intake)
        finally:
            intake.app.state.intake.closing()
            server.should_exit = True
            await serve


def released(served: Served, declaration_id: str) -> dict[str, Any]:
    """The customs verdict and the join's release of a lodged declaration, projected."""
    from services.aggregator.join import fold as join_fold

    declared = [
        e
        for e in served.intake.publisher.events
        if e.declaration_id == declaration_id and isinstance(e, DeclarationSubmitted)
    ]
    current = declared[-1]
    verdicts = [
        factories.verdict(
            declaration_id,
            agency,
            declaration_version=current.version,
            verdict_id=f"V-{agency}-{current.version}",
            decided_at=current.submitted_at + timedelta(seconds=1),
        )
        for agency in current.required_agencies
    ]
    _, results = join_fold([*declared, *verdicts], timedelta(minutes=2))
    return served.project(*verdicts, *results)
