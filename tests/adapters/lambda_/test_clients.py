"""A function's handlers reach other domains' APIs over HTTP(S), as TCTF_DOMAIN_URLS says:
from an HTTP route and from an event handler alike."""

from __future__ import annotations

import json

import orjson
import pytest
from pydantic import BaseModel

from adapters.aws.domain_api import HttpsClients
from adapters.lambda_.app import LambdaApp
from adapters.lambda_.boot import build
from bus import ConfigurationError, Context, Domain, Event, Request
from bus.client import Operation
from tests.adapters.conftest import LoopbackApi

from .conftest import POWERTOOLS, LambdaContext, Published, envelope, sample


class Check(BaseModel):
    user_id: str


class Verdict(BaseModel):
    valid: bool


class Reviewed(Event):
    type = "LOGIN_REVIEWED"
    user_id: str


class Verified(Event):
    type = "LOGIN_VERIFIED"
    valid: bool


CHECK = Operation("passwords", "POST", "/passwords/check", Check, Verdict)


def logins() -> Domain:
    domain = Domain("logins")

    @domain.post("/logins")
    async def log_in(request: Request[Check], ctx: Context) -> dict[str, bool]:
        verdict = await ctx.client("passwords").call(CHECK, request.body)
        return {"valid": verdict.valid}

    @domain.on(Reviewed)
    async def review(event: Reviewed, ctx: Context) -> None:
        verdict = await ctx.client("passwords").call(CHECK, Check(user_id=event.user_id))
        ctx.publish(Verified(valid=verdict.valid))

    return domain


@pytest.fixture
def app(loopback_api: LoopbackApi) -> LambdaApp:
    clients = HttpsClients({"passwords": loopback_api.url})
    return LambdaApp(logins(), Published(), clients=clients)


def test_a_route_calls_the_other_domains_api(app: LambdaApp, loopback_api: LoopbackApi) -> None:
    event = sample(POWERTOOLS / "apiGatewayProxyV2Event.json")
    event["rawPath"] = event["requestContext"]["http"]["path"] = "/logins"
    event["requestContext"]["http"]["method"] = "POST"
    event["body"], event["isBase64Encoded"] = '{"user_id": "u1"}', False
    event["headers"]["x-correlation-id"] = "req-3"
    answer = app(event, LambdaContext())
    app.close()
    assert answer is not None and (answer["statusCode"], json.loads(answer["body"])) == (
        200,
        {"valid": True},
    )
    ((_, path, headers, body),) = loopback_api.seen
    assert (path, headers["x-correlation-id"], orjson.loads(body)) == (
        "/prod/passwords/check",
        "req-3",
        {"user_id": "u1"},
    )


def test_an_event_handler_calls_the_other_domains_api(
    app: LambdaApp, loopback_api: LoopbackApi
) -> None:
    record = {
        "messageId": "m1",
        "receiptHandle": "r1",
        "body": envelope(Reviewed(user_id="u2"), correlation="c-8").encode().decode(),
        "attributes": {"ApproximateReceiveCount": "1"},
        "messageAttributes": {},
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:tctf-logins-events",
    }
    answer = app({"Records": [record]}, LambdaContext())
    app.close()
    assert answer == {"batchItemFailures": []}
    ((_, _, headers, _),) = loopback_api.seen
    assert headers["x-correlation-id"] == "c-8"


def test_domain_urls_are_read_from_the_environment() -> None:
    urls = json.dumps({"messaging_consumers": "https://abc.execute-api.eu-west-1.amazonaws.com"})
    env = {"TCTF_DOMAIN": "users", "TCTF_TRANSPORT": "memory", "AWS_REGION": "eu-west-1"}
    app = build({**env, "TCTF_DOMAIN_URLS": urls})
    app.close()
    assert isinstance(app.clients, HttpsClients)
    with pytest.raises(ConfigurationError, match="TCTF_DOMAIN_URLS must be a JSON object"):
        build({"TCTF_DOMAIN": "users", "TCTF_TRANSPORT": "memory", "TCTF_DOMAIN_URLS": "[1]"})
