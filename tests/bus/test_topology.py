"""The topology derived from domains, and the AWS filters it generates."""

from __future__ import annotations

from typing import Any

import pytest

from bus import ConfigurationError, Context, Domain, DomainSettings, Event, Task
from bus.routing import InvalidFilterPolicy, compile_event_pattern, compile_filter_policy
from bus.topology import Topology


class Signed(Event):
    type = "SIGNED"
    plan: str


class Left(Event):
    type = "LEFT"
    user: str


class Invoice(Task):
    type = "INVOICE"
    domain = "billing"
    user: str


def billing() -> Domain:
    domain = Domain("billing", DomainSettings(visibility_timeout=45, max_receive_count=4))

    @domain.on(Signed, where={"plan": ["pro", "team"]})
    async def upgrade(event: Signed, ctx: Context) -> None: ...

    @domain.on(Left)
    async def close(event: Left, ctx: Context) -> None: ...

    @domain.task(Invoice)
    async def invoice(task: Invoice, ctx: Context) -> None: ...

    return domain


def test_each_domain_gets_an_events_queue_and_a_task_queue_with_dlqs() -> None:
    topology = Topology.from_domains([billing()], app="acme")
    events = topology.queue("billing", "events")
    tasks = topology.queue("billing", "tasks")
    assert events is not None and tasks is not None
    assert (events.name, events.dlq, events.message_types) == (
        "acme-billing-events",
        "acme-billing-events-dlq",
        ("LEFT", "SIGNED"),
    )
    assert (events.visibility_timeout, events.max_receive_count) == (45, 4)
    assert tasks.message_types == ("INVOICE",)
    assert topology.task_queue_for("INVOICE") == tasks
    with pytest.raises(ConfigurationError, match="no domain consumes task 'NOPE'"):
        topology.task_queue_for("NOPE")


def test_generated_filter_policy_lets_exactly_the_handled_events_through() -> None:
    topology = Topology.from_domains([billing()])
    policy, scope = topology.filter_policy("tctf-billing-events")
    assert scope == "MessageBody"
    match = compile_filter_policy(policy, scope).match
    assert match(body={"type": "LEFT", "data": {"user": "u"}})
    assert match(body={"type": "SIGNED", "data": {"plan": "pro"}})
    assert not match(body={"type": "SIGNED", "data": {"plan": "free"}})
    assert not match(body={"type": "OTHER", "data": {}})


def test_generated_event_pattern_lets_exactly_the_handled_events_through() -> None:
    topology = Topology.from_domains([billing()])
    match = compile_event_pattern(topology.event_pattern("tctf-billing-events")).match
    assert match({"detail-type": "LEFT", "detail": {"data": {}}})
    assert match({"detail-type": "SIGNED", "detail": {"data": {"plan": "team"}}})
    assert not match({"detail-type": "SIGNED", "detail": {"data": {"plan": "free"}}})


def test_without_content_filters_the_type_attribute_decides() -> None:
    domain = Domain("audit")

    @domain.on(Left)
    async def record(event: Left, ctx: Context) -> None: ...

    policy, scope = Topology.from_domains([domain]).filter_policy("tctf-audit-events")
    assert (policy, scope) == ({"type": ["LEFT"]}, "MessageAttributes")


def test_invalid_where_patterns_fail_at_registration() -> None:
    domain = Domain("audit")
    with pytest.raises(Exception, match="not valid"):
        domain.on(Left, where={"user": "not-an-array"})


def test_duplicate_domain_names_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="unique: billing"):
        Topology.from_domains([billing(), billing()])


def test_topology_renders_as_a_table() -> None:
    table = Topology.from_domains([billing()]).render_table()
    assert "tctf-billing-events-dlq" in table and "billing.upgrade" in table
    assert "{'plan': ['pro', 'team']}" in table


def test_a_task_goes_to_its_domains_queue_even_when_that_domain_runs_elsewhere() -> None:
    orders = Domain("orders")

    @orders.on(Left)
    async def bill(event: Left, ctx: Context) -> None: ...

    topology = Topology.from_domains([orders], app="acme")  # a Lambda's view: orders only
    assert topology.task_queue_name("INVOICE", Invoice.domain) == "acme-billing-tasks"


def test_a_filter_sns_cannot_express_is_refused_at_registration() -> None:
    domain = Domain("audit")
    with pytest.raises(InvalidFilterPolicy, match="wildcard"):
        domain.on(Left, where={"user": [{"wildcard": "*@corp.com"}]})


def test_a_queues_combined_filters_must_stay_within_snss_limits() -> None:
    domain = Domain("audit")
    for n in range(6):

        @domain.on(Left, where={"user": [f"u{n}-{m}" for m in range(30)]}, name=f"h{n}")
        async def handler(event: Left, ctx: Context) -> None: ...

    with pytest.raises(InvalidFilterPolicy, match="Filter policy is too complex"):
        Topology.from_domains([domain])


def test_settings_refuse_a_delivery_that_can_outlast_its_visibility_timeout() -> None:
    with pytest.raises(ConfigurationError, match=r"may take 31.5s .* longer than the 30s"):
        DomainSettings(handler_timeout=10, retry_attempts=3, retry_backoff=0.5)
    DomainSettings(handler_timeout=9, retry_attempts=3, retry_backoff=0.5)


@pytest.mark.parametrize(
    ("visibility", "attempts", "backoff"), [(30.0, 3, 0.1), (1.0, 1, 0.1), (900.0, 5, 2.0)]
)
def test_a_handler_is_bounded_by_default_to_fit_its_visibility_timeout(
    visibility: float, attempts: int, backoff: float
) -> None:
    settings = DomainSettings(
        visibility_timeout=visibility, retry_attempts=attempts, retry_backoff=backoff
    )
    assert settings.handler_timeout is not None
    worst = attempts * settings.handler_timeout + backoff * (2 ** (attempts - 1) - 1)
    assert 0.7 * visibility < worst < visibility


def test_settings_whose_backoff_alone_outlasts_the_visibility_timeout_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="no time is left to run the handler"):
        DomainSettings(visibility_timeout=1.0, retry_attempts=3, retry_backoff=0.5)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"visibility_timeout": 43_201}, r"visibility_timeout is at most 43200s"),
        ({"concurrency": 1001}, r"concurrency is at most 1000"),
    ],
)
def test_settings_refuse_what_sqs_or_lambda_would(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        DomainSettings(**settings)
    DomainSettings(visibility_timeout=43_200, concurrency=1000)


def test_the_topology_records_the_task_queues_each_domain_may_send_to() -> None:
    shop = Domain("shop", sends=[Invoice])
    quiet = Domain("quiet")

    topology = Topology.from_domains([shop, quiet, billing()])

    assert topology.task_queues_sent_by("shop") == ("tctf-billing-tasks",)
    assert topology.task_queues_sent_by("quiet") == ()
    assert topology.task_queues_sent_by("billing") == ()


def test_a_domain_declares_task_classes_only() -> None:
    with pytest.raises(ConfigurationError, match="sends= takes Task subclasses"):
        Domain("shop", sends=[Signed])  # type: ignore[list-item]


async def test_sending_an_undeclared_task_is_refused_wherever_the_domain_sends_from() -> None:
    from bus.testing import Harness

    shop = Domain("shop")
    async with Harness(shop, billing()) as h:
        with pytest.raises(ConfigurationError, match=r"sends=\[Invoice\]"):
            h.runtime.context("shop").send(Invoice(user="u1"))
        await h.send(Invoice(user="u1"))  # a test is no domain: it may send anything
        await h.settle()
    assert [o.handler for o in h.handled()] == ["billing.invoice"]
