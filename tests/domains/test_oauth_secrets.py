"""After every OAuth flow, no client secret, code, verifier, token or private key appears in
any table item, any event, or any log line: secrets live only as SHA-256 digests."""

from __future__ import annotations

import logging

import orjson
import pytest

from bus.storage.memory import InMemoryTable
from domains.auth_oauth.app import provider_keys
from tests.domains.oauth import basic, pkce_pair, provider


async def test_no_oauth_secret_reaches_a_table_an_event_or_a_log_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    async with provider() as op:
        _, session = await op.member("ada@example.com")
        client = await op.register(
            grant_types=["authorization_code", "refresh_token", "client_credentials"]
        )
        verifier, challenge = pkce_pair()
        code = (await op.authorize(session["access_token"], client["client_id"], challenge)).json()
        tokens = (await op.exchange(client, code["code"], verifier)).json()
        replay = await op.exchange(client, code["code"], verifier)
        auth = basic(client["client_id"], client["client_secret"])
        own = (await op.token({"grant_type": "client_credentials"}, auth=auth)).json()
        await op.client.request(
            "POST", "/oauth/revoke", {"token": tokens["refresh_token"]}, authorization=auth
        )
        await op.h.settle()
        secrets = {
            client["client_secret"],
            code["code"],
            verifier,
            tokens["access_token"],
            tokens["refresh_token"],
            tokens["id_token"],
            own["access_token"],
            *(key.as_dict(private=True)["d"] for key in provider_keys()._keys),
        }
        items = [
            item
            for table in op.h.runtime.tables.values()
            if isinstance(table, InMemoryTable)
            for item in table.scan()
        ]
    events = [e for e in op.h.published if e.type != "SEND_EMAIL"]
    lines = [orjson.dumps(vars(r), default=str).decode() for r in caplog.records]
    assert replay.status == 400 and len(secrets) >= 8
    assert {e.type for e in events} >= {"OAUTH_GRANT_ISSUED", "OAUTH_GRANT_REVOKED"}
    for secret in secrets:
        assert not [i for i in items if secret in orjson.dumps(i, default=str).decode()]
        assert not [e for e in events if secret in e.encode().decode()]
        assert not [line for line in lines if secret in line]
