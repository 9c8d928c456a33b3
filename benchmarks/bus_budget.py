"""Where one event's time goes in the in-memory bus: microseconds per step, each timed alone.

The steps are those `benchmarks/bus_throughput.py` runs for every event (five-field event,
one subscriber, default settings): the publishing context, the envelope (id and timestamp
included), the id alone, the encode with its size check, the fan-out onto the queue, the
receive with its `Record`, the decode with its checks, the payload's validation, the
handler's context, the middleware chain (a no-op handler), the outcome's log call and the
delete. Each is timed with `timeit` over prepared inputs, by the process's CPU time, best of
`--repeat`.

    .venv/bin/python benchmarks/bus_budget.py [--number 20000] [--repeat 7]
"""

from __future__ import annotations

import argparse
import asyncio
import time
import timeit
from collections.abc import Callable
from functools import partial

from bus_throughput import OrderPlaced, order

from bus import Context, Domain, DomainSettings
from bus.dispatch import Record
from bus.envelope import Envelope
from bus.memory import InMemoryTransport
from bus.messages import Message
from bus.middleware import Delivery
from bus.runtime import Runtime

#: Process CPU time: what a step costs, whatever else the machine runs meanwhile.
cpu = time.process_time


def best(step: Callable[[], object], number: int, repeat: int) -> float:
    """Microseconds per call, best of `repeat` runs of `number` calls."""
    return min(timeit.repeat(step, number=number, repeat=repeat, timer=cpu)) / number * 1e6


def budget(number: int, repeat: int) -> list[tuple[str, float]]:
    domain = Domain("sub0", DomainSettings())

    @domain.on(OrderPlaced)
    async def handle(event: OrderPlaced, ctx: Context) -> None:
        return None

    runtime = Runtime([domain], lambda topology, clock: InMemoryTransport(topology, clock=clock))
    transport = runtime.transport
    assert isinstance(transport, InMemoryTransport)
    dispatcher = runtime.dispatchers["sub0"]
    queue = transport.queues[runtime.topology.require_queue("sub0", "events").name]
    event = order(1)
    context = runtime.context("orders")
    envelope = context.envelope_for(event)
    body = envelope.encode()
    decoded = Envelope.decode(body)
    data = decoded.data
    assert not isinstance(data, Message)
    route = dispatcher._routes[OrderPlaced.type][0]
    loop = asyncio.new_event_loop()
    rows: list[tuple[str, float]] = []

    def timed(name: str, step: Callable[[], object]) -> None:
        rows.append((name, best(step, number, repeat)))

    timed("publishing context (`runtime.context`)", partial(runtime.context, "orders"))
    timed("id generation (one UUIDv7)", runtime.ids)
    timed("envelope (id, timestamp, attributes)", partial(context.envelope_for, event))
    timed(
        "encode and size check",
        partial(transport._encode, envelope, transport.publish_limits),
    )

    def fan_out() -> None:
        transport._deliver(queue, body, envelope.type, transport.clock.now())

    def receive_and_delete() -> None:
        for message, generation in queue.receive(10):
            Record(
                message.message_id,
                message.body,
                message.receive_count,
                "events",
                message.type_attribute,
                partial(queue.extend, message, generation),
            )
            queue.delete(message, generation)

    for _ in range(number):
        fan_out()
    rows.append(("fan-out (message id, queue bookkeeping)", best(fan_out, number, 1)))
    start = cpu()
    while len(queue):
        receive_and_delete()
    rows.append(("receive, `Record` and delete", (cpu() - start) / (2 * number) * 1e6))
    queue.next_visible_at()
    timed("decode and envelope checks", partial(Envelope.decode, body))
    timed("validation (`Message.read`)", partial(OrderPlaced.read, 1, data))
    message = OrderPlaced.read(1, data)

    def handler_context() -> Context:
        return Context(
            "sub0",
            clock=dispatcher.clock,
            ids=dispatcher.ids,
            metrics=dispatcher.metrics,
            envelope=decoded,
            handler=route.subscription.name,
            sender=domain,
        )

    timed("handler context", handler_context)
    ids = iter(range(10**9))

    async def chain(count: int) -> None:
        for _ in range(count):
            fresh = decoded._replace(id=str(next(ids)))
            await route.call(Delivery(route.subscription, fresh, message, handler_context()))

    def middleware_run(count: int) -> float:
        start = cpu()
        loop.run_until_complete(chain(count))
        return (cpu() - start) / count * 1e6

    middleware_run(number)
    context_cost = dict(rows)["handler context"]
    rows.append(
        (
            "middleware chain (no-op handler; context excluded)",
            min(middleware_run(number) for _ in range(repeat)) - context_cost,
        )
    )
    outcome_record = Record("r", body)
    timed(
        "outcome and its log call (log level WARNING)",
        partial(dispatcher._observe, outcome_record, "handled", "h", decoded, None),
    )
    loop.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--number", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    import logging

    logging.getLogger("tctf").setLevel(logging.WARNING)
    rows = budget(args.number, args.repeat)
    print(f"us per event, best of {args.repeat} x {args.number:,}\n")
    print("| step | us/event |")
    print("|---|---:|")
    for name, micros in rows:
        print(f"| {name} | {micros:.2f} |")
    print(f"| **sum** | **{sum(m for n, m in rows if n != 'id generation (one UUIDv7)'):.2f}** |")


if __name__ == "__main__":
    main()
