"""Every identity route, fed bodies no client should send, answers a 4xx problem, never 5xx."""

from __future__ import annotations

import pytest

from tests.domains.identity import identity

BODIES = [
    b"",
    b"null",
    b"[]",
    b'"text"',
    b"{}",
    b'{"unknown": 1}',
    b"\xff\xfe\x00",
    b'{"email": {"$ne": null}, "password": ["x"], "token": 7, "name": true}',
    b'{"email": "' + b"a" * 5000 + b'@example.com", "name": "A", "password": "x"}',
    b'{"token": "' + b"t" * 5000 + b'", "password": "' + b"p" * 5000 + b'"}',
    b'{"refresh_token": "\\u0000", "current_password": "", "new_password": ""}',
]


@pytest.mark.parametrize("body", BODIES, ids=range(len(BODIES)))
async def test_no_identity_route_answers_a_bad_body_with_a_5xx(body: bytes) -> None:
    async with identity() as idp:
        user_id, session = await idp.member("ada@example.com")
        routes = [r for r in idp.h.runtime.topology.routes if not r.internal]
        answers = {}
        for route in routes:
            path = route.path.format(user_id=user_id, session_id=session["session_id"])
            token = session["access_token"] if route.signed_in else None
            answer = await idp.call(route.method, path, raw=body, token=token)
            answers[f"{route.method} {route.path}"] = answer
        await idp.h.settle()
    assert len(answers) >= 10
    failed = {name: a.status for name, a in answers.items() if a.status >= 500}
    assert failed == {}
    for name, answer in answers.items():
        if answer.status >= 400:
            assert answer.headers["content-type"] == "application/problem+json", name


async def test_an_overlong_field_is_refused_with_its_limit() -> None:
    async with identity() as idp:
        answer = await idp.call("POST", "/users", {"email": "a" * 5000, "name": "Ada"})
    assert answer.status == 422
    assert "at most 1016 characters" in answer.body.decode()
