"""The redaction filter: credentials by name, e-mail addresses and `name=value` credentials
anywhere in text, in any JSON-like value and in span-style attributes."""

from __future__ import annotations

import pytest

from bus.redaction import EMAIL_MASK, REDACTED, redact, redact_attributes, redact_text


@pytest.mark.parametrize(
    "name",
    [
        "password",
        "new_password",
        "Passwd",
        "passphrase",
        "token",
        "refresh_token",
        "accessToken",
        "client_secret",
        "Authorization",
        "proxy-authorization",
        "Cookie",
        "Set-Cookie",
        "x-api-key",
        "apiKey",
        "credentials",
    ],
)
def test_a_member_named_like_a_credential_is_replaced_whatever_its_value(name: str) -> None:
    assert redact({name: "hunter2", "nested": {name: {"deep": 1}}}) == {
        name: REDACTED,
        "nested": {name: REDACTED},
    }


def test_other_members_keep_their_values_and_types() -> None:
    value = {"user_id": "u1", "count": 3, "ratio": 0.5, "ok": True, "none": None, "tags": ["a"]}
    assert redact(value) == value


def test_e_mail_addresses_are_masked_anywhere_in_strings_at_any_depth() -> None:
    value = {
        "to": "ada@example.com",
        "message": "ada.lovelace+tctf@mail.example.co.uk is already signed up",
        "items": [{"recipients": ("bob@example.org", "no address")}],
    }
    assert redact(value) == {
        "to": EMAIL_MASK,
        "message": f"{EMAIL_MASK} is already signed up",
        "items": [{"recipients": [EMAIL_MASK, "no address"]}],
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("GET /reset?token=abc123&user=u1", f"GET /reset?token={REDACTED}&user=u1"),
        ("password: hunter2, retry", f"password: {REDACTED}, retry"),
        ('{"client_secret": "s3cr3t"}', f'{{"client_secret": {REDACTED}}}'),
        ("Authorization: Bearer eyJhbGciOi.x.y", f"Authorization: {REDACTED}"),
        ("a plain sentence about keys", "a plain sentence about keys"),
        ("refused (password=hunter2) twice", f"refused (password={REDACTED}) twice"),
        ("[token=abc] {secret=x}", f"[token={REDACTED}] {{secret={REDACTED}}}"),
    ],
)
def test_credentials_written_into_free_text_are_masked(text: str, expected: str) -> None:
    assert redact_text(text) == expected


def test_attributes_keep_their_shape_for_a_span() -> None:
    attributes = {
        "http.request.header.authorization": ("Bearer abc",),
        "enduser.email": "ada@example.com",
        "messaging.batch.message_count": 3,
        "tctf.recipients": ["ada@example.com", "x"],
        "tctf.flags": (True, False),
    }
    assert redact_attributes(attributes) == {
        "http.request.header.authorization": REDACTED,
        "enduser.email": EMAIL_MASK,
        "messaging.batch.message_count": 3,
        "tctf.recipients": [EMAIL_MASK, "x"],
        "tctf.flags": (True, False),
    }
