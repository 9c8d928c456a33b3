"""A handler in Lambda extends its record's visibility, as Lambda users do with
ChangeMessageVisibility, through the function's own SQS client (moto server)."""

from __future__ import annotations

import uuid
from typing import Any

import boto3

from adapters.aws.dead_letters import SqsDeadLetters
from adapters.aws.poller import lambda_sqs_event
from adapters.lambda_.app import LambdaApp
from bus import Context, Domain

from .conftest import ItemReserved, LambdaContext, Published, body

REGION = "us-east-1"


class AsyncSqs:
    """boto3's SQS client behind the awaitable calls the function's own client offers."""

    def __init__(self, endpoint: str) -> None:
        self._sqs = boto3.client("sqs", endpoint_url=endpoint, region_name=REGION)

    def __getattr__(self, name: str) -> Any:
        call = getattr(self._sqs, name)

        async def awaited(**kwargs: Any) -> Any:
            return call(**kwargs)

        return awaited


def test_a_handler_in_lambda_extends_its_records_visibility(
    moto_endpoint: str, published: Published
) -> None:
    domain = Domain("long")
    finished: list[str] = []

    @domain.on(ItemReserved)
    async def reserve(event: ItemReserved, ctx: Context) -> None:
        await ctx.extend_visibility(600)
        finished.append(event.sku)

    sqs = boto3.client("sqs", endpoint_url=moto_endpoint, region_name=REGION)
    name = f"vis{uuid.uuid4().hex[:8]}-long-events"
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody=body("A-1"))
    # Received visible again at once: only the handler's extension can hide it now.
    received = sqs.receive_message(QueueUrl=url, VisibilityTimeout=0, AttributeNames=["All"])
    event = lambda_sqs_event(
        received["Messages"], f"arn:aws:sqs:{REGION}:000000000000:{name}", REGION
    )

    async def opened() -> AsyncSqs:
        return AsyncSqs(moto_endpoint)

    app = LambdaApp(domain, published, dead_letters=SqsDeadLetters(opened))
    try:
        answer = app(event, LambdaContext())
    finally:
        app.close()

    assert answer == {"batchItemFailures": []}
    assert finished == ["A-1"]
    assert "Messages" not in sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0)
