"""In-memory queue semantics that the conformance suite cannot reach from outside."""

from __future__ import annotations

import anyio
import pytest

from bus import Context, Domain, DomainSettings, Event
from bus.clock import ManualClock
from bus.memory import MemoryQueue, QueuedMessage
from bus.testing import Harness


class Pinged(Event):
    type = "PINGED"
    n: int


def queue_with_dlq(clock: ManualClock, **options: object) -> MemoryQueue:
    dlq = MemoryQueue("q-dlq", clock=clock)
    return MemoryQueue("q", clock=clock, dlq=dlq, **options)  # type: ignore[arg-type]


def test_a_received_message_stays_hidden_for_the_visibility_timeout() -> None:
    clock = ManualClock()
    queue = queue_with_dlq(clock, visibility_timeout=30.0, max_receive_count=5)
    queue.send(QueuedMessage("m1", b"{}", clock.now()))
    [(message, _)] = queue.receive(10)
    assert queue.receive(10) == []
    clock.advance(29.9)
    assert queue.receive(10) == []
    clock.advance(0.1)
    [(again, _)] = queue.receive(10)
    assert again is message and again.receive_count == 2


def test_a_stale_receipt_cannot_delete_a_message_received_again() -> None:
    clock = ManualClock()
    queue = queue_with_dlq(clock, visibility_timeout=1.0, max_receive_count=5)
    queue.send(QueuedMessage("m1", b"{}", clock.now()))
    [(message, first)] = queue.receive(1)
    clock.advance(1.0)
    [(_, second)] = queue.receive(1)
    assert not queue.delete(message, first)
    assert queue.delete(message, second) and len(queue) == 0


def test_receive_returns_at_most_the_batch_size() -> None:
    clock = ManualClock()
    queue = queue_with_dlq(clock)
    for n in range(25):
        queue.send(QueuedMessage(f"m{n}", b"{}", clock.now()))
    assert [len(queue.receive(10)) for _ in range(4)] == [10, 10, 5, 0]


def test_message_moves_to_dlq_on_the_receive_after_max_receive_count() -> None:
    clock = ManualClock()
    queue = queue_with_dlq(clock, visibility_timeout=1.0, max_receive_count=2)
    queue.send(QueuedMessage("m1", b"body", clock.now()))
    for _ in range(2):
        [(message, receipt)] = queue.receive(1)
        queue.fail(message, receipt, "boom")
        clock.advance(1.0)
    assert queue.receive(1) == []
    assert queue.dlq is not None
    [dead] = queue.dlq.messages()
    assert (dead.message_id, dead.body, dead.receive_count) == ("m1", b"body", 3)
    assert dead.dead_reason is not None and "last error: boom" in dead.dead_reason


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"\x00 not json", "not JSON"),
        (b'{"hello": "world"}', "lacks required attributes"),
    ],
)
async def test_malformed_records_go_to_the_dlq_at_once_with_the_reason(
    body: bytes, reason: str
) -> None:
    inbox = Domain("inbox", DomainSettings(max_receive_count=5))
    seen: list[int] = []

    @inbox.on(Pinged)
    async def count(event: Pinged, ctx: Context) -> None:
        seen.append(event.n)

    async with Harness(inbox) as h:
        queue = h.transport.queues["tctf-inbox-events"]  # type: ignore[attr-defined]
        queue.send(QueuedMessage("bad", body, h.clock.now()))
        await h.publish(Pinged(n=1))
        await h.settle()
        [dead] = await h.dead_letters("inbox")
    assert seen == [1]
    assert dead.body == body and dead.receive_count == 1
    assert dead.reason is not None and reason in dead.reason


async def test_unknown_event_type_is_dead_lettered_naming_what_the_domain_handles() -> None:
    inbox = Domain("inbox")

    @inbox.on(Pinged)
    async def count(event: Pinged, ctx: Context) -> None:
        pass

    async with Harness(inbox) as h:
        raw = (await h.publish(Pinged(n=2))).encode().replace(b'"PINGED"', b'"PONGED"')
        h.transport.queues["tctf-inbox-events"].send(  # type: ignore[attr-defined]
            QueuedMessage("odd", raw, h.clock.now())
        )
        await h.settle()
        [dead] = await h.dead_letters("inbox")
    assert dead.reason is not None and "no handler for 'PONGED'" in dead.reason
    assert "PINGED" in dead.reason


async def test_failed_record_is_retried_only_after_its_visibility_timeout() -> None:
    clock = ManualClock()
    inbox = Domain("inbox", DomainSettings(visibility_timeout=60.0, retry_attempts=1))
    attempts: list[float] = []

    @inbox.on(Pinged)
    async def flaky(event: Pinged, ctx: Context) -> None:
        attempts.append(clock.now())
        if len(attempts) == 1:
            raise RuntimeError("first try fails")

    async with Harness(inbox, clock=clock) as h:
        await h.publish(Pinged(n=1))
        await h.settle()
    assert len(attempts) == 2 and attempts[1] - attempts[0] == pytest.approx(60.0, abs=0.01)


async def test_consumers_stop_when_the_harness_exits() -> None:
    inbox = Domain("inbox")

    @inbox.on(Pinged)
    async def count(event: Pinged, ctx: Context) -> None:
        pass

    with anyio.fail_after(5):
        async with Harness(inbox) as h:
            await h.publish(Pinged(n=1))
            await h.settle()
    assert len(h.handled()) == 1


def test_a_message_deleted_after_its_visibility_ran_out_is_not_delivered_again() -> None:
    clock = ManualClock()
    queue = queue_with_dlq(clock, visibility_timeout=1.0, max_receive_count=5)
    queue.send(QueuedMessage("m1", b"{}", clock.now()))
    [(message, receipt)] = queue.receive(1)
    clock.advance(1.0)
    queue.promote()  # visible again, but the slow consumer still holds a valid receipt
    assert queue.delete(message, receipt)
    assert queue.receive(1) == [] and len(queue) == 0


class SettableClock:
    """A clock a test sets to any time, backwards too (as a system clock may be stepped)."""

    def __init__(self, now: float) -> None:
        self.at = now

    def now(self) -> float:
        return self.at

    async def sleep(self, seconds: float) -> None:
        self.at += seconds


def test_received_and_extended_messages_reappear_in_the_order_their_visibility_ends() -> None:
    clock = ManualClock()
    queue = queue_with_dlq(clock, visibility_timeout=30.0, max_receive_count=5)
    for name in ("m1", "m2"):
        queue.send(QueuedMessage(name, b"{}", clock.now()))
    [_, (m2, receipt)] = queue.receive(10)
    anyio.run(queue.extend, m2, receipt, 10.0)  # visible again at 10, before m1 at 30
    clock.advance(5)
    queue.send(QueuedMessage("m3", b"{}", clock.now()))
    queue.receive(10)  # m3, visible again at 35
    clock.advance(35)

    assert [m.message_id for m, _ in queue.receive(10)] == ["m2", "m1", "m3"]


def test_a_message_received_after_the_clock_went_back_reappears_when_its_visibility_ends() -> None:
    clock = SettableClock(100.0)
    queue = MemoryQueue("q", clock=clock, visibility_timeout=30.0)
    queue.send(QueuedMessage("early", b"{}", clock.now()))
    queue.receive(10)  # visible again at 130
    clock.at = 50.0
    queue.send(QueuedMessage("late", b"{}", clock.now()))
    queue.receive(10)  # visible again at 80, sooner than the one received before it
    clock.at = 80.0

    [(late, receipt)] = queue.receive(10)
    assert late.message_id == "late" and queue.delete(late, receipt)
    assert queue.next_visible_at() == 130.0
