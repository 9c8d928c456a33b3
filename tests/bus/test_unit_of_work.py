"""Handlers change state and publish in one transaction; a crash in between loses nothing."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import orjson
import pytest
from pydantic import BaseModel

from bus import Context, Domain, DomainSettings, Event, Request
from bus.clock import Clock
from bus.domain import Storage
from bus.errors import UnencodableMessage
from bus.http import HttpRequest, HttpResponse, HttpRouter
from bus.storage import Attr, InMemoryTable, TableSpec
from bus.storage.table import Delete, TransactOperation
from bus.testing import Harness


class PaymentRequested(Event):
    type = "PAYMENT_REQUESTED"
    invoice: str
    amount: int


class InvoicePaid(Event):
    type = "INVOICE_PAID"
    invoice: str
    amount: int


def billing() -> Domain:
    domain = Domain("billing", DomainSettings(retry_attempts=1), storage=Storage())

    @domain.on(PaymentRequested)
    async def pay(event: PaymentRequested, ctx: Context) -> None:
        async with ctx.unit_of_work() as uow:
            uow.put(
                {"PK": f"INVOICE#{event.invoice}", "SK": "STATE", "paid": event.amount},
                condition=Attr("PK").not_exists(),
            )
            uow.publish(
                InvoicePaid(invoice=event.invoice, amount=event.amount), subject=event.invoice
            )

    return domain


def ledger(received: Counter[str]) -> Domain:
    domain = Domain("ledger")

    @domain.on(InvoicePaid)
    async def book(event: InvoicePaid, ctx: Context) -> None:
        received[event.invoice] += 1

    return domain


def shared(tables: dict[str, InMemoryTable]):  # type: ignore[no-untyped-def]
    """A table factory that hands back the same table across runs: the durable store."""

    def build(spec: TableSpec, clock: Clock) -> InMemoryTable:
        return tables.setdefault(spec.name, InMemoryTable(spec, now=clock.now))

    return build


async def test_state_and_event_are_committed_together_and_the_relay_publishes() -> None:
    received: Counter[str] = Counter()
    async with Harness(billing(), ledger(received)) as h:
        await h.publish(PaymentRequested(invoice="i1", amount=30))
        await h.settle()
        item = await h.runtime.tables["billing"].get({"PK": "INVOICE#i1", "SK": "STATE"})
    assert item is not None and item["paid"] == 30
    assert received == {"i1": 1}
    [paid] = h.published_of("INVOICE_PAID")
    assert paid.subject == "i1" and paid.causationid == h.published[0].id


async def test_a_failed_condition_writes_nothing_and_publishes_nothing() -> None:
    received: Counter[str] = Counter()
    async with Harness(billing(), ledger(received)) as h:
        table = h.runtime.tables["billing"]
        await table.put({"PK": "INVOICE#i2", "SK": "STATE", "paid": 1})
        await h.publish(PaymentRequested(invoice="i2", amount=99))
        await h.settle()
        item = await table.get({"PK": "INVOICE#i2", "SK": "STATE"})
    assert item is not None and item["paid"] == 1
    assert received == {} and h.published_of("INVOICE_PAID") == []
    assert any("ConditionalCheckFailed" in (o.error or "") for o in h.results("failed"))


async def test_killed_between_commit_and_relay_the_event_is_published_after_restart() -> None:
    tables: dict[str, InMemoryTable] = {}
    received: Counter[str] = Counter()
    async with Harness(billing(), ledger(received), tables=shared(tables)) as first:
        context = first.runtime.context("billing")
        async with context.unit_of_work() as uow:
            uow.put({"PK": "INVOICE#i3", "SK": "STATE", "paid": 7})
            uow.publish(InvoicePaid(invoice="i3", amount=7), subject="i3")
        # the process dies here: committed, never relayed
    assert received == {} and first.published == []

    async with Harness(billing(), ledger(received), tables=shared(tables)) as restarted:
        await restarted.settle()
        await restarted.settle()  # a second pass finds nothing left to publish
    assert received == {"i3": 1}
    assert len(restarted.published_of("INVOICE_PAID")) == 1


async def test_idempotency_records_live_in_the_domains_table() -> None:
    received: Counter[str] = Counter()
    async with Harness(billing(), ledger(received)) as h:
        envelope = await h.publish(PaymentRequested(invoice="i4", amount=5))
        await h.runtime.publisher.publish([envelope])  # a duplicate delivery
        await h.settle()
        record = await h.runtime.tables["billing"].get(
            {"PK": f"IDEMPOTENCY#billing.pay#{envelope.id}", "SK": "IDEMPOTENCY"}
        )
    assert record is not None and "expires_at" in record
    assert received == {"i4": 1} and len(h.results("skipped", "billing.pay")) == 1


async def test_a_domain_without_storage_has_no_table() -> None:
    received: Counter[str] = Counter()
    async with Harness(ledger(received)) as h:
        context = h.runtime.context("ledger")
        with pytest.raises(Exception, match=r"storage=Storage\(\)"):
            context.unit_of_work()


async def test_a_handler_failing_after_its_commit_is_not_run_again() -> None:
    wallet = Domain("wallet", DomainSettings(retry_attempts=1), storage=Storage())
    received: Counter[str] = Counter()
    attempts = 0

    @wallet.on(PaymentRequested)
    async def credit(event: PaymentRequested, ctx: Context) -> None:
        nonlocal attempts
        attempts += 1
        async with ctx.unit_of_work() as uow:
            uow.update({"PK": "WALLET#w1", "SK": "BALANCE"}, add={"balance": event.amount})
            uow.publish(InvoicePaid(invoice=event.invoice, amount=event.amount))
        raise RuntimeError("crashed after committing")

    async with Harness(wallet, ledger(received)) as h:
        await h.publish(PaymentRequested(invoice="i5", amount=10))
        await h.settle()
        item = await h.runtime.tables["wallet"].get({"PK": "WALLET#w1", "SK": "BALANCE"})
    assert attempts == 1 and item is not None and item["balance"] == 10
    assert received == {"i5": 1}
    assert [o.status for o in h.results(handler="wallet.credit")] == ["failed", "skipped"]


async def test_a_second_unit_of_work_in_one_handler_is_refused() -> None:
    wallet = Domain(
        "wallet", DomainSettings(retry_attempts=1, max_receive_count=1), storage=Storage()
    )

    @wallet.on(PaymentRequested)
    async def credit(event: PaymentRequested, ctx: Context) -> None:
        async with ctx.unit_of_work():
            pass
        async with ctx.unit_of_work():
            pass

    async with Harness(wallet) as h:
        await h.publish(PaymentRequested(invoice="i6", amount=1))
        await h.settle()
        [dead] = await h.dead_letters("wallet")
    assert dead.reason is not None and "opened a second unit of work" in dead.reason
    assert not h.results("failed"), "a programming mistake is parked, not retried"


async def test_events_staged_on_the_context_before_the_commit_leave_with_it() -> None:
    wallet = Domain("wallet", storage=Storage())
    received: Counter[str] = Counter()

    @wallet.on(PaymentRequested)
    async def credit(event: PaymentRequested, ctx: Context) -> None:
        ctx.publish(InvoicePaid(invoice=event.invoice, amount=event.amount))
        async with ctx.unit_of_work() as uow:
            uow.update({"PK": "WALLET#w1", "SK": "BALANCE"}, add={"balance": event.amount})
            assert ctx.outbox, "staged on the context until the commit"
        assert not ctx.outbox, "the commit took it into the table's outbox"

    async with Harness(wallet, ledger(received)) as h:
        await h.publish(PaymentRequested(invoice="i7", amount=3))
        await h.settle()
    assert received == {"i7": 1}


async def test_publishing_after_the_commit_is_refused_and_nothing_is_lost_silently() -> None:
    wallet = Domain(
        "wallet", DomainSettings(retry_attempts=1, max_receive_count=1), storage=Storage()
    )

    @wallet.on(PaymentRequested)
    async def credit(event: PaymentRequested, ctx: Context) -> None:
        async with ctx.unit_of_work() as uow:
            uow.update({"PK": "WALLET#w1", "SK": "BALANCE"}, add={"balance": event.amount})
        ctx.publish(InvoicePaid(invoice=event.invoice, amount=event.amount))

    async with Harness(wallet) as h:
        await h.publish(PaymentRequested(invoice="i8", amount=3))
        await h.settle()
        [dead] = await h.dead_letters("wallet")
    assert dead.reason is not None and "after its unit of work committed" in dead.reason


class DeletesFailingOnce(InMemoryTable):
    """A table whose first outbox clean-up fails: the relay has published, not deleted."""

    def __init__(self, spec: TableSpec, now: Callable[[], float]) -> None:
        super().__init__(spec, now=now)
        self.failed = False

    async def transact(self, operations: Sequence[TransactOperation]) -> None:
        if not self.failed and all(isinstance(op, Delete) for op in operations):
            self.failed = True
            raise ConnectionError("connection reset while deleting published outbox events")
        await super().transact(operations)


async def test_settle_waits_for_events_a_failed_relay_pass_left_pending() -> None:
    received: Counter[str] = Counter()
    tables: dict[str, DeletesFailingOnce] = {}

    def flaky(spec: TableSpec, clock: Clock) -> DeletesFailingOnce:
        return tables.setdefault(spec.name, DeletesFailingOnce(spec, clock.now))

    async with Harness(billing(), ledger(received), tables=flaky) as h:
        await h.publish(PaymentRequested(invoice="i9", amount=5))
        await h.settle()
        pending = await h.runtime.relays["billing"].pending()
        published = h.published_of("INVOICE_PAID")

    # billing's table failed once; ledger's (its idempotency records) never deletes
    assert sorted(table.failed for table in tables.values()) == [False, True]
    assert not pending
    assert len(published) == 2 and received == {"i9": 1}  # the repeat is deduplicated


class Place(BaseModel):
    order: str


def orders() -> Domain:
    domain = Domain("orders", storage=Storage())

    @domain.post("/orders", body=Place, status=201)
    async def place(request: Request[Place], ctx: Context) -> None:
        ctx.publish(InvoicePaid(invoice=request.body.order, amount=1))
        async with ctx.unit_of_work() as uow:
            uow.put({"PK": f"ORDER#{request.body.order[:8]}", "SK": "STATE"})
            uow.publish(InvoicePaid(invoice="i", amount=1), subject=request.body.order)

    return domain


async def place_order(h: Harness, order: str, correlation_id: str | None = None) -> HttpResponse:
    """POST /orders as the router does, with a context of `correlation_id` if given (as one
    arriving by another way than a checked header would be)."""

    def context(domain: str, edge_id: str | None) -> Context:
        return h.runtime.context(domain, correlation_id or edge_id)

    router = HttpRouter(h.runtime.domains, h.runtime.publisher, context)
    body = orjson.dumps({"order": order})
    return await router.handle(HttpRequest("POST", "/orders", body=body))


def _items(h: Harness, domain: str) -> list[dict[str, Any]]:
    table = h.runtime.tables[domain]
    assert isinstance(table, InMemoryTable)
    return list(table.scan())


async def test_an_envelope_consumers_would_refuse_is_refused_when_staged_and_nothing_commits() -> (
    None
):
    async with Harness(orders()) as h:
        placed = await place_order(h, "o-1")
        over_long_subject = await place_order(h, "o" * 257)
        over_long_correlation = await place_order(h, "o-2", correlation_id="c" * 5000)
        await h.settle()
        stored = _items(h, "orders")
    assert placed.status == 201
    assert over_long_subject.status == 422 and over_long_correlation.status == 422
    assert [item["PK"] for item in stored if item["PK"].startswith("ORDER#")] == ["ORDER#o-1"]
    assert sorted(str(e.subject) for e in h.published) == ["None", "o-1"]
    assert h.runtime.outbox_dead_letters.get("orders", []) == []


async def test_a_handler_staging_an_unreadable_envelope_is_parked_with_the_reason() -> None:
    received: Counter[str] = Counter()
    async with Harness(billing(), ledger(received)) as h:
        await h.publish(PaymentRequested(invoice="i" * 300, amount=30))
        await h.settle()
        [parked] = await h.dead_letters("billing")
        stored = _items(h, "billing")
    assert parked.reason is not None and "subject" in parked.reason
    assert [i for i in stored if i["PK"].startswith("INVOICE#")] == []
    assert h.published_of("INVOICE_PAID") == [] and received == {}


@pytest.mark.parametrize(
    ("correlation_id", "subject", "refused"),
    [
        ("c" * 257, None, "correlationid"),
        ("c-1", "s" * 257, "subject"),
        ("c-1", "line\nbreak", "subject"),
        ("c-1", "", "subject"),
    ],
)
async def test_publishing_outside_a_handler_refuses_what_consumers_would_refuse(
    correlation_id: str, subject: str | None, refused: str
) -> None:
    async with Harness(billing()) as h:
        context = h.runtime.context("billing", correlation_id)
        with pytest.raises(UnencodableMessage, match=refused):
            context.publish(InvoicePaid(invoice="i", amount=1), subject=subject)
        with pytest.raises(UnencodableMessage, match=refused):
            async with context.unit_of_work() as uow:
                uow.put({"PK": "INVOICE#i", "SK": "STATE"})
                uow.publish(InvoicePaid(invoice="i", amount=1), subject=subject)
        assert await h.runtime.tables["billing"].get({"PK": "INVOICE#i", "SK": "STATE"}) is None
