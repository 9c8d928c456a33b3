"""The dispatcher and its middleware: retries in place, timeouts, parking, the outbox rule."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import anyio
import anyio.lowlevel

from bus import Context, Domain, DomainSettings, Event, Rejected, TransientError
from bus.dispatch import Publisher
from bus.envelope import Envelope
from bus.testing import Harness


class Charged(Event):
    type = "CHARGED"
    invoice: str


class Receipted(Event):
    type = "RECEIPTED"
    invoice: str


async def test_transient_errors_are_retried_in_place_with_backoff() -> None:
    billing = Domain("billing", DomainSettings(retry_attempts=3, retry_backoff=0.5))
    calls: list[float] = []

    @billing.on(Charged)
    async def send_receipt(event: Charged, ctx: Context) -> None:
        calls.append(ctx.clock.now())
        if len(calls) < 3:
            raise TransientError("mail provider throttled")

    async with Harness(billing) as h:
        await h.publish(Charged(invoice="i1"))
        await h.settle()
    assert [round(b - a, 3) for a, b in itertools.pairwise(calls)] == [0.5, 1.0]
    [outcome] = h.outcomes
    assert outcome.status == "handled"


async def test_a_handler_over_its_timeout_fails_and_is_redelivered() -> None:
    billing = Domain("billing", DomainSettings(handler_timeout=0.05, retry_attempts=1))
    calls = 0

    @billing.on(Charged)
    async def send_receipt(event: Charged, ctx: Context) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            await anyio.sleep(5)  # hangs: the timeout must cut it short

    async with Harness(billing) as h:
        with anyio.fail_after(3):
            await h.publish(Charged(invoice="i1"))
            await h.settle()
    failed = h.results("failed")
    assert failed[0].error is not None and "TimeoutError" in failed[0].error
    assert len(h.handled()) == 1


async def test_rejected_records_are_parked_at_once_with_the_handlers_reason() -> None:
    billing = Domain("billing", DomainSettings(max_receive_count=5))
    calls = 0

    @billing.on(Charged)
    async def send_receipt(event: Charged, ctx: Context) -> None:
        nonlocal calls
        calls += 1
        raise Rejected(f"invoice {event.invoice} belongs to a closed account")

    async with Harness(billing) as h:
        await h.publish(Charged(invoice="i9"))
        await h.settle()
        [dead] = await h.dead_letters("billing")
    assert calls == 1
    assert dead.reason == "billing.send_receipt: invoice i9 belongs to a closed account"


async def test_events_published_by_a_failing_handler_never_leave() -> None:
    billing = Domain("billing", DomainSettings(retry_attempts=1, max_receive_count=2))
    audit = Domain("audit")
    seen: list[str] = []

    @billing.on(Charged)
    async def send_receipt(event: Charged, ctx: Context) -> None:
        ctx.publish(Receipted(invoice=event.invoice))
        raise RuntimeError("crashed after publishing")

    @audit.on(Receipted)
    async def record(event: Receipted, ctx: Context) -> None:
        seen.append(event.invoice)

    async with Harness(billing, audit) as h:
        await h.publish(Charged(invoice="i1"))
        await h.settle()
    assert seen == [] and h.published_of("RECEIPTED") == []


async def test_each_handler_of_a_record_succeeds_once_even_when_a_sibling_fails() -> None:
    billing = Domain("billing", DomainSettings(retry_attempts=1))
    effects: list[str] = []
    failures = 1

    @billing.on(Charged)
    async def book(event: Charged, ctx: Context) -> None:
        effects.append("book")

    @billing.on(Charged)
    async def notify(event: Charged, ctx: Context) -> None:
        nonlocal failures
        if failures:
            failures -= 1
            raise RuntimeError("notifier down")
        effects.append("notify")

    async with Harness(billing) as h:
        await h.publish(Charged(invoice="i1"))
        await h.settle()
    assert sorted(effects) == ["book", "notify"]
    assert [o.handler for o in h.results("skipped")] == ["billing.book"]


async def test_two_copies_handled_at_once_run_the_handler_once() -> None:
    billing = Domain("billing", DomainSettings(batch_size=1, concurrency=2, retry_attempts=1))
    charges: list[str] = []

    @billing.on(Charged)
    async def charge(event: Charged, ctx: Context) -> None:
        await anyio.lowlevel.checkpoint()  # the other consumer takes the copy meanwhile
        charges.append(event.invoice)

    async with Harness(billing) as h:
        envelope = await h.publish(Charged(invoice="i1"))
        await h.runtime.publisher.publish([envelope])
        await h.settle()
    assert charges == ["i1"]
    assert [o.status for o in h.outcomes if o.status != "handled"] == ["failed", "skipped"]
    assert "being handled by another consumer" in (h.results("failed")[0].error or "")


class HalfBrokenTopic:
    """A publisher whose first call delivers one envelope and then fails, as a throttled
    PublishBatch can; later calls go through."""

    def __init__(self, inner: Publisher) -> None:
        self.inner = inner
        self.calls = 0

    async def publish(self, envelopes: Sequence[Envelope]) -> None:
        self.calls += 1
        if self.calls == 1:
            await self.inner.publish(envelopes[:1])
            raise TransientError("throttled after the first entry")
        await self.inner.publish(envelopes)

    async def send(self, envelopes: Sequence[Envelope]) -> None:
        await self.inner.send(envelopes)


async def test_a_retried_handler_republishes_the_same_ids_so_consumers_see_each_once() -> None:
    billing = Domain("billing", DomainSettings(retry_attempts=2, retry_backoff=0.1))
    audit = Domain("audit")
    seen: list[str] = []

    @billing.on(Charged)
    async def send_receipts(event: Charged, ctx: Context) -> None:
        ctx.publish(Receipted(invoice=f"{event.invoice}-a"))
        ctx.publish(Receipted(invoice=f"{event.invoice}-b"))

    @audit.on(Receipted)
    async def record(event: Receipted, ctx: Context) -> None:
        seen.append(event.invoice)

    async with Harness(billing, audit) as h:
        topic = HalfBrokenTopic(h.runtime.publisher)
        h.runtime.dispatchers["billing"]._publisher = topic
        await h.publish(Charged(invoice="i1"))
        await h.settle()
    assert topic.calls == 2
    assert sorted(seen) == ["i1-a", "i1-b"]
    assert len(h.published_of("RECEIPTED")) == 3  # i1-a went out twice, with one id
    assert len({e.id for e in h.published_of("RECEIPTED")}) == 2
    assert [o.handler for o in h.results("skipped")] == ["audit.record"]
