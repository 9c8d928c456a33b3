"""Under injected duplicates, reordering and delays, the effects equal a fault-free run."""

from __future__ import annotations

from collections import Counter

import anyio
import anyio.lowlevel
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bus import Context, Domain, DomainSettings, Event
from bus.envelope import Envelope
from bus.memory import Faults
from bus.testing import Harness

#: One record per batch and two consumers per queue, so copies of an event run concurrently.
SETTINGS = DomainSettings(
    visibility_timeout=5.0, max_receive_count=3, retry_attempts=1, batch_size=1, concurrency=2
)


class Deposited(Event):
    type = "DEPOSITED"
    seq: int
    account: str
    amount: int


class Audited(Event):
    type = "AUDITED"
    seq: int
    amount: int


def bank(effects: Counter[tuple[str, int]]) -> tuple[Domain, Domain]:
    """Ledger applies deposits (refusing amounts divisible by 7) and publishes an audit."""
    ledger = Domain("ledger", SETTINGS)
    audit = Domain("audit", SETTINGS)

    @ledger.on(Deposited)
    async def apply(event: Deposited, ctx: Context) -> None:
        await anyio.lowlevel.checkpoint()  # let the other consumer interleave
        if event.amount % 7 == 0:
            raise RuntimeError("amount refused by the ledger")
        effects["ledger", event.seq] += 1
        ctx.publish(Audited(seq=event.seq, amount=event.amount))

    @audit.on(Audited)
    async def record(event: Audited, ctx: Context) -> None:
        await anyio.lowlevel.checkpoint()
        effects["audit", event.seq] += 1

    return ledger, audit


async def run(
    deposits: list[tuple[str, int]], faults: Faults, seed: int
) -> tuple[Counter[tuple[str, int]], list[str], list[str]]:
    effects: Counter[tuple[str, int]] = Counter()
    async with Harness(*bank(effects), seed=seed, faults=faults) as h:
        published = [
            await h.publish(Deposited(seq=n, account=a, amount=m), source="bank")
            for n, (a, m) in enumerate(deposits)
        ]
        await h.settle()
        dead = [Envelope.decode(d.body).id for d in await h.dead_letters("ledger")]
    return effects, [e.id for e in published], dead


deposit_lists = st.lists(
    st.tuples(st.sampled_from(["a", "b", "c"]), st.integers(min_value=1, max_value=60)),
    min_size=1,
    max_size=25,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    deposits=deposit_lists,
    seed=st.integers(min_value=0, max_value=2**32),
    duplicate_rate=st.floats(min_value=0.0, max_value=1.0),
    reorder=st.booleans(),
    max_delay=st.floats(min_value=0.0, max_value=20.0),
)
def test_faults_change_nothing_and_lose_nothing(
    deposits: list[tuple[str, int]],
    seed: int,
    duplicate_rate: float,
    reorder: bool,
    max_delay: float,
) -> None:
    faults = Faults(duplicate_rate=duplicate_rate, reorder=reorder, max_delay=max_delay)
    clean, _, clean_dead = anyio.run(run, deposits, Faults(), seed)
    faulty, published, dead = anyio.run(run, deposits, faults, seed)

    assert faulty == clean
    assert all(count == 1 for count in faulty.values()), "an effect happened twice"
    refused = [e for e, (_, amount) in zip(published, deposits, strict=True) if amount % 7 == 0]
    assert sorted(set(dead)) == sorted(refused), "every refused deposit is dead-lettered"
    assert sorted(set(clean_dead)) == sorted(refused)
    accepted = {n for n, (_, amount) in enumerate(deposits) if amount % 7}
    for kind in ("ledger", "audit"):
        assert {n for (k, n) in faulty if k == kind} == accepted, f"{kind} lost an event"


def test_same_seed_and_faults_replay_the_same_run() -> None:
    deposits = [("a", n) for n in range(1, 30)]
    faults = Faults(duplicate_rate=0.5, reorder=True, max_delay=3.0)

    async def trace(seed: int) -> list[tuple[str, str | None, str]]:
        effects: Counter[tuple[str, int]] = Counter()
        async with Harness(*bank(effects), seed=seed, faults=faults) as h:
            for n, (account, amount) in enumerate(deposits):
                await h.publish(Deposited(seq=n, account=account, amount=amount), source="bank")
            await h.settle()
        return [(o.record_id, o.handler, o.status) for o in h.outcomes]

    first = anyio.run(trace, 11)
    assert first == anyio.run(trace, 11)
    assert first != anyio.run(trace, 12)
