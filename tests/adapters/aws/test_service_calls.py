"""Signed HTTPS calls to another domain's API: SigV4 for execute-api, answers passed back
whatever their status, an unreachable API a transient error."""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
from botocore.credentials import Credentials
from pydantic import BaseModel

from adapters.aws.errors import ServiceUnreachable
from adapters.aws.service_calls import SignedServiceCalls
from adapters.lambda_.settings import LambdaSettings
from bus.errors import ConfigurationError
from bus.middleware import current_correlation_id


class Check(BaseModel):
    email: str


class Recorder(BaseHTTPRequestHandler):
    seen: list[dict[str, Any]]

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length", "0"))
        body = self.rfile.read(length)
        self.seen.append({"path": self.path, "headers": dict(self.headers), "body": body})
        status = 401 if b"refuse" in body else 200
        payload = b'{"user_id": "u-1"}'
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def api() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    seen: list[dict[str, Any]] = []
    handler = type("Handler", (Recorder,), {"seen": seen})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", seen
    finally:
        server.shutdown()
        server.server_close()


def calls(base: str) -> SignedServiceCalls:
    return SignedServiceCalls(
        {"auth_password": base},
        "eu-west-1",
        credentials=lambda: Credentials("AKIDEXAMPLE", "not-a-real-secret"),
    )


async def test_a_call_is_signed_for_execute_api_and_carries_the_correlation_id(
    api: tuple[str, list[dict[str, Any]]],
) -> None:
    base, seen = api
    token = current_correlation_id.set("req-9")
    try:
        answer = await calls(base).request("auth_password", "POST", "/check", Check(email="a@b.c"))
    finally:
        current_correlation_id.reset(token)
    [request] = seen
    headers = {k.lower(): v for k, v in request["headers"].items()}
    assert answer.status == 200 and answer.json() == {"user_id": "u-1"}
    assert request["path"] == "/check" and request["body"] == b'{"email":"a@b.c"}'
    assert re.fullmatch(
        r"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/\d{8}/eu-west-1/execute-api/aws4_request, "
        r"SignedHeaders=[a-z0-9;-]*host[a-z0-9;-]*, Signature=[0-9a-f]{64}",
        headers["authorization"],
    )
    assert "x-amz-date" in headers and headers["x-correlation-id"] == "req-9"


async def test_an_error_status_is_an_answer_not_an_exception(
    api: tuple[str, list[dict[str, Any]]],
) -> None:
    base, _ = api
    answer = await calls(base).request("auth_password", "POST", "/check", Check(email="refuse"))
    assert answer.status == 401


async def test_an_unreachable_api_is_transient_and_an_unknown_domain_a_configuration_error() -> (
    None
):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    with pytest.raises(ServiceUnreachable, match="could not be reached"):
        await calls(f"http://127.0.0.1:{port}").request("auth_password", "GET", "/")
    with pytest.raises(ConfigurationError, match="TCTF_SERVICE_URLS"):
        await calls("https://x.example").request("billing", "GET", "/")


def test_service_urls_are_read_from_the_environment_and_must_be_https() -> None:
    env = {"TCTF_DOMAIN": "auth_core"}
    urls = '{"auth_password": "https://abc.execute-api.eu-west-1.amazonaws.com"}'
    settings = LambdaSettings.from_env({**env, "TCTF_SERVICE_URLS": urls})
    assert settings.service_urls == {
        "auth_password": "https://abc.execute-api.eu-west-1.amazonaws.com"
    }
    assert LambdaSettings.from_env(env).service_urls == {}
    for bad in ('{"auth_password": "http://plain"}', "[1]", "not json"):
        with pytest.raises(ConfigurationError, match="TCTF_SERVICE_URLS"):
            LambdaSettings.from_env({**env, "TCTF_SERVICE_URLS": bad})
