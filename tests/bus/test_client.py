"""Calling another domain's routes from a handler: typed answers, the caller's correlation
id, the callee's refusals as errors, and operations checked against the callee's OpenAPI."""

from __future__ import annotations

import orjson
import pytest
from pydantic import BaseModel

from bus import Context, Domain, Event, NotFound, Rejected, Request
from bus.client import Operation
from bus.errors import CallFailed, CallRefused, ConfigurationError
from bus.http import HttpRequest, HttpRouter
from bus.openapi import domain_document, operation_mismatches
from bus.testing import Harness


class Check(BaseModel):
    user_id: str
    password: str


class Verdict(BaseModel):
    user_id: str
    valid: bool


class Profile(BaseModel):
    user_id: str
    name: str


class Checked(Event):
    type = "PASSWORD_CHECKED"
    user_id: str


# What the passwords domain's contracts would declare for its callers.
CHECK_PASSWORD = Operation("passwords", "POST", "/passwords/check", Check, Verdict)
GET_PROFILE: Operation[None, Profile] = Operation(
    "passwords", "GET", "/profiles/{user_id}", None, Profile
)


def passwords() -> Domain:
    domain = Domain("passwords")

    @domain.post("/passwords/check", response=Verdict)
    async def check_password(request: Request[Check], ctx: Context) -> Verdict:
        if request.body.user_id == "locked":
            raise Rejected("the account is locked")
        if request.body.user_id == "broken":
            raise RuntimeError("disk on fire")
        ctx.publish(Checked(user_id=request.body.user_id))
        return Verdict(user_id=request.body.user_id, valid=request.body.password == "right")

    @domain.get("/profiles/{user_id}", response=Profile)
    async def get_profile(request: Request[None], ctx: Context) -> Profile:
        user_id = request.path_params["user_id"]
        if user_id != "a b":
            raise NotFound(f"no profile {user_id}")
        return Profile(user_id=user_id, name="Ada")

    return domain


class Login(BaseModel):
    user_id: str
    password: str


def sessions() -> Domain:
    domain = Domain("sessions")

    @domain.post("/sessions")
    async def sign_in(request: Request[Login], ctx: Context) -> dict[str, object]:
        body = request.body
        try:
            verdict = await ctx.client("passwords").call(
                CHECK_PASSWORD, Check(user_id=body.user_id, password=body.password)
            )
        except CallRefused as refused:
            return {"refused": refused.status, "problem": refused.problem["type"]}
        except CallFailed as failed:
            return {"failed": failed.status}
        profile = await ctx.client("passwords").call(GET_PROFILE, path_params={"user_id": "a b"})
        return {"valid": verdict.valid, "name": profile.name}

    @domain.post("/elsewhere")
    async def elsewhere(request: Request[None], ctx: Context) -> None:
        ctx.client("billing")

    return domain


async def sign_in(h: Harness, user_id: str, password: str = "right") -> object:
    router = HttpRouter(h.runtime.domains, h.runtime.publisher, h.runtime.context)
    body = orjson.dumps({"user_id": user_id, "password": password})
    request = HttpRequest("POST", "/sessions", headers={"x-correlation-id": "req-7"}, body=body)
    response = await router.handle(request)
    assert response.status == 200, response.body
    return response.json()


async def test_a_route_calls_another_domain_and_gets_its_typed_answer() -> None:
    async with Harness(passwords(), sessions()) as h:
        assert await sign_in(h, "u1") == {"valid": True, "name": "Ada"}
        assert await sign_in(h, "u1", "wrong") == {"valid": False, "name": "Ada"}
    assert {e.correlationid for e in h.published_of("PASSWORD_CHECKED")} == {"req-7"}


async def test_the_callees_refusal_and_failure_reach_the_caller_as_errors() -> None:
    async with Harness(passwords(), sessions()) as h:
        refused = await sign_in(h, "locked")
        failed = await sign_in(h, "broken")
    assert refused == {"refused": 422, "problem": "urn:tctf:problem:rejected"}
    assert failed == {"failed": 500}


async def test_a_domain_not_served_is_a_configuration_error() -> None:
    async with Harness(passwords(), sessions()) as h:
        router = HttpRouter(h.runtime.domains, h.runtime.publisher, h.runtime.context)
        with pytest.raises(ConfigurationError, match="no domain 'billing' is served"):
            router.clients("billing")
        answer = await router.handle(HttpRequest("POST", "/elsewhere"))
    assert answer.status == 500


def test_a_missing_path_parameter_is_named() -> None:
    with pytest.raises(ConfigurationError, match="needs path parameter 'user_id'"):
        GET_PROFILE.url_path({})
    assert GET_PROFILE.url_path({"user_id": "a b"}) == "/profiles/a%20b"


def test_operations_agree_with_their_domains_openapi() -> None:
    document = domain_document(passwords())
    assert operation_mismatches(CHECK_PASSWORD, document) == []
    assert operation_mismatches(GET_PROFILE, document) == []


def test_an_operation_that_drifted_from_its_route_is_named() -> None:
    class OldCheck(BaseModel):
        user_id: str

    document = domain_document(passwords())
    drifted = Operation("passwords", "POST", "/passwords/check", OldCheck, Verdict)
    created = Operation("passwords", "POST", "/passwords/check", Check, Verdict, status=201)
    gone: Operation[None, None] = Operation("passwords", "DELETE", "/passwords/check", None, None)
    assert operation_mismatches(drifted, document) == [
        "passwords: POST /passwords/check: its body model is not the route's"
    ]
    assert operation_mismatches(created, document) == [
        "passwords: POST /passwords/check: the route does not answer 201"
    ]
    assert operation_mismatches(gone, document) == [
        "passwords: DELETE /passwords/check is no route of the document"
    ]


class Reviewed(Event):
    type = "LOGIN_REVIEWED"
    user_id: str


class Flagged(Event):
    type = "LOGIN_FLAGGED"
    user_id: str
    name: str


def auditing() -> Domain:
    domain = Domain("auditing")

    @domain.on(Reviewed)
    async def flag(event: Reviewed, ctx: Context) -> None:
        profile = await ctx.client("passwords").call(
            GET_PROFILE, path_params={"user_id": event.user_id}
        )
        ctx.publish(Flagged(user_id=event.user_id, name=profile.name))

    return domain


async def test_an_event_handler_calls_another_domain_in_the_harness() -> None:
    async with Harness(passwords(), auditing()) as h:
        await h.publish(Reviewed(user_id="a b"), correlation_id="c-1")
        await h.settle()
    (flagged,) = h.published_of("LOGIN_FLAGGED")
    assert flagged.data == Flagged(user_id="a b", name="Ada")
    assert flagged.correlationid == "c-1"
