"""A Lambda SQS batch claims its records' idempotency keys in one DynamoDB call and records
the handled ones in one more, with the per-record results of claiming one at a time:
duplicates are handled once, within a batch or across two containers' batches, and a record
another container holds is retried, not handled. Calls are counted by a botocore event hook
on the function's own DynamoDB client, so what is counted is what reached moto."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from adapters.aws.dead_letters import MemoryDeadLetters
from adapters.aws.dynamodb import DynamoTable
from adapters.aws.provision import create_table
from adapters.aws.queues import QueueTransport
from adapters.aws.session import AwsClients, AwsSettings
from adapters.lambda_.app import LambdaApp
from adapters.lambda_.boot import build
from bus import Context, Domain, Event
from bus.envelope import Envelope
from bus.middleware import idempotency_key
from bus.storage import TableIdempotencyStore
from bus.topology import Topology
from domains.users.app import domain as users
from domains.users.contracts import UserCreated
from tctf.aws import up

from .conftest import LAMBDA_GO, LambdaContext, Published, sample
from .test_stateful import REGION, _env, _envelope

_apps = itertools.count()


def _count_dynamodb_calls(app: LambdaApp) -> list[str]:
    """Every DynamoDB API call the function makes from now on, by operation name."""
    calls: list[str] = []
    transport = app.publisher
    assert isinstance(transport, QueueTransport)
    client = asyncio.run(transport.client("dynamodb"))

    def count(model: Any, **_: Any) -> None:
        calls.append(model.name)

    client.meta.events.register("before-call.dynamodb", count)
    return calls


def _batch(app: str, envelopes: list[Envelope], prefix: str = "m") -> dict[str, Any]:
    arn = f"arn:aws:sqs:{REGION}:123456789012:{app}-greeter-events"
    record = {**sample(LAMBDA_GO / "sqs-event.json")["Records"][0], "eventSourceARN": arn}
    return {
        "Records": [
            {**record, "messageId": f"{prefix}{n}", "body": envelope.encode().decode()}
            for n, envelope in enumerate(envelopes)
        ]
    }


def _emails_queued(endpoint: str, app: str) -> int:
    sqs = boto3.client("sqs", endpoint_url=endpoint, region_name=REGION)
    url = sqs.get_queue_url(QueueName=f"{app}-greeter-tasks")["QueueUrl"]
    return int(
        sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])[
            "Attributes"
        ]["ApproximateNumberOfMessages"]
    )


@pytest.fixture
def app_name(moto_endpoint: str, greeter: Domain) -> str:
    name = f"batch{next(_apps)}"
    asyncio.run(up(moto_endpoint, "sns", [users, greeter], app=name))
    return name


@pytest.fixture
def container(moto_endpoint: str, app_name: str, greeter: Domain) -> Iterator[LambdaApp]:
    """One container of the stateless greeter's function, as Lambda would start it."""
    app = build(_env(moto_endpoint, app_name, TCTF_DOMAIN="greeter"))
    yield app
    app.close()


def test_a_batch_of_ten_costs_two_dynamodb_calls(
    moto_endpoint: str, app_name: str, container: LambdaApp
) -> None:
    calls = _count_dynamodb_calls(container)
    envelopes = [_envelope(f"u{n}") for n in range(10)]

    assert container(_batch(app_name, envelopes), LambdaContext()) == {"batchItemFailures": []}

    assert calls == ["TransactWriteItems", "TransactWriteItems"]  # claim all, then record all
    assert _emails_queued(moto_endpoint, app_name) == 10


def test_a_record_duplicated_in_its_batch_is_handled_once_in_the_same_two_calls(
    moto_endpoint: str, app_name: str, container: LambdaApp
) -> None:
    calls = _count_dynamodb_calls(container)
    envelopes = [_envelope(f"u{n}") for n in range(9)] + [_envelope("u4")]

    assert container(_batch(app_name, envelopes), LambdaContext()) == {"batchItemFailures": []}

    assert calls == ["TransactWriteItems", "TransactWriteItems"]
    assert _emails_queued(moto_endpoint, app_name) == 9


def test_a_record_another_container_holds_is_retried_not_handled(
    moto_endpoint: str, app_name: str, container: LambdaApp, greeter: Domain
) -> None:
    spec = Topology.from_domains([greeter], app=app_name).idempotency_tables["greeter"]
    handler = next(s.name for s in greeter.subscriptions if s.message is UserCreated)

    async def held_by_another_container() -> None:
        async with DynamoTable(spec, endpoint_url=moto_endpoint, region_name=REGION) as table:
            other = TableIdempotencyStore(table)
            key = idempotency_key(handler, _envelope("u3").id)
            assert await other.claim(key, lease=300, token="other-container") == "claimed"

    asyncio.run(held_by_another_container())
    calls = _count_dynamodb_calls(container)
    envelopes = [_envelope(f"u{n}") for n in range(10)]

    response = container(_batch(app_name, envelopes), LambdaContext())

    assert response == {"batchItemFailures": [{"itemIdentifier": "m3"}]}
    assert _emails_queued(moto_endpoint, app_name) == 9
    # The all-or-none claim is refused for u3 alone: the nine are claimed again, u3 looked up.
    assert calls == ["TransactWriteItems", "TransactWriteItems", "GetItem", "TransactWriteItems"]


class SignedUp(Event):
    type = "BC_SIGNED_UP"
    user: str


def _mailer(sent: list[str], waiting: asyncio.Event | None, gate: asyncio.Event | None) -> Domain:
    """One container's copy of a stateless domain that e-mails each sign-up; with a gate, its
    handler for u0 waits until the gate opens (the container is busy with its batch)."""
    domain = Domain("mailer")

    @domain.on(SignedUp)
    async def welcome(event: SignedUp, ctx: Context) -> None:
        if gate is not None and waiting is not None and event.user == "u0":
            waiting.set()
            await gate.wait()
        sent.append(event.user)

    return domain


def _signups(users: list[str], prefix: str) -> dict[str, Any]:
    records = []
    for n, user in enumerate(users):
        envelope = Envelope(
            id=f"evt-{user}",
            source="accounts",
            type=SignedUp.type,
            time="2026-01-01T00:00:00.000Z",
            dataversion=1,
            correlationid=f"corr-{user}",
            data=SignedUp(user=user),
        )
        records.append(
            {
                "messageId": f"{prefix}{n}",
                "receiptHandle": "handle",
                "body": envelope.encode().decode(),
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "eventSource": "aws:sqs",
                "eventSourceARN": f"arn:aws:sqs:{REGION}:123456789012:mail-mailer-events",
                "awsRegion": REGION,
            }
        )
    return {"Records": records}


def test_a_record_in_two_containers_concurrent_batches_is_handled_once(
    moto_endpoint: str,
) -> None:
    sent: list[str] = []
    spec = Topology.from_domains([_mailer(sent, None, None)], app=f"mail{next(_apps)}")
    records = spec.idempotency_tables["mailer"]
    answers: dict[str, Any] = {}
    calls: dict[str, list[str]] = {"a": [], "b": []}
    containers: dict[str, LambdaApp] = {}

    async def scenario() -> None:
        waiting, gate = asyncio.Event(), asyncio.Event()
        settings = AwsSettings(endpoint_url=moto_endpoint, region_name=REGION, sdk="botocore")
        async with AwsClients(settings) as a_clients, AwsClients(settings) as b_clients:
            for name, clients, domain in (
                ("a", a_clients, _mailer(sent, waiting, gate)),
                ("b", b_clients, _mailer(sent, None, None)),
            ):
                client = await clients.client("dynamodb")
                if name == "a":
                    await create_table(records, client=client)
                client.meta.events.register(
                    "before-call.dynamodb",
                    lambda model, _calls=calls[name], **_: _calls.append(model.name),
                )
                store = TableIdempotencyStore(DynamoTable(records, client=client))
                containers[name] = LambdaApp(
                    domain, Published(), dead_letters=MemoryDeadLetters(), idempotency_store=store
                )

            async def second_container() -> None:
                await waiting.wait()  # the first container has claimed its batch, and works
                answers["b"] = await containers["b"].handle(
                    _signups(["dup", "u2", "u3"], "b"), LambdaContext()
                )
                gate.set()

            first = containers["a"].handle(_signups(["u0", "dup", "u1"], "a"), LambdaContext())
            answers["a"], _ = await asyncio.gather(first, second_container())
            # SQS delivers the refused copy again once its visibility timeout has passed.
            answers["b again"] = await containers["b"].handle(
                _signups(["dup"], "b"), LambdaContext()
            )

    try:
        asyncio.run(scenario())
    finally:
        for container in containers.values():
            container.close()

    assert answers["a"] == {"batchItemFailures": []}
    assert answers["b"] == {"batchItemFailures": [{"itemIdentifier": "b0"}]}
    assert answers["b again"] == {"batchItemFailures": []}  # skipped: the first recorded it
    assert sorted(sent) == ["dup", "u0", "u1", "u2", "u3"]
    assert calls["a"] == ["TransactWriteItems", "TransactWriteItems"]
    assert calls["b"] == [
        "TransactWriteItems",  # refused for dup, which the first container holds
        "TransactWriteItems",  # u2 and u3 claimed
        "GetItem",  # dup: in progress, not done
        "TransactWriteItems",  # u2 and u3 recorded
        "PutItem",  # a batch of one claims as before: refused, dup is done
        "GetItem",
    ]
