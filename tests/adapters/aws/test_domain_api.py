"""`ctx.client` on AWS: typed calls to another domain's API over HTTP(S), signed with SigV4,
against a real HTTP server on loopback."""

from __future__ import annotations

import socket

import orjson
import pytest
from botocore.credentials import Credentials
from pydantic import BaseModel

from adapters.aws.domain_api import HttpsClients
from bus.client import Operation
from bus.errors import CallFailed, CallRefused, ConfigurationError
from tests.adapters.conftest import LoopbackApi


class Check(BaseModel):
    user_id: str


class Verdict(BaseModel):
    valid: bool


CHECK = Operation("passwords", "POST", "/passwords/{user_id}/check", Check, Verdict)


async def test_a_call_is_typed_encoded_correlated_and_signed(loopback_api: LoopbackApi) -> None:
    api = loopback_api
    clients = HttpsClients(
        {"passwords": api.url},
        region="eu-west-1",
        credentials=Credentials("AKID", "secret"),
    )
    client = clients("passwords", correlation_id="req-9")
    verdict = await client.call(CHECK, Check(user_id="a b"), path_params={"user_id": "a b"})
    assert verdict == Verdict(valid=True)
    ((method, path, headers, body),) = api.seen
    assert (method, path) == ("POST", "/prod/passwords/a%20b/check")
    assert orjson.loads(body) == {"user_id": "a b"}
    assert headers["x-correlation-id"] == "req-9"
    assert headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKID/")
    assert "/eu-west-1/execute-api/aws4_request" in headers["Authorization"]


async def test_refusals_failures_and_an_unreachable_api_raise_their_errors(
    loopback_api: LoopbackApi,
) -> None:
    api = loopback_api
    client = HttpsClients({"passwords": api.url})("passwords")
    api.status, api.body = (
        409,
        b'{"type": "urn:tctf:problem:conflict", "detail": "taken"}',
    )
    with pytest.raises(CallRefused, match="409 taken") as refused:
        await client.call(CHECK, Check(user_id="u"), path_params={"user_id": "u"})
    assert refused.value.problem["type"] == "urn:tctf:problem:conflict"
    api.status, api.body = 503, b"{}"
    with pytest.raises(CallFailed, match="answered 503"):
        await client.call(CHECK, Check(user_id="u"), path_params={"user_id": "u"})
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{unused.getsockname()[1]}"
    unreachable = HttpsClients({"passwords": closed})("passwords")
    with pytest.raises(CallFailed, match="could not be reached"):
        await unreachable.call(CHECK, Check(user_id="u"), path_params={"user_id": "u"})


def test_a_domain_without_a_url_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="no API URL for domain 'billing'"):
        HttpsClients({"passwords": "https://example.invalid"})("billing")
