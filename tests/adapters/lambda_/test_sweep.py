"""The outbox sweep: an EventBridge schedule makes a stateful function publish the outbox
events its table's stream left pending, per key in order, and park those it never can."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import orjson
import pytest

from adapters.aws.dead_letters import MemoryDeadLetters
from adapters.lambda_.app import LambdaApp
from bus import Domain, Storage
from bus.clock import ManualClock
from bus.envelope import Envelope
from bus.storage import Key
from bus.storage.memory import InMemoryTable
from bus.storage.unit_of_work import UnitOfWork
from bus.topology import Topology

from .conftest import SCHEDULED_EVENT, LambdaContext, Published, body, sample

OUTBOX_DLQ = "tctf-ledger-outbox-dlq"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def table(clock: ManualClock) -> InMemoryTable:
    spec = Topology.from_domains([Domain("ledger", storage=Storage())]).tables["ledger"]
    return InMemoryTable(spec, now=clock.now)


def _ledger_app(
    publisher: Published,
    table: InMemoryTable,
    clock: ManualClock,
    dead_letters: MemoryDeadLetters,
    outbox_sweep_age_s: float = 900.0,
) -> LambdaApp:
    return LambdaApp(
        Domain("ledger", storage=Storage()),
        publisher,
        dead_letters=dead_letters,
        dead_letter_queue="tctf-ledger-events-dlq",
        outbox_dead_letter_queue=OUTBOX_DLQ,
        table=table,
        clock=clock,
        outbox_sweep_age_s=outbox_sweep_age_s,
    )


@pytest.fixture
def ledger(
    published: Published, table: InMemoryTable, clock: ManualClock, dead_letters: MemoryDeadLetters
) -> Iterator[LambdaApp]:
    app = _ledger_app(published, table, clock, dead_letters)
    yield app
    app.close()


def _commit(app: LambdaApp, table: InMemoryTable, ordering_key: str, *bodies: bytes) -> None:
    async def commit() -> None:
        async with UnitOfWork(table, now=app.clock.now) as uow:
            for index, encoded in enumerate(bodies):
                uow.publish(encoded, ordering_key=ordering_key, event_id=f"{ordering_key}-{index}")

    app._loop.run_until_complete(commit())


def _pending(app: LambdaApp, table: InMemoryTable, ordering_key: str) -> list[str]:
    async def query() -> list[str]:
        page = await table.query(
            Key("PK").eq(f"OUTBOX#{ordering_key}") & Key("SK").begins_with("EVENT#"),
            consistent=True,
        )
        return [str(item["event_id"]) for item in page.items]

    return app._loop.run_until_complete(query())


def _event(id: str) -> bytes:
    return body(id=id).encode()


def test_the_scheduled_event_sample_sweeps_old_outbox_events_in_order_and_leaves_young_ones(
    ledger: LambdaApp,
    table: InMemoryTable,
    clock: ManualClock,
    published: Published,
    dead_letters: MemoryDeadLetters,
) -> None:
    _commit(ledger, table, "ORDER#1", _event("o1-a"), _event("o1-b"))
    _commit(ledger, table, "ORDER#2", _event("o2-a"))
    clock.advance(600)
    _commit(ledger, table, "ORDER#1", _event("o1-c"))
    _commit(ledger, table, "ORDER#3", _event("o3-a"))
    clock.advance(300)  # the first three are 900 s old, the sweep age; the others 300 s

    assert ledger(sample(SCHEDULED_EVENT), LambdaContext()) is None

    ids = [e.id for e in published.events]
    assert [i for i in ids if i.startswith("o1")] == ["o1-a", "o1-b"]
    assert sorted(ids) == ["o1-a", "o1-b", "o2-a"]
    assert _pending(ledger, table, "ORDER#1") == ["ORDER#1-0"]  # o1-c, committed later
    assert _pending(ledger, table, "ORDER#2") == []
    assert _pending(ledger, table, "ORDER#3") == ["ORDER#3-0"]
    assert dead_letters.queues == {}


def test_a_stateless_domain_has_no_outbox_to_sweep(
    app: LambdaApp, published: Published, dead_letters: MemoryDeadLetters
) -> None:
    assert app.table is None
    assert app(sample(SCHEDULED_EVENT), LambdaContext()) is None
    assert published.events == published.tasks == []
    assert dead_letters.queues == {}  # not taken for a domain event and parked


def test_an_unreadable_outbox_item_is_parked_and_the_events_behind_it_are_published(
    ledger: LambdaApp,
    table: InMemoryTable,
    clock: ManualClock,
    published: Published,
    dead_letters: MemoryDeadLetters,
) -> None:
    _commit(ledger, table, "ORDER#1", b"{not json", _event("o1-b"))
    _commit(ledger, table, "ORDER#2", _event("o2-a"))
    clock.advance(3600)

    assert ledger(sample(SCHEDULED_EVENT), LambdaContext()) is None

    assert sorted(e.id for e in published.events) == ["o1-b", "o2-a"]
    (letter,) = dead_letters.queues[OUTBOX_DLQ]
    assert letter.record_id == f"OUTBOX#ORDER#1 EVENT#{0:020d}"
    assert letter.reason.startswith("record body is not JSON")
    assert letter.source == table.spec.name
    parked = orjson.loads(letter.body)
    assert (parked["PK"], parked["event_id"]) == ("OUTBOX#ORDER#1", "ORDER#1-0")
    assert _pending(ledger, table, "ORDER#1") == _pending(ledger, table, "ORDER#2") == []


class Unreachable(Published):
    """A publisher whose target is down for envelopes of one ordering key."""

    def __init__(self, down: str) -> None:
        super().__init__()
        self.down = down

    async def publish(self, envelopes: Sequence[Envelope]) -> None:
        if any(e.id.startswith(self.down) for e in envelopes):
            raise ConnectionError("topic unreachable")
        await super().publish(envelopes)


def test_an_event_that_fails_to_publish_stays_pending_with_its_key_and_the_others_go_on(
    table: InMemoryTable, clock: ManualClock, dead_letters: MemoryDeadLetters
) -> None:
    publisher = Unreachable("o1")
    app = _ledger_app(publisher, table, clock, dead_letters)
    try:
        _commit(app, table, "ORDER#1", _event("o1-a"), _event("o1-b"))
        _commit(app, table, "ORDER#2", _event("o2-a"))
        clock.advance(3600)
        assert app(sample(SCHEDULED_EVENT), LambdaContext()) is None
        assert [e.id for e in publisher.events] == ["o2-a"]
        assert _pending(app, table, "ORDER#1") == ["ORDER#1-0", "ORDER#1-1"]
        assert dead_letters.queues == {}
    finally:
        app.close()


def test_the_sweep_stops_before_the_invocations_deadline(
    ledger: LambdaApp, table: InMemoryTable, clock: ManualClock, published: Published
) -> None:
    _commit(ledger, table, "ORDER#1", _event("o1-a"), _event("o1-b"))
    clock.advance(3600)

    class TimeRunsOutOncePublishing:
        """Plenty of time until the first event is published, then less than the margin."""

        def get_remaining_time_in_millis(self) -> int:
            return 100 if published.events else 5000

    assert ledger(sample(SCHEDULED_EVENT), TimeRunsOutOncePublishing()) is None

    assert [e.id for e in published.events] == ["o1-a"]
    assert _pending(ledger, table, "ORDER#1") == ["ORDER#1-1"]


def test_the_sweep_age_is_the_functions_to_choose(
    published: Published, table: InMemoryTable, clock: ManualClock, dead_letters: MemoryDeadLetters
) -> None:
    app = _ledger_app(published, table, clock, dead_letters, outbox_sweep_age_s=60)
    try:
        _commit(app, table, "ORDER#1", _event("o1-a"))
        clock.advance(60)
        assert app(sample(SCHEDULED_EVENT), LambdaContext()) is None
    finally:
        app.close()
    assert [e.id for e in published.events] == ["o1-a"]
