"""user_message's function behind API Gateway's WebSocket API: `$connect` verified with the
token in its query string against the issuer's JWK set read by URL (refused with 401
otherwise), `$disconnect` forgetting the connection, and a DELIVER_MESSAGE task from SQS
posted to the connection through PostToConnection on the moto server.

The WebSocket events are written here in the shape AWS documents for a Lambda proxy
integration of a WebSocket API (`requestContext.routeKey`, `eventType`, `connectionId`,
`queryStringParameters`): no published sample of them is among the fixtures."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from contextlib import AsyncExitStack
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from adapters.aws.session import AwsSettings
from adapters.aws.websockets import ApiGatewayConnections
from adapters.lambda_.app import LambdaApp
from adapters.lambda_.boot import build
from adapters.tokens import JwtAuthenticator, jwks_from_url
from bus.access import TokenPolicy
from bus.clock import ManualClock
from bus.envelope import Envelope
from bus.memory import InMemoryTransport
from bus.storage.memory import InMemoryTable
from bus.topology import Topology
from domains.auth_core.keys import SigningKeys
from domains.user_message.app import domain as user_message
from domains.user_message.contracts import DeliverMessage

from .conftest import POWERTOOLS, LambdaContext, sample

POLICY = TokenPolicy(issuer="urn:tctf:auth", audience="urn:tctf:api")
NOW = 1_767_225_600.0  # 2026-01-01T00:00:00Z


@pytest.fixture
def keys() -> SigningKeys:
    return SigningKeys.generate()


@pytest.fixture
def jwks_url(keys: SigningKeys) -> Iterator[str]:
    """The issuer's key set on a loopback HTTP server, as auth_core's API serves it."""
    document = json.dumps(keys.public_jwks()).encode()

    class Jwks(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.end_headers()
            self.wfile.write(document)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Jwks)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/auth/jwks.json"
    finally:
        server.shutdown()
        thread.join()


@pytest.fixture
def function(jwks_url: str, moto_endpoint: str) -> Iterator[LambdaApp]:
    topology = Topology.from_domains([user_message])
    clock = ManualClock(NOW)
    # As the function's boot makes it: botocore, closed with the function's resources.
    aws = AwsSettings(endpoint_url=moto_endpoint, sdk="botocore")
    connections = ApiGatewayConnections(aws, moto_endpoint)
    resources = AsyncExitStack()
    resources.push_async_callback(connections.__aexit__, None, None, None)
    app = LambdaApp(
        user_message,
        InMemoryTransport(topology),
        table=InMemoryTable(topology.tables["user_message"], now=clock.now),
        clock=clock,
        connections=connections,
        authenticator=JwtAuthenticator(POLICY, jwks_from_url(jwks_url), clock),
        resources=resources,
    )
    try:
        yield app
    finally:
        app.close()


def token(keys: SigningKeys, subject: str, expires: float) -> str:
    claims = {"iss": POLICY.issuer, "aud": POLICY.audience, "sub": subject, "exp": int(expires)}
    return keys.sign(claims)


def websocket_event(kind: str, connection_id: str, query: dict[str, str] | None = None) -> Any:
    route = {"CONNECT": "$connect", "DISCONNECT": "$disconnect"}[kind]
    return {
        "headers": {"Host": "abc123.execute-api.us-east-1.amazonaws.com"},
        "queryStringParameters": query,
        "requestContext": {
            "routeKey": route,
            "eventType": kind,
            "extendedRequestId": "req-ext-1",
            "messageDirection": "IN",
            "stage": "live",
            "connectedAt": int(NOW * 1000),
            "requestTimeEpoch": int(NOW * 1000),
            "requestId": "req-1",
            "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
            "connectionId": connection_id,
            "apiId": "abc123",
        },
        "isBase64Encoded": False,
    }


def connections_of(app: LambdaApp, user_id: str) -> list[str]:
    assert isinstance(app.table, InMemoryTable)
    return sorted(
        str(i["connection_id"])
        for i in app.table.scan()
        if i["PK"] == f"USER#{user_id}" and str(i["SK"]).startswith("CONNECTION#")
    )


def test_connect_with_a_valid_token_records_the_connection_and_disconnect_forgets_it(
    function: LambdaApp, keys: SigningKeys
) -> None:
    query = {"token": token(keys, "bob", NOW + 900)}
    connected = function(websocket_event("CONNECT", "Bob1cXJ2oAMCJxw=", query), LambdaContext())
    recorded = connections_of(function, "bob")
    gone = function(websocket_event("DISCONNECT", "Bob1cXJ2oAMCJxw="), LambdaContext())
    assert connected == {"statusCode": 200}
    assert recorded == ["Bob1cXJ2oAMCJxw="]
    assert gone == {"statusCode": 200}
    assert connections_of(function, "bob") == []


def test_connect_with_an_expired_missing_or_forged_token_is_refused_401(
    function: LambdaApp, keys: SigningKeys
) -> None:
    expired = {"token": token(keys, "bob", NOW - 1)}
    forged = {"token": token(SigningKeys.generate(), "bob", NOW + 900)}
    answers = [
        function(websocket_event("CONNECT", f"conn{n}", query), LambdaContext())
        for n, query in enumerate((expired, None, forged))
    ]
    assert answers == [{"statusCode": 401, "body": "a valid access token is required"}] * 3
    assert connections_of(function, "bob") == []


def test_a_delivery_task_from_sqs_is_posted_to_the_connection_through_the_management_api(
    function: LambdaApp, keys: SigningKeys
) -> None:
    from moto.apigatewaymanagementapi.models import apigatewaymanagementapi_backends

    query = {"token": token(keys, "bob", NOW + 900)}
    assert function(websocket_event("CONNECT", "BobLive2", query), LambdaContext()) == {
        "statusCode": 200
    }
    message = {
        "message_id": "m-1",
        "conversation_id": "ada~bob",
        "sender_id": "ada",
        "recipient_id": "bob",
        "text": "hello from lambda",
        "sent_at": "2026-01-01T00:00:00.000Z",
    }
    assert isinstance(function.table, InMemoryTable)
    stored = {"PK": "CONVERSATION#ada~bob", "SK": "MESSAGE#m-1", **message}
    asyncio.run(function.table.put(stored))  # the message POST /messages stored
    task = Envelope(
        id="task-1",
        source="user_message",
        type=DeliverMessage.type,
        time="2026-01-01T00:00:00.000Z",
        dataversion=1,
        correlationid="corr-1",
        data=DeliverMessage(conversation_id="ada~bob", message_id="m-1"),
    )
    event = sample(POWERTOOLS / "sqsEvent.json")
    event["Records"] = event["Records"][:1]
    event["Records"][0]["body"] = task.encode().decode()
    record = event["Records"][0]
    record["eventSourceARN"] = "arn:aws:sqs:us-east-1:123456789012:tctf-user_message-tasks"
    assert function(event, LambdaContext()) == {"batchItemFailures": []}
    backend = apigatewaymanagementapi_backends["123456789012"]["us-east-1"]
    posted = json.loads(backend.connections["BobLive2"].data)
    assert posted == {"type": "message", "message": message}


def test_the_boot_gives_a_websocket_domain_its_connections_and_token_check() -> None:
    env = {
        "TCTF_DOMAIN": "user_message",
        "TCTF_TRANSPORT": "memory",
        "AWS_DEFAULT_REGION": "us-east-1",
        "TCTF_WEBSOCKET_ENDPOINT": "https://abc123.execute-api.us-east-1.amazonaws.com/live",
        "TCTF_TOKEN_JWKS_URL": "https://auth.example.com/auth/jwks.json",
    }
    with_both = build(env)
    without = build({k: v for k, v in env.items() if not k.startswith(("TCTF_WEB", "TCTF_TOK"))})
    other = build({**env, "TCTF_DOMAIN": "users"})
    try:
        assert isinstance(with_both.connections, ApiGatewayConnections)
        assert isinstance(with_both.authenticator, JwtAuthenticator)
        assert without.connections is None and without.authenticator is None
        assert other.connections is None and other.authenticator is None
        refused = without(websocket_event("CONNECT", "c1", {"token": "x"}), LambdaContext())
        assert refused is not None and refused["statusCode"] == 401  # closed without a key set
    finally:
        for app in (with_both, without, other):
            app.close()
