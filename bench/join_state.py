"""Benchmark: the aggregator's join state against the length of its history (not a test).

Pure, no broker. Two measurements:

1. **Tick cost** with N decided states in memory (N = 1k, 10k, 100k) and 100 undecided ones
   due: the indexed tick (``JoinTable.expired``) against the full scan the aggregator did
   before (every state, every second).
2. **Restore** after a history of D days at a steady rate, retention 7 days: the changelog
   is simulated as Kafka compacts it (latest record per key; a tombstone stays one day,
   ``delete.retention.ms``), then restored as ``Task.open`` does (decode every record, build
   the table). Without retention every decided state stays in the changelog for ever.

``python -m bench.join_state [scale]`` (scale multiplies the sizes; default 1).
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from functools import cache, partial

from aiokafka import ConsumerRecord

from services.aggregator import join
from services.aggregator.table import JoinTable
from services.aggregator.tasks import restore
from singlewindow.avro.registry import default_registry
from singlewindow.events import ClearanceStatus, JoinState
from singlewindow.topics import JOIN_STATE
from tests import factories

RETENTION = timedelta(days=7)
DEADLINE = timedelta(seconds=120)
DAY = timedelta(days=1)
TOMBSTONE_KEPT = DAY  # the broker's delete.retention.ms
NOW = factories.T0


def _cache_fingerprints() -> None:
    """``SchemaRegistry.fingerprint`` recomputes the canonical form and CRC-64 on every
    encode (most of ``to_avro``'s time); cached here so that building the simulated changelog
    does not dominate the run. Restore, the thing measured, only decodes."""
    registry = default_registry()
    registry.fingerprint = cache(registry.fingerprint)  # type: ignore[method-assign]


def decided(key: str, at: datetime) -> JoinState:
    """A state decided at ``at`` (one agency asked, cleared), built without the join's cost."""
    verdict = factories.verdict(key, "customs").model_copy(update={"decided_at": at})
    return factories.join_state(key).model_copy(
        update={
            "declaration_id": key,
            "required_agencies": ("customs",),
            "submitted_at": at,
            "deadline": at + DEADLINE,
            "verdicts": (verdict,),
            "decided": ClearanceStatus.RELEASED,
        }
    )


def waiting(key: str, deadline: datetime) -> JoinState:
    """An undecided state whose deadline is ``deadline``."""
    return factories.join_state(key).model_copy(
        update={"declaration_id": key, "deadline": deadline, "submitted_at": deadline - DEADLINE}
    )


def seconds(work: Callable[[], object]) -> float:
    """The wall time of one call of ``work``."""
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def full_scan(states: dict[str, JoinState], now: datetime) -> int:
    """The tick as it was: look at every state, time out the undecided ones past due."""
    expired = 0
    for state in states.values():
        if state.decided is None and state.deadline is not None and state.deadline <= now:
            join.expire(state, now)
            expired += 1
    return expired


def tick_cost(n: int, due: int, repeat: int = 5) -> tuple[float, int, float, float, float]:
    """Median seconds of a tick settling ``due`` states among ``n`` kept ones, the heap
    entries it examined, an idle tick's seconds; the old full scan's, busy and idle."""
    template = decided("D-T", NOW - DAY)
    kept = [template.model_copy(update={"declaration_id": f"D-{i}"}) for i in range(n)]
    late = [waiting(f"W-{i}", NOW - timedelta(seconds=1)) for i in range(due)]
    tables = [JoinTable(RETENTION, [*kept, *late]) for _ in range(repeat)]
    busy = statistics.median(seconds(partial(t.expired, NOW)) for t in tables)
    examined = tables[0].examined
    idle = tables[0]
    idle.apply(idle.expired(NOW)[0])
    quiet = statistics.median(seconds(lambda: idle.expired(NOW)) for _ in range(repeat))
    states = {s.declaration_id: s for s in [*kept, *late]}
    scan = statistics.median(seconds(lambda: full_scan(states, NOW)) for _ in range(repeat))
    before = NOW - timedelta(hours=1)  # nothing due yet: the scan alone
    idle_scan = statistics.median(seconds(lambda: full_scan(states, before)) for _ in range(repeat))
    return busy, examined, quiet, scan, idle_scan


def tick_costs(sizes: list[int], due: int = 100) -> None:
    print(f"tick cost: N decided states kept, {due} undecided due (median of 5)")
    print(f"{'':>8} {'---- indexed (now) ----':>34} {'-- full scan (before) --':>25}")
    print(f"{'N':>8} {'busy tick':>10} {'examined':>9} {'idle tick':>13} {'busy':>12} {'idle':>12}")
    for n in sizes:
        busy, examined, quiet, scan, idle_scan = tick_cost(n, due)
        print(
            f"{n:>8,} {busy * 1e3:>7.2f} ms {examined:>9} {quiet * 1e6:>10.1f} us "
            f"{scan * 1e3:>9.2f} ms {idle_scan * 1e3:>9.2f} ms"
        )


def history(days: int, per_day: int) -> Iterator[tuple[datetime, JoinState]]:
    """``per_day`` declarations decided per day for ``days`` days, ending at NOW."""
    start = NOW - days * DAY
    for day in range(days):
        for i in range(per_day):
            at = start + day * DAY + i * DAY / per_day
            yield at, decided(f"H-{day}-{i}", at)


def compacted(days: int, per_day: int, retention: timedelta) -> list[ConsumerRecord]:
    """The changelog as compaction leaves it, the table ticking once an hour meanwhile."""
    table = JoinTable(retention)
    latest: dict[str, tuple[datetime, JoinState | None]] = {}
    clock = NOW - days * DAY
    for at, state in history(days, per_day):
        while clock <= at:
            changes, _ = table.expired(clock)
            table.apply(changes)
            latest.update((key, (clock, s)) for key, s in changes.items())
            clock += timedelta(hours=1)
        table.apply({state.declaration_id: state})
        latest[state.declaration_id] = (at, state)
    return [
        record(offset, key, state)
        for offset, (key, (written, state)) in enumerate(latest.items())
        if state is not None or written >= NOW - TOMBSTONE_KEPT  # else removed by the broker
    ]


def record(offset: int, key: str, state: JoinState | None) -> ConsumerRecord:
    value = None if state is None else state.to_avro()
    return ConsumerRecord(JOIN_STATE.name, 0, offset, 0, 0, key.encode(), value, None, 0, 0, ())


def restored_table(records: list[ConsumerRecord]) -> JoinTable:
    """What ``Task.open`` does with the records it read."""
    return JoinTable(RETENTION, restore(records).states.values())


def restore_costs(day_counts: list[int], per_day: int) -> None:
    never = timedelta(days=10**5)
    print(f"\nrestore after D days of {per_day} decisions a day")
    print(f"{'D':>4} {'history':>8} | retention {RETENTION.days} d: records, restore | none: ditto")
    for days in day_counts:
        cells = []
        for retention in (RETENTION, never):
            records = compacted(days, per_day, retention)
            took = seconds(partial(restored_table, records))
            cells.append(f"{len(records):>8,} {took:>6.2f} s")
        print(f"{days:>4} {days * per_day:>8,} | {cells[0]:>28} | {cells[1]}")


def main(scale: float) -> None:
    _cache_fingerprints()
    tick_costs([int(n * scale) for n in (1_000, 10_000, 100_000)])
    restore_costs([7, 30, 90], int(200 * scale))


if __name__ == "__main__":
    main(float(sys.argv[1]) if len(sys.argv) > 1 else 1.0)
