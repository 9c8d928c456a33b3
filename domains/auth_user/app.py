"""The auth_user domain: a signed-in user's own security page, kept from the facts other
identity domains publish, and answering only about the caller (the routes take no user
id, so no one can ask about anyone else).

Sessions are listed from SIGNED_IN/SIGNED_OUT; a session is ended with auth_core's own
`DELETE /auth/sessions/{session_id}`, which already answers only to its owner: one way to
end a session, owned where sessions live. Recent sign-ins come from SIGNED_IN,
SIGN_IN_FAILED and SIGNED_OUT; MFA and password status from MFA_*, RECOVERY_CODE_USED,
PASSWORD_SET and PASSWORD_CHANGED. Projections trail the facts by a moment.

Items: `USER#<id>/SESSION#<session>`, `USER#<id>/ACTIVITY#<time>#<event id>` (expiring after
`ACTIVITY_RETENTION`), `USER#<id>/SECURITY`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel

from bus import Attr, ConditionFailed, Context, Domain, Key, Request, Storage
from bus.access import SIGNED_IN
from bus.pagination import PageQuery, page_query, read_page
from domains.auth_core.contracts import SignedIn, SignedOut, SignInFailed
from domains.auth_mfa.contracts import MfaDisabled, MfaEnabled, RecoveryCodeUsed
from domains.auth_password.contracts import PasswordChanged, PasswordSet
from domains.users.contracts import UserDeleted

domain = Domain("auth_user", storage=Storage())

#: Seconds a sign-in stays on the page.
ACTIVITY_RETENTION = 90 * 24 * 3600
#: Items deleted per transaction when a user is erased (DynamoDB takes 100 at most).
ERASE_BATCH = 50


def _user(user_id: str) -> str:
    return f"USER#{user_id}"


def _session_key(user_id: str, session_id: str) -> dict[str, str]:
    return {"PK": _user(user_id), "SK": f"SESSION#{session_id}"}


def _security_key(user_id: str) -> dict[str, str]:
    return {"PK": _user(user_id), "SK": "SECURITY"}


class SessionView(BaseModel):
    session_id: str
    signed_in_at: str | None
    status: Literal["active", "ended"]
    ended_at: str | None = None
    ended_reason: str | None = None


class Sessions(BaseModel):
    sessions: list[SessionView]


class Activity(BaseModel):
    at: str
    kind: Literal["signed_in", "sign_in_failed", "signed_out"]
    session_id: str | None = None
    reason: str | None = None


class Activities(BaseModel):
    """Newest first; `cursor` asks for the next page (None: the last page)."""

    items: list[Activity]
    cursor: str | None


class Security(BaseModel):
    mfa_enabled: bool
    recovery_codes_left: int | None
    password_set_at: str | None
    password_changed_at: str | None


def _principal(request: Request[Any]) -> str:
    assert request.principal is not None
    return request.principal.subject


@domain.get("/auth/user/sessions", response=Sessions, access=SIGNED_IN)
async def list_sessions(request: Request[None], ctx: Context) -> Sessions:
    """The caller's sessions, newest first; end one with `DELETE /auth/sessions/{id}`."""
    page = await ctx.table.query(
        Key("PK").eq(_user(_principal(request))) & Key("SK").begins_with("SESSION#"),
        descending=True,
        consistent=True,
    )
    return Sessions(sessions=[SessionView.model_validate(_view(i)) for i in page.items])


def _view(item: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k not in ("PK", "SK")}


@domain.get("/auth/user/sign-ins", response=Activities, access=SIGNED_IN, query=PageQuery)
async def list_sign_ins(request: Request[None], ctx: Context) -> Activities:
    """The caller's recent sign-ins, failures and sign-outs, newest first (`?limit=`,
    `?cursor=`)."""
    page_of = page_query(request)
    page = await read_page(
        ctx.table,
        Key("PK").eq(_user(_principal(request))) & Key("SK").begins_with("ACTIVITY#"),
        page_of,
        descending=True,
        consistent=True,
    )
    items = [Activity.model_validate(_view(i)) for i in page.items]
    return Activities(items=items, cursor=page.cursor)


@domain.get("/auth/user/security", response=Security, access=SIGNED_IN)
async def security(request: Request[None], ctx: Context) -> Security:
    """Whether MFA is on (and recovery codes left), and when the password was set/changed."""
    item = await ctx.table.get(_security_key(_principal(request)), consistent=True) or {}
    return Security(
        mfa_enabled=bool(item.get("mfa_enabled", False)),
        recovery_codes_left=item.get("recovery_codes_left"),
        password_set_at=item.get("password_set_at"),
        password_changed_at=item.get("password_changed_at"),
    )


async def _record(ctx: Context, user_id: str, activity: Activity) -> None:
    assert ctx.envelope is not None
    await ctx.table.put(
        {
            "PK": _user(user_id),
            "SK": f"ACTIVITY#{activity.at}#{ctx.envelope.id}",
            **activity.model_dump(exclude_none=True),
            "expires_at": int(ctx.clock.now()) + ACTIVITY_RETENTION,
        }
    )


def _when(ctx: Context) -> str:
    assert ctx.envelope is not None
    return ctx.envelope.time


@domain.on(SignedIn)
async def note_sign_in(event: SignedIn, ctx: Context) -> None:
    at = _when(ctx)
    await _record(
        ctx, event.user_id, Activity(at=at, kind="signed_in", session_id=event.session_id)
    )
    session = {"session_id": event.session_id, "signed_in_at": at, "status": "active"}
    try:  # a SIGNED_OUT that overtook its SIGNED_IN keeps the last word
        await ctx.table.put(
            {**_session_key(event.user_id, event.session_id), **session},
            condition=Attr("PK").not_exists(),
        )
    except ConditionFailed:
        ctx.log.info("session %s ended before its sign-in arrived", event.session_id)


@domain.on(SignInFailed)
async def note_failed_sign_in(event: SignInFailed, ctx: Context) -> None:
    await _record(
        ctx, event.user_id, Activity(at=_when(ctx), kind="sign_in_failed", reason=event.reason)
    )


@domain.on(SignedOut)
async def note_sign_out(event: SignedOut, ctx: Context) -> None:
    if event.reason == "user_deleted":
        return  # the user is being erased: noting it would keep what erasure removed
    at = _when(ctx)
    await _record(
        ctx,
        event.user_id,
        Activity(at=at, kind="signed_out", session_id=event.session_id, reason=event.reason),
    )
    key = _session_key(event.user_id, event.session_id)
    known = await ctx.table.get(key, consistent=True)
    await ctx.table.put(
        {
            **key,
            "session_id": event.session_id,
            "signed_in_at": (known or {}).get("signed_in_at"),
            "status": "ended",
            "ended_at": at,
            "ended_reason": event.reason,
        }
    )


async def _note_security(ctx: Context, user_id: str, **changes: Any) -> None:
    await ctx.table.update(_security_key(user_id), set=changes)


@domain.on(MfaEnabled)
async def note_mfa_enabled(event: MfaEnabled, ctx: Context) -> None:
    await _note_security(ctx, event.user_id, mfa_enabled=True, recovery_codes_left=10)


@domain.on(MfaDisabled)
async def note_mfa_disabled(event: MfaDisabled, ctx: Context) -> None:
    await ctx.table.update(
        _security_key(event.user_id), set={"mfa_enabled": False}, remove=["recovery_codes_left"]
    )


@domain.on(RecoveryCodeUsed)
async def note_recovery_code_used(event: RecoveryCodeUsed, ctx: Context) -> None:
    await _note_security(ctx, event.user_id, recovery_codes_left=event.remaining)


@domain.on(PasswordSet)
async def note_password_set(event: PasswordSet, ctx: Context) -> None:
    await _note_security(ctx, event.user_id, password_set_at=_when(ctx))


@domain.on(PasswordChanged)
async def note_password_changed(event: PasswordChanged, ctx: Context) -> None:
    await _note_security(ctx, event.user_id, password_changed_at=_when(ctx))


@domain.on(UserDeleted)
async def erase_deleted_user(event: UserDeleted, ctx: Context) -> None:
    """Forget everything kept about the user, a transaction's worth at a time (a re-run
    after a crash finds what is left)."""
    while True:
        page = await ctx.table.query(
            Key("PK").eq(_user(event.user_id)), limit=ERASE_BATCH, consistent=True
        )
        if not page.items:
            return
        async with ctx.unit_of_work() as uow:
            for item in page.items:
                uow.delete({"PK": item["PK"], "SK": item["SK"]})
