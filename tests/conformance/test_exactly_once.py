"""Exactly-once effects under retries and timeouts, on every transport: a committed unit of
work never runs again, and what it sends leaves with it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import anyio

from bus import Context, Domain, DomainSettings, Event, Rejected, Storage, Task
from bus.clock import ManualClock
from bus.memory import InMemoryTransport, MemoryQueue
from bus.testing import Harness

Build = Callable[..., Harness]


class Deposited(Event):
    type = "EO_DEPOSITED"
    account: str
    amount: int


class IssueReceipt(Task):
    type = "EO_ISSUE_RECEIPT"
    domain = "receipts"
    account: str
    amount: int


class ReceiptIssued(Event):
    type = "EO_RECEIPT_ISSUED"
    account: str


#: Short enough that a record failed on moto comes back within the test.
VISIBILITY_TIMEOUT = 2


def wallet(fail_after_commit: int) -> Domain:
    """Credits each deposit and sends a receipt in one unit of work, then fails
    `fail_after_commit` times (a connection dropped after the commit)."""
    settings = DomainSettings(visibility_timeout=VISIBILITY_TIMEOUT)
    domain = Domain("wallet", settings, storage=Storage(), sends=[IssueReceipt])
    failures = [fail_after_commit]

    @domain.on(Deposited)
    async def credit(event: Deposited, ctx: Context) -> None:
        async with ctx.unit_of_work() as uow:
            uow.update({"PK": f"ACCOUNT#{event.account}", "SK": "BALANCE"}, add={"balance": 10})
            uow.send(IssueReceipt(account=event.account, amount=event.amount))
        if failures[0]:
            failures[0] -= 1
            raise ConnectionError("connection reset after the commit")

    return domain


def receipts(issued: Counter[str]) -> Domain:
    domain = Domain("receipts")

    @domain.task(IssueReceipt)
    async def issue(task: IssueReceipt, ctx: Context) -> None:
        issued[task.account] += 1
        ctx.publish(ReceiptIssued(account=task.account))

    return domain


async def _balance(h: Harness, account: str) -> int:
    item = await h.runtime.tables["wallet"].get({"PK": f"ACCOUNT#{account}", "SK": "BALANCE"})
    assert item is not None
    return int(item["balance"])


async def test_a_handler_failing_after_its_commit_is_not_run_again_and_its_task_leaves(
    harness: Build,
) -> None:
    issued: Counter[str] = Counter()
    async with harness(wallet(fail_after_commit=3), receipts(issued)) as h:
        await h.publish(Deposited(account="a1", amount=10))
        await h.settle()
        balance = await _balance(h, "a1")
        dead = await h.dead_letters("wallet")

    assert balance == 10
    assert issued == {"a1": 1}
    assert dead == []


async def test_a_handler_timing_out_after_its_commit_does_not_commit_again(
    harness: Build,
) -> None:
    settings = DomainSettings(visibility_timeout=VISIBILITY_TIMEOUT, handler_timeout=0.2)
    domain = Domain("wallet", settings, storage=Storage())
    slow = [True]

    @domain.on(Deposited)
    async def credit(event: Deposited, ctx: Context) -> None:
        async with ctx.unit_of_work() as uow:
            uow.update({"PK": f"ACCOUNT#{event.account}", "SK": "BALANCE"}, add={"balance": 10})
        if slow[0]:
            slow[0] = False
            await anyio.sleep(5)  # outlives handler_timeout once the effect is committed

    async with harness(domain) as h:
        await h.publish(Deposited(account="a2", amount=10))
        await h.settle()
        balance = await _balance(h, "a2")

    assert balance == 10


class Joined(Event):
    type = "EO_JOINED"
    member: str


async def test_a_record_redriven_a_day_later_does_not_repeat_the_handler_that_succeeded() -> None:
    domain = Domain("loyalty", storage=Storage())
    broken = [True]

    @domain.on(Joined)
    async def award(event: Joined, ctx: Context) -> None:
        async with ctx.unit_of_work() as uow:
            uow.update({"PK": f"MEMBER#{event.member}", "SK": "POINTS"}, add={"points": 100})

    @domain.on(Joined)
    async def welcome(event: Joined, ctx: Context) -> None:
        if broken[0]:
            raise Rejected("the welcome template is missing")

    clock = ManualClock()
    async with Harness(domain, clock=clock) as h:
        await h.publish(Joined(member="m1"))
        await h.settle()
        assert len(await h.dead_letters("loyalty")) == 1
        clock.advance(25 * 3600)  # mended the next day
        broken[0] = False
        assert await h.redrive("loyalty") == 1
        await h.settle()
        item = await h.runtime.tables["loyalty"].get({"PK": "MEMBER#m1", "SK": "POINTS"})

    assert item is not None and item["points"] == 100
    assert [o.status for o in h.results(handler="loyalty.award")] == ["handled", "skipped"]


def _outliving(extend: bool) -> tuple[Domain, list[str]]:
    """A wallet whose first call outlives the 30 s visibility timeout: while it works, the
    record becomes visible again and a second consumer may take it."""
    domain = Domain("wallet", DomainSettings(visibility_timeout=30), storage=Storage())
    calls: list[str] = []
    second_done = anyio.Event()

    @domain.on(Deposited)
    async def credit(event: Deposited, ctx: Context) -> None:
        calls.append("call")
        if len(calls) == 1:
            if extend:
                await ctx.extend_visibility(60)
            await ctx.clock.sleep(31)  # long work; the manual clock passes the timeout
            queue = _wallet_queue[0]
            queue.promote()
            queue.notify()
            with anyio.move_on_after(0.5):  # the second copy, if any, runs meanwhile
                await second_done.wait()
        async with ctx.unit_of_work() as uow:
            uow.update({"PK": f"ACCOUNT#{event.account}", "SK": "BALANCE"}, add={"balance": 10})
        if len(calls) > 1:
            second_done.set()

    return domain, calls


_wallet_queue: list[MemoryQueue] = []


async def _run_outliving(extend: bool) -> tuple[int, list[str], list[str | None]]:
    domain, calls = _outliving(extend)
    async with Harness(domain) as h:
        assert isinstance(h.transport, InMemoryTransport)
        _wallet_queue[:] = [h.transport.queues[h.topology.require_queue("wallet", "events").name]]
        await h.publish(Deposited(account="a3", amount=10))
        await h.settle()
        balance = await _balance(h, "a3")
    return balance, calls, [o.error for o in h.results("failed")]


async def test_a_handler_that_lost_its_claim_to_a_second_copy_cannot_commit() -> None:
    balance, calls, errors = await _run_outliving(extend=False)

    assert balance == 10
    assert len(calls) == 2
    assert len(errors) == 1 and errors[0] is not None and "ClaimLost" in errors[0]


async def test_a_handler_that_extends_its_visibility_runs_once() -> None:
    balance, calls, errors = await _run_outliving(extend=True)

    assert balance == 10
    assert calls == ["call"]
    assert errors == []


async def test_a_handler_extending_its_visibility_outlives_the_timeout_and_runs_once(
    harness: Build,
) -> None:
    settings = DomainSettings(visibility_timeout=VISIBILITY_TIMEOUT)
    domain = Domain("wallet", settings, storage=Storage())
    calls: list[str] = []

    @domain.on(Deposited)
    async def credit(event: Deposited, ctx: Context) -> None:
        calls.append(event.account)
        await ctx.extend_visibility(20)
        await anyio.sleep(3)  # past the visibility timeout the record was received with
        async with ctx.unit_of_work() as uow:
            uow.update({"PK": f"ACCOUNT#{event.account}", "SK": "BALANCE"}, add={"balance": 10})

    async with harness(domain) as h:
        await h.publish(Deposited(account="a4", amount=10))
        await h.settle()
        balance = await _balance(h, "a4")

    assert balance == 10
    assert calls == ["a4"]
    assert h.results("failed") == []
