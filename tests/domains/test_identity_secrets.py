"""After every identity flow, no password, token or key appears in any table item, any
event, or any log line: secrets live only as hashes, and one-time links travel only inside
the SEND_EMAIL task to messaging."""

from __future__ import annotations

import logging

import orjson
import pyotp
import pytest

from bus.storage.memory import InMemoryTable
from domains.auth_core.app import signing_keys
from domains.auth_mfa.app import domain as auth_mfa
from tests.domains.identity import PASSWORD, Identity, identity

NEW_PASSWORD = "a different long passphrase"
LAST_PASSWORD = "the third long passphrase"


async def test_no_secret_reaches_a_table_an_event_or_a_log_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    secrets: set[str] = {PASSWORD, NEW_PASSWORD, LAST_PASSWORD}
    async with identity(auth_mfa) as idp:
        user_id, session = await idp.member("ada@example.com")
        secrets |= {session["access_token"], session["refresh_token"]}
        rotated = await idp.call(
            "POST", "/auth/sessions/refresh", {"refresh_token": session["refresh_token"]}
        )
        secrets |= {rotated.json()["access_token"], rotated.json()["refresh_token"]}
        await idp.call("POST", "/auth/password/reset-requests", {"email": "ada@example.com"})
        await idp.h.settle()
        [reset_token] = idp.links("reset-password")
        await idp.call(
            "POST", "/auth/password/reset", {"token": reset_token, "password": NEW_PASSWORD}
        )
        await idp.h.settle()
        await idp.sign_in("ada@example.com", "a wrong password entirely")
        again = (await idp.sign_in("ada@example.com", NEW_PASSWORD)).json()
        secrets |= {again["access_token"], again["refresh_token"]}
        await idp.call(
            "PUT",
            "/auth/password",
            {"current_password": NEW_PASSWORD, "new_password": LAST_PASSWORD},
            token=again["access_token"],
        )
        await idp.h.settle()
        secrets |= set(idp.links("set-password")) | set(idp.links("reset-password"))
        secrets |= await _mfa_secrets(
            idp, (await idp.sign_in("ada@example.com", LAST_PASSWORD)).json()
        )
        secrets |= {key.get("d") for key in _private_keys()} - {None}  # type: ignore[arg-type]
        # The local mailer's mailbox keeps each letter whole, links included, as a mail
        # catcher does (docs/messaging.md); it exists only where the local mailer runs.
        items = [
            item
            for table in idp.h.runtime.tables.values()
            if isinstance(table, InMemoryTable)
            for item in table.scan()
            if not str(item["PK"]).startswith("MAILBOX#")
        ]
    events = [e for e in idp.h.published if e.type != "SEND_EMAIL"]
    lines = [orjson.dumps(vars(r), default=str).decode() for r in caplog.records]
    assert len(secrets) >= 24 and items and events and lines
    for secret in secrets:
        assert not [i for i in items if secret in orjson.dumps(i, default=str).decode()]
        assert not [e for e in events if secret in e.encode().decode()]
        assert not [line for line in lines if secret in line]
    hashes = [i["hash"] for i in items if i.get("SK") == "CREDENTIAL"]
    assert [h.split("$")[1] for h in hashes] == ["argon2id"]
    assert user_id


def _private_keys() -> list[dict[str, str]]:
    keys = signing_keys()
    return [keys._keys[kid].as_dict(private=True) for kid in keys.kids]


async def _mfa_secrets(idp: Identity, session: dict[str, str]) -> set[str]:
    """Turn MFA on and sign in with it: the TOTP secret, its URI, the recovery codes and the
    challenge, which must appear nowhere but in the answers that gave them."""
    token = session["access_token"]
    enrolment = (await idp.call("POST", "/auth/mfa/totp", token=token)).json()
    totp = pyotp.TOTP(enrolment["secret"])
    confirmed = await idp.call(
        "POST", "/auth/mfa/totp/confirmation", {"code": totp.at(idp.h.clock.now())}, token=token
    )
    await idp.h.settle()
    codes: list[str] = confirmed.json()["recovery_codes"]
    challenge = (await idp.sign_in("ada@example.com", LAST_PASSWORD)).json()["mfa_challenge"]
    second = await idp.call(
        "POST", "/auth/sessions/mfa", {"mfa_challenge": challenge, "recovery_code": codes[0]}
    )
    await idp.h.settle()
    assert second.status == 201
    return {enrolment["secret"], enrolment["otpauth_uri"], challenge, *codes}
