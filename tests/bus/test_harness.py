"""The test harness: its clock bounds handler calls, and it redelivers what was published."""

from __future__ import annotations

import anyio
import pytest

from bus import Context, Domain, DomainSettings, Event, Task
from bus.clock import ManualClock
from bus.testing import Harness


class Charged(Event):
    type = "CHARGED"
    invoice: str


async def test_a_hanging_handler_is_cut_at_handler_timeout_of_the_test_clock() -> None:
    settings = DomainSettings()  # handler_timeout derived: 7.92 s, 3 attempts, 5 receives
    billing = Domain("billing", settings)
    started: list[float] = []

    @billing.on(Charged)
    async def send_receipt(event: Charged, ctx: Context) -> None:
        started.append(ctx.clock.now())
        await anyio.sleep_forever()

    async with Harness(billing, clock=ManualClock(bounds_handlers=True)) as h:
        with anyio.fail_after(10):  # 15 calls of 7.92 s each, were they real time
            await h.publish(Charged(invoice="i1"))
            await h.settle()
        [dead] = await h.dead_letters("billing")

    assert dead.reason is not None and "TimeoutError" in dead.reason
    assert len(started) == settings.max_receive_count * settings.retry_attempts
    assert settings.handler_timeout is not None
    first, second = started[:2]
    assert second - first == pytest.approx(settings.handler_timeout + settings.retry_backoff)


async def test_a_handler_waiting_on_the_test_clock_is_not_cut_before_its_bound() -> None:
    clock = ManualClock(bounds_handlers=True)
    billing = Domain("billing", DomainSettings(handler_timeout=5, retry_attempts=1))
    finished: list[float] = []

    @billing.on(Charged)
    async def send_receipt(event: Charged, ctx: Context) -> None:
        await ctx.clock.sleep(4.9)
        finished.append(ctx.clock.now())

    async with Harness(billing, clock=clock) as h:
        start = clock.now()
        await h.publish(Charged(invoice="i1"))
        await h.settle()
    assert finished == [pytest.approx(start + 4.9)]
    assert h.results("failed") == []


class Recount(Task):
    type = "RECOUNT"
    domain = "billing"


async def test_redeliver_hands_events_and_tasks_over_again_and_settles() -> None:
    billing = Domain("billing", sends=[Recount])
    seen: list[str] = []

    @billing.on(Charged)
    async def send_receipt(event: Charged, ctx: Context) -> None:
        seen.append(event.invoice)
        ctx.send(Recount())

    @billing.task(Recount)
    async def recount(task: Recount, ctx: Context) -> None:
        seen.append(task.type)

    async with Harness(billing) as h:
        await h.publish(Charged(invoice="i1"))
        await h.settle()
        originals = list(h.published)
        await h.redeliver(originals)
        [dead_events, dead_tasks] = [
            await h.dead_letters("billing"),
            await h.dead_letters("billing", "tasks"),
        ]
    assert seen == ["i1", "RECOUNT"]  # the copies were skipped as duplicates
    assert len(h.results("skipped")) == 4
    assert dead_events == dead_tasks == []
