"""The join states of one task, indexed by when each next needs the clock (pure, no I/O).

A min-heap of ``(due, declaration id)`` makes a clock tick cost O(expired + log n): the tick
looks at the heap's head and pops only what is due, never the states that wait (the
undecided before their deadline, the decided within their retention). Entries are removed
lazily: one is live while its declaration's state still has that due time; a superseded
one is skipped when it surfaces. A state's due time changes only at a few milestones of its
life (orphan; declared, or amended; escalated or answered; its inspection order given, then
escalated or completed; decided), each pushing one entry at most, so the heap stays within a
small multiple of the number of states and of the versions they declared.

It counts, as it goes, the states not final (``open``) and those with a deadline pending
(``pending``): the aggregator's gauges read them at a scrape, never by walking the states.

The table changes only through ``apply``, after the transaction that wrote the changes
committed; ``expired`` only pops heap entries, and a task whose transaction failed is
discarded and restored from the changelog, heap and all.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta

from services.aggregator import join
from singlewindow.events import ClearanceResult, JoinState

# states settled per tick at most: keeps one transaction small after a long outage
TICK_LIMIT = 5_000

Changes = dict[str, JoinState | None]  # None: drop the state (a changelog tombstone)


class JoinTable:
    """Join states by declaration id, with the index of their due times."""

    def __init__(self, retention: timedelta, states: Iterable[JoinState] = ()) -> None:
        self.retention = retention
        self.states: dict[str, JoinState] = {s.declaration_id: s for s in states}
        self._heap = [(self._due(s), key) for key, s in self.states.items()]
        heapq.heapify(self._heap)  # O(n): restoring does not sort
        self.examined = 0  # heap entries popped so far: what a tick costs, for tests
        self.open = self.pending = 0
        for state in self.states.values():
            self._count(state, 1)

    def __len__(self) -> int:
        return len(self.states)

    def get(self, key: str) -> JoinState | None:
        return self.states.get(key)

    def _due(self, state: JoinState) -> datetime:
        return join.due(state, self.retention)

    def apply(self, changes: Mapping[str, JoinState | None]) -> None:
        """Take committed changes: new states are indexed, dropped ones forgotten."""
        for key, state in changes.items():
            before = self.states.pop(key, None)
            if before is not None:
                self._count(before, -1)
            if state is None:
                continue
            self.states[key] = state
            self._count(state, 1)
            when = self._due(state)
            if before is None or self._due(before) != when:
                heapq.heappush(self._heap, (when, key))

    def _count(self, state: JoinState, sign: int) -> None:
        if state.decided is None:
            self.open += sign
            if state.deadline is not None:
                self.pending += sign

    def expired(
        self, now: datetime, limit: int = TICK_LIMIT
    ) -> tuple[Changes, list[ClearanceResult]]:
        """What the clock does at ``now`` to the states due by then (at most ``limit``): the
        changes to commit (then ``apply``) and the results. Pops only due heap entries."""
        changes: Changes = {}
        results: list[ClearanceResult] = []
        while self._heap and self._heap[0][0] <= now and len(changes) < limit:
            when, key = heapq.heappop(self._heap)
            self.examined += 1
            state = self.states.get(key)
            if state is None or key in changes or self._due(state) != when:
                continue  # superseded by a later change, or dropped
            changes[key], out = join.tick(state, now, self.retention)
            results += out
        return changes, results

    def next_due(self) -> datetime | None:
        """The earliest due time in the index (possibly of a superseded entry)."""
        return self._heap[0][0] if self._heap else None
