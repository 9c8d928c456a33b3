"""One way to assemble a domain's dispatch, used by every runtime: in memory, the SQS worker
and Lambda.

A runtime passes only what is its own (`Services`: where output goes, the clock, ids, what
else it observes); the idempotency store, the delivery log, the per-handler metrics, tracing
and the middleware order follow from the domain and are the same everywhere.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bus.clock import Clock, SystemClock
from bus.dispatch import Dispatcher, Observer, Outcome, Publisher
from bus.domain import Domain
from bus.ids import IdGenerator
from bus.metrics import Metrics, record_outcome
from bus.middleware import IdempotencyStore, Middleware
from bus.observability import log_outcome

if TYPE_CHECKING:
    from bus.storage.table import Table


@dataclass(frozen=True, slots=True)
class Services:
    """What a runtime provides to the domains it runs."""

    publisher: Publisher
    """Where handler output goes: events to the topic or bus, tasks to their queues."""
    clock: Clock = field(default_factory=SystemClock)
    """Time for visibility, backoff, TTLs and timestamps (a `ManualClock` in tests)."""
    ids: IdGenerator = field(default_factory=IdGenerator)
    """Fresh ids (seeded only for replayable test runs)."""
    observers: Sequence[Observer] = ()
    """Told every outcome after the delivery log is (a test harness records them)."""
    middleware: Sequence[Middleware] = ()
    """Extra handler middleware, inside the idempotency check (empty: none)."""
    tracer_provider: Any | None = None
    """An OpenTelemetry tracer provider: a consumer span per handler call and a producer span
    per message it stages (`bus.tracing`). None: no spans, and OpenTelemetry stays off the
    import path (a Lambda's cold start)."""
    on_commit: Callable[[], None] | None = None
    """Called after a handler's unit of work commits events (wakes an in-process relay)."""
    handler_metrics: bool = False
    """Record the platform's metrics of every delivery (`bus.metrics.record_outcome`) in the
    dispatcher's `metrics`: for a runtime that flushes them (False: only what handlers add)."""


def assemble(
    domain: Domain,
    services: Services,
    *,
    table: Table | None = None,
    idempotency_table: Table | None = None,
    idempotency_store: IdempotencyStore | None = None,
) -> Dispatcher:
    """The dispatcher of `domain` on a runtime's `services`.

    `table` is the domain's own table (a domain that keeps state): handlers' `ctx.table`, and
    the idempotency records unless `idempotency_store` says otherwise. `idempotency_table`
    holds them for a domain without a table (`Topology.idempotency_tables`), so that every
    process running the domain sees them; with neither, they live in this process only.
    """
    records = table if table is not None else idempotency_table
    if idempotency_store is None and records is not None:
        from bus.storage.idempotency import idempotency_store_for

        idempotency_store = idempotency_store_for(domain, records, services.clock)
    metrics = Metrics(domain.name)
    observers: tuple[Observer, ...] = (log_outcome, *services.observers)
    if services.handler_metrics:
        observers = (*observers, _measure(metrics, services.clock))
    return Dispatcher(
        domain,
        services.publisher,
        clock=services.clock,
        ids=services.ids,
        idempotency_store=idempotency_store,
        middleware=_middleware(services),
        observer=_observe_all(observers),
        table=table,
        on_commit=services.on_commit,
        metrics=metrics,
    )


def _middleware(services: Services) -> tuple[Middleware, ...]:
    if services.tracer_provider is None:
        return tuple(services.middleware)
    from bus.tracing import Tracing

    return (Tracing(services.tracer_provider).middleware(), *services.middleware)


def _measure(metrics: Metrics, clock: Clock) -> Observer:
    now = clock.now
    return lambda outcome: record_outcome(metrics, outcome, now())


def _observe_all(observers: Sequence[Observer]) -> Observer:
    """One observer calling each of `observers`; written out for the usual one or two (the
    log line and the metrics), since it runs once per delivery."""
    if len(observers) == 1:
        return observers[0]
    if len(observers) == 2:
        first, second = observers

        def observe_both(outcome: Outcome) -> None:
            first(outcome)
            second(outcome)

        return observe_both

    def observe(outcome: Outcome) -> None:
        for observer in observers:
            observer(outcome)

    return observe
