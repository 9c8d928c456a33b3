"""auth_oauth client registration: admins only, the secret shown once and kept as a hash,
redirect URIs and grant types checked when the client is registered."""

from __future__ import annotations

import hashlib
import logging

import orjson
import pytest

from bus.storage.memory import InMemoryTable
from tests.domains.oauth import REDIRECT_URI, provider


async def test_an_admin_registers_a_client_and_sees_its_secret_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    async with provider() as op:
        client = await op.register(scope="openid profile")
        shown = await op.call(
            "GET", f"/oauth/clients/{client['client_id']}", token=op.admin_token()
        )
        items = [
            item
            for table in op.h.runtime.tables.values()
            if isinstance(table, InMemoryTable)
            for item in table.scan()
        ]
    assert len(client["client_secret"]) >= 43 and client["confidential"] is True
    assert shown.status == 200 and "client_secret" not in shown.json()
    assert shown.json()["redirect_uris"] == [REDIRECT_URI]
    [registered] = op.h.published_of("OAUTH_CLIENT_REGISTERED")
    assert registered.data_dict()["client_id"] == client["client_id"]
    secret = client["client_secret"]
    everything = [orjson.dumps(i, default=str).decode() for i in items]
    everything += [registered.encode().decode()]
    everything += [orjson.dumps(vars(r), default=str).decode() for r in caplog.records]
    assert not [text for text in everything if secret in text]
    [stored] = [i for i in items if i["SK"] == "CLIENT"]
    assert stored["secret_hash"] == hashlib.sha256(secret.encode()).hexdigest()


async def test_a_signed_in_user_without_the_admin_role_may_not_register_a_client() -> None:
    async with provider() as op:
        _, session = await op.member("ada@example.com")
        body = {"name": "Rogue app", "redirect_uris": [REDIRECT_URI]}
        refused = await op.call("POST", "/oauth/clients", body, token=session["access_token"])
        anonymous = await op.call("POST", "/oauth/clients", body)
        peek = await op.call("GET", "/oauth/clients/x", token=session["access_token"])
    assert refused.status == 403 and anonymous.status == 401 and peek.status == 403
    assert op.h.published_of("OAUTH_CLIENT_REGISTERED") == []


@pytest.mark.parametrize(
    ("registration", "field"),
    [
        ({"redirect_uris": ["https://app.example.com/cb#frag"]}, "redirect_uris.0"),
        ({"redirect_uris": ["http://app.example.com/cb"]}, "redirect_uris.0"),
        ({"redirect_uris": ["/relative"]}, "redirect_uris.0"),
        ({"redirect_uris": []}, "(body)"),
        ({"grant_types": ["client_credentials"], "confidential": False}, "(body)"),
        ({"grant_types": ["implicit"]}, "grant_types.0"),
        ({"scope": "openid  profile"}, "scope"),
    ],
)
async def test_a_registration_that_cannot_work_is_refused_with_its_field(
    registration: dict[str, object], field: str
) -> None:
    async with provider() as op:
        body = {"name": "App", "redirect_uris": [REDIRECT_URI], **registration}
        answer = await op.call("POST", "/oauth/clients", body, token=op.admin_token())
    assert answer.status == 422, answer.json()
    assert [e["field"] for e in answer.json()["errors"]] == [field]


async def test_a_public_client_gets_no_secret_and_loopback_http_is_allowed() -> None:
    async with provider() as op:
        client = await op.register(
            confidential=False, redirect_uris=["http://127.0.0.1:8765/callback"]
        )
    assert client["client_secret"] is None and client["confidential"] is False
