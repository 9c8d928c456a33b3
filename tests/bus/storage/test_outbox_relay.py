"""The relay runs as a background loop owned by a task group."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio

from bus.storage import OutboxRelay, Table, UnitOfWork

MakeTable = Callable[..., Awaitable[Table]]


async def test_run_publishes_commits_as_they_happen_until_cancelled(make_table: MakeTable) -> None:
    table = await make_table()
    seen: list[bytes] = []
    arrived = anyio.Event()

    async def publish(bodies: list[bytes]) -> None:
        seen.extend(bodies)
        if len(seen) == 2:
            arrived.set()

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(OutboxRelay(table, publish).run, 0.01)
        for n in range(2):
            async with UnitOfWork(table) as uow:
                uow.publish(f"e{n}".encode(), ordering_key="k", event_id=f"e{n}")
        with anyio.fail_after(10):
            await arrived.wait()
        tasks.cancel_scope.cancel()

    assert seen == [b"e0", b"e1"]


async def test_run_keeps_going_after_a_failed_pass(make_table: MakeTable) -> None:
    table = await make_table()
    attempts = 0
    done = anyio.Event()

    async def flaky_publish(bodies: list[bytes]) -> None:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise ConnectionError("broker unreachable")
        done.set()

    async with UnitOfWork(table) as uow:
        uow.publish(b"e", ordering_key="k", event_id="e")
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(OutboxRelay(table, flaky_publish).run, 0.01)
        with anyio.fail_after(10):
            await done.wait()
        tasks.cancel_scope.cancel()

    assert attempts == 2


async def test_a_key_whose_events_cannot_be_published_does_not_hold_back_the_others(
    make_table: MakeTable,
) -> None:
    table = await make_table()
    for key in ("stuck", "k1", "k2"):
        async with UnitOfWork(table) as uow:
            uow.publish(key.encode(), ordering_key=key, event_id=f"{key}-1")
    published: list[bytes] = []

    async def publish(bodies: list[bytes]) -> None:
        if b"stuck" in bodies:
            raise RuntimeError("topic refuses it")
        published.extend(bodies)

    relay = OutboxRelay(table, publish)
    assert await relay.relay_once() == 2
    assert sorted(published) == [b"k1", b"k2"]
    assert await relay.relay_once() == 0  # the stuck one stays pending, nothing is lost
