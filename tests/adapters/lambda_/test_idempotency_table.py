"""A stateless domain's idempotency records are shared by every container of its function:
the greeter domain, on two Lambda containers each given one copy of a duplicated
USER_CREATED, queues one greeting between them."""

from __future__ import annotations

import asyncio
import itertools

import boto3

from adapters.lambda_.boot import build
from bus import Domain
from domains.users.app import domain as users
from tctf.aws import up

from .conftest import LAMBDA_GO, LambdaContext, sample
from .test_stateful import REGION, _env, _envelope

_apps = itertools.count()


def test_two_containers_of_a_stateless_domain_send_one_task_for_a_duplicated_user_created(
    moto_endpoint: str, greeter: Domain
) -> None:
    app = f"idem{next(_apps)}"
    asyncio.run(up(moto_endpoint, "sns", [users, greeter], app=app))
    containers = [build(_env(moto_endpoint, app, TCTF_DOMAIN="greeter")) for _ in range(2)]
    arn = f"arn:aws:sqs:{REGION}:123456789012:{app}-greeter-events"
    body = _envelope().encode().decode()
    try:
        for message_id, container in zip(("copy-1", "copy-2"), containers, strict=True):
            record = {**sample(LAMBDA_GO / "sqs-event.json")["Records"][0], "eventSourceARN": arn}
            event = {"Records": [{**record, "messageId": message_id, "body": body}]}
            assert container(event, LambdaContext()) == {"batchItemFailures": []}
    finally:
        for container in containers:
            container.close()

    sqs = boto3.client("sqs", endpoint_url=moto_endpoint, region_name=REGION)
    tasks = sqs.get_queue_url(QueueName=f"{app}-greeter-tasks")["QueueUrl"]
    received = sqs.receive_message(QueueUrl=tasks, MaxNumberOfMessages=10)
    assert len(received.get("Messages", [])) == 1
