"""A batch's idempotency claims, taken together before its handlers run and recorded together
after: a claim lost meanwhile still fails its record, and the claims of records the batch
never reached are given back at once."""

from __future__ import annotations

from collections.abc import Sequence

import anyio
import anyio.lowlevel

from bus import Context, Domain, Event
from bus.assembly import Services, assemble
from bus.clock import ManualClock
from bus.dispatch import DEADLINE_REASON, Outcome, Record
from bus.envelope import Envelope
from bus.middleware import idempotency_key
from bus.storage import InMemoryTable, TableIdempotencyStore
from bus.topology import Topology


class Ordered(Event):
    type = "BC_ORDERED"
    order: str


class Nowhere:
    async def publish(self, envelopes: Sequence[Envelope]) -> None:
        pass

    async def send(self, envelopes: Sequence[Envelope]) -> None:
        pass


def _record(order: str) -> Record:
    envelope = Envelope(
        id=f"evt-{order}",
        source="shop",
        type=Ordered.type,
        time="2026-01-01T00:00:00.000Z",
        dataversion=1,
        correlationid=f"corr-{order}",
        data=Ordered(order=order),
    )
    return Record(id=f"r-{order}", body=envelope.encode())


def _shipping(handled: list[str], clock: ManualClock) -> tuple[Domain, InMemoryTable, str]:
    domain = Domain("shipping")

    @domain.on(Ordered)
    async def ship(event: Ordered, ctx: Context) -> None:
        handled.append(event.order)

    spec = Topology.from_domains([domain]).idempotency_tables["shipping"]
    return domain, InMemoryTable(spec, now=clock.now), domain.subscriptions[0].name


async def test_a_claim_lost_before_the_batch_is_recorded_fails_its_record() -> None:
    clock = ManualClock()
    handled: list[str] = []
    domain, table, handler = _shipping(handled, clock)
    other = TableIdempotencyStore(table, now=clock.now)

    @domain.on(Ordered)
    async def slow_audit(event: Ordered, ctx: Context) -> None:
        if event.order == "o1":  # o1's shipping outlives its lease; another consumer takes it
            clock.advance(domain.settings.visibility_timeout + 1)
            key = idempotency_key(handler, "evt-o1")
            assert await other.claim(key, lease=60, token="other") == "claimed"

    outcomes: list[Outcome] = []
    dispatcher = assemble(
        domain,
        Services(Nowhere(), clock=clock, observers=[outcomes.append]),
        idempotency_table=table,
    )

    result = await dispatcher.dispatch([_record("o1"), _record("o2")])

    assert handled == ["o1", "o2"]
    assert list(result.failed) == ["r-o1"] and "ClaimLost" in result.failed["r-o1"]
    assert [(o.record_id, o.handler, o.status) for o in outcomes][-1] == ("r-o1", handler, "failed")
    await other.complete(idempotency_key(handler, "evt-o1"), token="other")  # still its own


async def test_the_claims_of_records_a_batch_never_reached_are_given_back() -> None:
    clock = ManualClock()
    handled: list[str] = []
    domain, table, handler = _shipping(handled, clock)
    dispatcher = assemble(domain, Services(Nowhere(), clock=clock), idempotency_table=table)
    asked: list[None] = []

    def deadline() -> bool:  # the invocation's time runs out after the first record
        asked.append(None)
        return len(asked) > 1

    result = await dispatcher.dispatch([_record("o1"), _record("o2")], deadline=deadline)

    assert handled == ["o1"]
    assert result.failed == {"r-o2": DEADLINE_REASON}
    other = TableIdempotencyStore(table, now=clock.now)
    assert await other.claim(idempotency_key(handler, "evt-o2"), lease=30, token="x") == "claimed"
    assert await other.claim(idempotency_key(handler, "evt-o1"), lease=30, token="x") == "done"


async def test_a_batch_cut_off_midway_still_records_what_it_handled() -> None:
    clock = ManualClock()
    handled: list[str] = []
    domain, table, handler = _shipping(handled, clock)

    @domain.on(Ordered)
    async def hang(event: Ordered, ctx: Context) -> None:
        if event.order == "o2":
            await anyio.sleep_forever()

    dispatcher = assemble(domain, Services(Nowhere(), clock=clock), idempotency_table=table)

    with anyio.move_on_after(0.2):  # the poller's cut at the visibility timeout
        await dispatcher.dispatch([_record("o1"), _record("o2")])
    for _ in range(10):
        await anyio.lowlevel.checkpoint()

    assert handled == ["o1", "o2"]
    other = TableIdempotencyStore(table, now=clock.now)
    assert await other.claim(idempotency_key(handler, "evt-o1"), lease=30, token="x") == "done"
