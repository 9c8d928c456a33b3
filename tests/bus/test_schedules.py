"""Schedules: expressions checked at declaration, due times as EventBridge Scheduler computes
them, the topology's view, and the in-memory runtime firing each due time exactly once."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pytest

from bus import ConfigurationError, Context, Domain, Task
from bus.clock import ManualClock
from bus.envelope import Envelope
from bus.schedules import Cron, Scheduler, parse_expression
from bus.testing import Harness
from bus.topology import Topology

START = datetime(2026, 1, 1, tzinfo=UTC).timestamp()


class Tick(Task):
    type = "TICK"
    domain = "ticker"


class Other(Task):
    type = "OTHER_TICK"
    domain = "elsewhere"


def ticker(expression: str) -> tuple[Domain, list[str]]:
    domain = Domain("ticker")
    seen: list[str] = []

    @domain.task(Tick)
    async def tick(task: Tick, ctx: Context) -> None:
        assert ctx.envelope is not None
        seen.append(ctx.envelope.time)

    domain.every(expression, Tick())
    return domain, seen


def _due(expression: str, after: str) -> str:
    moment = datetime.fromisoformat(after).timestamp()
    due = parse_expression(expression).next_after(START, moment)
    return datetime.fromtimestamp(due, tz=UTC).isoformat().replace("+00:00", "Z")


@pytest.mark.parametrize(
    ("expression", "after", "due"),
    [
        ("cron(0 0 1 * ? *)", "2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z"),
        ("cron(0 0 1 * ? *)", "2026-01-15T12:00:00Z", "2026-02-01T00:00:00Z"),
        ("cron(30 9 ? * MON-FRI *)", "2026-01-02T10:00:00Z", "2026-01-05T09:30:00Z"),
        ("cron(0/15 * * * ? *)", "2026-01-01T00:07:00Z", "2026-01-01T00:15:00Z"),
        ("cron(0 12 29-31 * ? *)", "2026-02-01T00:00:00Z", "2026-03-29T12:00:00Z"),
        ("cron(0 0 1 JAN ? 2027)", "2026-06-01T00:00:00Z", "2027-01-01T00:00:00Z"),
        ("rate(1 day)", "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z"),
        ("rate(5 minutes)", "2026-01-01T00:07:00Z", "2026-01-01T00:10:00Z"),
    ],
)
def test_the_next_due_time_is_the_one_eventbridge_scheduler_fires_at(
    expression: str, after: str, due: str
) -> None:
    assert _due(expression, after) == due


@pytest.mark.parametrize(
    ("expression", "says"),
    [
        ("every day", "no schedule expression"),
        ("rate(1 days)", "singular for 1"),
        ("rate(2 day)", "singular for 1"),
        ("rate(0 minutes)", "at least 1"),
        ("rate(1 week)", "no schedule expression"),
        ("cron(0 0 * * *)", "6 fields"),
        ("cron(0 0 * * * *)", "exactly one of day-of-month and day-of-week"),
        ("cron(0 0 ? * ? *)", "exactly one of day-of-month and day-of-week"),
        ("cron(60 0 * * ? *)", "minutes '60' is not a number from 0 to 59"),
        ("cron(0 0 L * ? *)", "uses L, W or #"),
        ("cron(0 0 ? * 6#3 *)", "uses L, W or #"),
        ("cron(0 0 * 13 ? *)", "month '13'"),
        ("cron(0 5-2 * * ? *)", "runs backwards"),
    ],
)
def test_a_bad_expression_is_refused_at_declaration_saying_why(expression: str, says: str) -> None:
    with pytest.raises(ConfigurationError, match=says):
        ticker(expression)


def test_a_domain_schedules_only_its_own_tasks_and_only_ones_it_consumes() -> None:
    domain = Domain("ticker")
    with pytest.raises(ConfigurationError, match="task of domain ticker"):
        domain.every("rate(1 hour)", Other())
    domain.every("rate(1 hour)", Tick())
    with pytest.raises(ConfigurationError, match="declared twice"):
        domain.every("rate(2 hours)", Tick())
    with pytest.raises(ConfigurationError, match=r"add @ticker.task\(Tick\)"):
        Topology.from_domains([domain])


def test_the_topology_lists_each_schedule_with_its_target_queue_and_input() -> None:
    domain, _ = ticker("cron(0 0 1 * ? *)")
    topology = Topology.from_domains([domain], app="shop")
    [spec] = topology.schedules
    assert (spec.name, spec.expression, spec.task_type, spec.queue, dict(spec.payload)) == (
        "shop-ticker-tick",
        "cron(0 0 1 * ? *)",
        "TICK",
        "shop-ticker-tasks",
        {},
    )
    assert "shop-ticker-tick  cron(0 0 1 * ? *)  TICK" in topology.render_table()


async def test_advancing_the_clock_fires_each_due_time_exactly_once() -> None:
    domain, seen = ticker("rate(1 day)")
    clock = ManualClock(START)
    async with Harness(domain, clock=clock) as h:
        await h.settle()
        nothing_yet = list(seen)
        clock.advance(86400 - 1)
        await h.settle()
        still_nothing = list(seen)
        clock.advance(1)
        await h.settle()
        await h.settle()
        clock.advance(2 * 86400 + 3600)
        await h.settle()
    assert nothing_yet == [] and still_nothing == []
    assert seen == [
        "2026-01-02T00:00:00.000Z",
        "2026-01-03T00:00:00.000Z",
        "2026-01-04T00:00:00.000Z",
    ]
    assert [e.source for e in h.published_of("TICK")] == ["aws.scheduler"] * 3


async def test_a_firing_delivered_twice_is_handled_once() -> None:
    domain, seen = ticker("rate(1 hour)")
    clock = ManualClock(START)
    async with Harness(domain, clock=clock) as h:
        clock.advance(3600)
        await h.settle()
        [fired] = h.published_of("TICK")
        await h.runtime.publisher.send([fired, fired])
        await h.settle()
    assert seen == ["2026-01-01T01:00:00.000Z"]


def test_cron_fields_accept_names_lists_ranges_and_steps() -> None:
    timing = parse_expression("cron(0,30 8-10/2 ? JAN,MAR SUN,SAT *)")
    assert isinstance(timing, Cron)
    assert timing.minutes == {0, 30} and timing.hours == {8, 10}
    assert timing.months == {1, 3} and timing.days_of_week == frozenset({1, 7})


async def test_a_running_runtime_fires_what_its_clock_makes_due_without_moving_it() -> None:
    import anyio

    from bus.memory import in_memory
    from bus.runtime import Runtime

    domain = Domain("ticker")
    fired = anyio.Event()

    @domain.task(Tick)
    async def tick(task: Tick, ctx: Context) -> None:
        fired.set()

    domain.every("rate(1 hour)", Tick())
    clock = ManualClock(START)
    runtime = Runtime([domain], in_memory(seed=1), clock=clock, schedule_interval=0.01)
    async with runtime.running():
        clock.advance(3600)
        with anyio.fail_after(5):
            await fired.wait()
    assert clock.now() == START + 3600


async def test_a_firing_whose_send_failed_is_sent_at_the_next_look() -> None:
    sent: list[list[str]] = []
    outage = [ConnectionError("the task queue is unreachable")]

    async def send(envelopes: Sequence[Envelope]) -> None:
        if outage:
            raise outage.pop()
        sent.append([e.time for e in envelopes])

    domain, _ = ticker("rate(1 hour)")
    clock = ManualClock(START)
    scheduler = Scheduler(domain.schedules, send, clock)
    clock.advance(3600)
    with pytest.raises(ConnectionError):
        await scheduler.fire_due()
    assert await scheduler.fire_due() == 1
    assert await scheduler.fire_due() == 0
    assert sent == [["2026-01-01T01:00:00.000Z"]]


async def test_a_look_at_the_schedules_returns_only_once_what_is_due_was_sent() -> None:
    """A settle fires what is due and then waits for the queues: a look that returned while
    the runtime's ticker was still sending the same firing would let it settle too soon."""
    import anyio

    sending, release = anyio.Event(), anyio.Event()
    sent: list[str] = []

    async def send(envelopes: Sequence[Envelope]) -> None:
        sending.set()
        await release.wait()
        sent.extend(e.time for e in envelopes)

    domain, _ = ticker("rate(1 hour)")
    clock = ManualClock(START)
    scheduler = Scheduler(domain.schedules, send, clock)
    clock.advance(3600)
    async with anyio.create_task_group() as group:
        group.start_soon(scheduler.fire_due)  # the ticker's look
        await sending.wait()
        group.start_soon(_set, release)
        await scheduler.fire_due()  # settle's look
        sent_when_it_returned = list(sent)
    assert sent_when_it_returned == ["2026-01-01T01:00:00.000Z"]


async def _set(event: Any) -> None:
    event.set()
