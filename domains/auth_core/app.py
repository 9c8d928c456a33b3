"""The auth_core domain: sign-in, sessions and their refresh tokens, signed access tokens,
the JWK set, and the lockout after repeated failures.

The password check is a call to auth_password's internal route through its typed client
(`ctx.client`): auth_core never reads auth_password's table, and hashes never travel.

Items: `USER#<id>/SESSION#<session>` (a refresh-token family: active or revoked),
`REFRESH#<sha256>/REFRESH` (one refresh token: current or rotated),
`LOGIN#<sha256 of the address>/FAILURES` (recent failures and a lock),
`USER#<id>/STATUS` (disabled by an admin), `USER#<id>/MFA` (a projection of
MFA_ENABLED/MFA_DISABLED: sign-in takes a second step), `CHALLENGE#<sha256>/CHALLENGE` (a
password that passed, waiting for its second factor), `USER#<id>/ROLE#<role>` (granted by
an admin: the access token's `roles` claim).
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime
from functools import cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel

from bus import Attr, Context, Domain, Key, NotFound, Request, Storage, TransactionCanceled
from bus.access import SIGNED_IN
from bus.errors import TooManyRequests, Unauthorized
from bus.secrets import deployed
from bus.storage.errors import ConditionFailed
from bus.storage.rotation import exchange, token_item
from domains.auth_admin.contracts import RoleGranted, RoleRevoked, UserDisabled, UserEnabled
from domains.auth_core.contracts import AccountLocked, SignedIn, SignedOut, SignInFailed
from domains.auth_core.keys import SECRET, SigningKeys, check_environment
from domains.auth_mfa.contracts import (
    CHECK_SECOND_FACTOR,
    MfaCheck,
    MfaDisabled,
    MfaEnabled,
    SecondFactor,
)
from domains.auth_password.contracts import CHECK_PASSWORD, PasswordChanged, PasswordCheck
from domains.users.contracts import UserDeleted, normalize_email

domain = Domain("auth_core", storage=Storage(), secrets=[SECRET])

#: Seconds an access token lives: short, since a gateway cannot revoke one (RFC 9700 4.14).
ACCESS_TOKEN_LIFETIME = 15 * 60
#: Seconds a refresh token lives unused; each use replaces it.
REFRESH_TOKEN_LIFETIME = 30 * 24 * 3600
#: Failed sign-ins within `LOCKOUT_WINDOW` seconds that lock the address.
LOCKOUT_THRESHOLD = 5
LOCKOUT_WINDOW = 15 * 60
#: Seconds a locked address refuses sign-in.
LOCKOUT_DURATION = 15 * 60
#: What a first-party access token may do.
DEFAULT_SCOPE = "profile"
_WRONG = "the e-mail address or the password is not right"
_EXPIRED = "the refresh token is invalid or expired; sign in again"
#: Seconds a password that passed waits for its second factor.
MFA_CHALLENGE_LIFETIME = 5 * 60
_CHALLENGE_FAILED = "the challenge is invalid or expired, or the code is not right"


@cache
def signing_keys() -> SigningKeys:
    return SigningKeys.from_environment()


if deployed():
    # A function without its keys fails its init, visibly, not its first sign-in.
    check_environment()


class Credentials(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str = Field(min_length=1, max_length=1024)
    password: str = Field(min_length=1, max_length=1024, repr=False)


class Refresh(BaseModel):
    model_config = ConfigDict(extra="forbid")

    refresh_token: str = Field(min_length=1, max_length=256, repr=False)


class Session(BaseModel):
    """Tokens of a session, in OAuth 2.0's token-response names (RFC 6749 5.1)."""

    session_id: str
    access_token: str = Field(repr=False)
    token_type: str = "Bearer"
    expires_in: int
    refresh_token: str = Field(repr=False)


class MfaChallenge(BaseModel):
    """The password passed; the account also needs a second factor: answer the challenge
    at `POST /auth/sessions/mfa` with a TOTP code or a recovery code."""

    mfa_challenge: str = Field(repr=False)
    expires_in: int
    methods: list[Literal["totp", "recovery_code"]] = ["totp", "recovery_code"]


class SignInAnswer(RootModel[Session | MfaChallenge]):
    """A session, or an MFA challenge for an account with MFA on."""


class SecondStep(SecondFactor):
    mfa_challenge: str = Field(min_length=1, max_length=256, repr=False)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _session_key(user_id: str, session_id: str) -> dict[str, str]:
    return {"PK": f"USER#{user_id}", "SK": f"SESSION#{session_id}"}


def _failures_key(email: str) -> dict[str, str]:
    """Keyed by a digest: whatever a caller types (up to 1 KiB of any text) fits a key, and
    addresses strangers tried are not kept in the clear."""
    return {"PK": f"LOGIN#{_digest(email)}", "SK": "FAILURES"}


def _status_key(user_id: str) -> dict[str, str]:
    return {"PK": f"USER#{user_id}", "SK": "STATUS"}


def _rfc3339(epoch: float) -> str:
    when = datetime.fromtimestamp(epoch, tz=UTC)
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _role_key(user_id: str, role: str) -> dict[str, str]:
    return {"PK": f"USER#{user_id}", "SK": f"ROLE#{role}"}


def _access_token(ctx: Context, user_id: str, session_id: str, roles: list[str]) -> str:
    now = int(ctx.clock.now())
    policy = ctx.token_policy
    return signing_keys().sign(
        {
            "iss": policy.issuer,
            "aud": policy.audience,
            "sub": user_id,
            "sid": session_id,
            "iat": now,
            "exp": now + ACCESS_TOKEN_LIFETIME,
            "jti": ctx.new_id(),
            "scope": DEFAULT_SCOPE,
            "roles": roles,
        }
    )


def _refresh_item(ctx: Context, token: str, user_id: str, session_id: str) -> dict[str, Any]:
    expires_at = int(ctx.clock.now()) + REFRESH_TOKEN_LIFETIME
    return token_item(token, expires_at=expires_at, user_id=user_id, session_id=session_id)


@domain.post("/auth/sessions", response=SignInAnswer, status=201)
async def sign_in(request: Request[Credentials], ctx: Context) -> Session | MfaChallenge:
    """E-mail and password for a session. A wrong address and a wrong password get the same
    401, after the same argon2 work; five failures in fifteen minutes lock the address."""
    try:
        email = normalize_email(request.body.email)
    except ValueError:
        email = request.body.email.lower()
    failures = await ctx.table.get(_failures_key(email), consistent=True)
    now = ctx.clock.now()
    locked_until = float((failures or {}).get("locked_until", 0))
    if locked_until > now:
        raise TooManyRequests("too many failed sign-ins; try again later", locked_until - now)
    check = await ctx.client("auth_password").call(
        CHECK_PASSWORD, PasswordCheck(email=email, password=request.body.password)
    )
    if not check.matches or check.user_id is None:
        await _count_failure(ctx, email, failures, check.user_id)
        ctx.log.info("sign-in refused", extra={"user_id": check.user_id})
        raise Unauthorized(_WRONG)
    user_id = check.user_id
    if await ctx.table.get(_status_key(user_id), consistent=True) is not None:
        async with ctx.unit_of_work() as uow:  # committed: it outlives the 401
            uow.publish(SignInFailed(user_id=user_id, reason="disabled"), subject=user_id)
        raise Unauthorized(_WRONG)
    if await ctx.table.get(_mfa_key(user_id), consistent=True) is not None:
        return await _challenge(ctx, user_id, email)
    return await _open_session(ctx, user_id, failures is not None, email)


async def _count_failure(
    ctx: Context,
    email: str,
    failures: dict[str, Any] | None,
    user_id: str | None,
    reason: Literal["password", "mfa"] = "password",
) -> None:
    """Record a failure; the fifth within the window locks the address (known or not, so
    the lock tells nothing either)."""
    now = int(ctx.clock.now())  # whole seconds: a table gives back int or Decimal, not float
    times = [int(t) for t in (failures or {}).get("times", [])]
    recent = [t for t in times if t > now - LOCKOUT_WINDOW]
    recent.append(now)
    item: dict[str, Any] = {**_failures_key(email), "expires_at": now + LOCKOUT_WINDOW}
    locked = len(recent) >= LOCKOUT_THRESHOLD
    if locked:
        item.update(times=[], locked_until=now + LOCKOUT_DURATION)
        item["expires_at"] = now + LOCKOUT_DURATION
    else:
        item["times"] = recent
    version = (failures or {}).get("version", 0)
    condition = Attr("version").eq(version) if failures else Attr("PK").not_exists()
    try:
        async with ctx.unit_of_work() as uow:
            uow.put({**item, "version": version + 1}, condition=condition)
            if user_id is not None:
                uow.publish(SignInFailed(user_id=user_id, reason=reason), subject=user_id)
                if locked:
                    until = _rfc3339(now + LOCKOUT_DURATION)
                    uow.publish(AccountLocked(user_id=user_id, until=until), subject=user_id)
    except TransactionCanceled:
        ctx.log.info("a concurrent sign-in failure was counted first")


async def _open_session(ctx: Context, user_id: str, had_failures: bool, email: str) -> Session:
    session_id = ctx.new_id()
    refresh_token = secrets.token_urlsafe(32)
    async with ctx.unit_of_work() as uow:
        uow.put(
            {
                **_session_key(user_id, session_id),
                "user_id": user_id,
                "session_id": session_id,
                "status": "active",
                "created_at": _rfc3339(ctx.clock.now()),
                "expires_at": int(ctx.clock.now()) + REFRESH_TOKEN_LIFETIME,
            }
        )
        uow.put(_refresh_item(ctx, refresh_token, user_id, session_id))
        if had_failures:
            uow.delete(_failures_key(email))
        uow.publish(SignedIn(user_id=user_id, session_id=session_id), subject=user_id)
    ctx.log.info("signed in", extra={"user_id": user_id, "session_id": session_id})
    return Session(
        session_id=session_id,
        access_token=_access_token(ctx, user_id, session_id, await _roles(ctx, user_id)),
        expires_in=ACCESS_TOKEN_LIFETIME,
        refresh_token=refresh_token,
    )


@domain.post("/auth/sessions/refresh", response=Session)
async def refresh(request: Request[Refresh], ctx: Context) -> Session:
    """Swap a refresh token for new tokens; the old one is spent. Presenting a spent one
    again means it was stolen (or the client is confused): the whole session ends."""
    spent = await exchange(
        ctx.table,
        request.body.refresh_token,
        now=int(ctx.clock.now()),
        lifetime=REFRESH_TOKEN_LIFETIME,
        family=lambda item: _session_key(str(item["user_id"]), str(item["session_id"])),
    )
    if spent.outcome == "reused":
        assert spent.item is not None
        await _revoke_family(ctx, str(spent.item["user_id"]), str(spent.item["session_id"]))
    if spent.successor is None or spent.item is None:
        raise Unauthorized(_EXPIRED)
    user_id, session_id = str(spent.item["user_id"]), str(spent.item["session_id"])
    return Session(
        session_id=session_id,
        access_token=_access_token(ctx, user_id, session_id, await _roles(ctx, user_id)),
        expires_in=ACCESS_TOKEN_LIFETIME,
        refresh_token=spent.successor,
    )


@domain.delete("/auth/sessions/{session_id}", access=SIGNED_IN)
async def sign_out(request: Request[None], ctx: Context) -> None:
    """End one of the caller's sessions; someone else's is 404."""
    assert request.principal is not None
    user_id = request.principal.subject
    session_id = request.path_params["session_id"]
    session = await ctx.table.get(_session_key(user_id, session_id), consistent=True)
    if session is None:
        raise NotFound(f"no session {session_id}")
    if session["status"] == "active":
        await _revoke(ctx, user_id, [session_id], "logout")


class KeySet(BaseModel):
    """A JWK set (RFC 7517 section 5): public keys only."""

    keys: list[dict[str, Any]]


@domain.get("/auth/jwks.json", response=KeySet)
async def jwks(request: Request[None], ctx: Context) -> KeySet:
    """The public keys access tokens are signed with, old ones until retired."""
    return KeySet.model_validate(signing_keys().public_jwks())


async def _revoke(ctx: Context, user_id: str, session_ids: list[str], reason: Any) -> None:
    """Mark sessions revoked, announcing each one that was still active."""
    async with ctx.unit_of_work() as uow:
        for session_id in session_ids:
            uow.update(_session_key(user_id, session_id), set={"status": "revoked"})
            uow.publish(
                SignedOut(user_id=user_id, session_id=session_id, reason=reason), subject=user_id
            )


async def _revoke_family(ctx: Context, user_id: str, session_id: str) -> None:
    session = await ctx.table.get(_session_key(user_id, session_id), consistent=True)
    if session is not None and session["status"] == "active":
        ctx.log.warning("a spent refresh token was presented again: session %s ends", session_id)
        await _revoke(ctx, user_id, [session_id], "refresh_token_reused")


async def _active_sessions(ctx: Context, user_id: str) -> list[str]:
    page = await ctx.table.query(
        Key("PK").eq(f"USER#{user_id}") & Key("SK").begins_with("SESSION#"),
        filter=Attr("status").eq("active"),
        consistent=True,
    )
    return [str(item["session_id"]) for item in page.items]


@domain.on(PasswordChanged)
async def end_sessions_on_password_change(event: PasswordChanged, ctx: Context) -> None:
    await _revoke(
        ctx, event.user_id, await _active_sessions(ctx, event.user_id), "password_changed"
    )


@domain.on(UserDisabled)
async def end_sessions_of_disabled_user(event: UserDisabled, ctx: Context) -> None:
    """Sign-in is refused until USER_ENABLED; every session ends now."""
    sessions = await _active_sessions(ctx, event.user_id)
    async with ctx.unit_of_work() as uow:
        uow.put({**_status_key(event.user_id), "disabled": True})
        for session_id in sessions:
            uow.update(_session_key(event.user_id, session_id), set={"status": "revoked"})
            uow.publish(
                SignedOut(user_id=event.user_id, session_id=session_id, reason="user_disabled"),
                subject=event.user_id,
            )


@domain.on(UserEnabled)
async def allow_enabled_user(event: UserEnabled, ctx: Context) -> None:
    async with ctx.unit_of_work() as uow:
        uow.delete(_status_key(event.user_id))


@domain.on(UserDeleted)
async def erase_sessions_of_deleted_user(event: UserDeleted, ctx: Context) -> None:
    """Erase the user's sessions and status; their refresh tokens then find no session."""
    page = await ctx.table.query(Key("PK").eq(f"USER#{event.user_id}"), consistent=True)
    async with ctx.unit_of_work() as uow:
        for item in page.items:
            uow.delete({"PK": item["PK"], "SK": item["SK"]})
            if item["SK"].startswith("SESSION#") and item.get("status") == "active":
                uow.publish(
                    SignedOut(
                        user_id=event.user_id,
                        session_id=str(item["session_id"]),
                        reason="user_deleted",
                    ),
                    subject=event.user_id,
                )


def _mfa_key(user_id: str) -> dict[str, str]:
    return {"PK": f"USER#{user_id}", "SK": "MFA"}


def _challenge_key(challenge: str) -> dict[str, str]:
    return {"PK": f"CHALLENGE#{_digest(challenge)}", "SK": "CHALLENGE"}


async def _challenge(ctx: Context, user_id: str, email: str) -> MfaChallenge:
    """Remember that the password passed, for a few minutes, under a new secret challenge."""
    challenge = secrets.token_urlsafe(32)
    expires_at = int(ctx.clock.now()) + MFA_CHALLENGE_LIFETIME
    await ctx.table.put(
        {**_challenge_key(challenge), "user_id": user_id, "email": email, "expires_at": expires_at}
    )
    ctx.log.info("password passed; second factor asked", extra={"user_id": user_id})
    return MfaChallenge(mfa_challenge=challenge, expires_in=MFA_CHALLENGE_LIFETIME)


@domain.post("/auth/sessions/mfa", response=Session, status=201)
async def sign_in_second_step(request: Request[SecondStep], ctx: Context) -> Session:
    """The second step of signing in: the challenge and a TOTP or recovery code. A wrong
    code counts toward the address's lockout as a wrong password does; the challenge
    opens one session only."""
    key = _challenge_key(request.body.mfa_challenge)
    challenge = await ctx.table.get(key, consistent=True)
    now = ctx.clock.now()
    if challenge is None or challenge["expires_at"] <= now:
        raise Unauthorized(_CHALLENGE_FAILED)
    user_id, email = str(challenge["user_id"]), str(challenge["email"])
    failures = await ctx.table.get(_failures_key(email), consistent=True)
    locked_until = float((failures or {}).get("locked_until", 0))
    if locked_until > now:
        raise TooManyRequests("too many failed sign-ins; try again later", locked_until - now)
    check = await ctx.client("auth_mfa").call(
        CHECK_SECOND_FACTOR,
        MfaCheck(user_id=user_id, code=request.body.code, recovery_code=request.body.recovery_code),
    )
    if not check.valid:
        await _count_failure(ctx, email, failures, user_id, "mfa")
        raise Unauthorized(_CHALLENGE_FAILED)
    try:
        await ctx.table.delete(key, condition=Attr("PK").exists())
    except ConditionFailed:
        raise Unauthorized(_CHALLENGE_FAILED) from None
    if await ctx.table.get(_status_key(user_id), consistent=True) is not None:
        raise Unauthorized(_CHALLENGE_FAILED)
    return await _open_session(ctx, user_id, failures is not None, email)


@domain.on(MfaEnabled)
async def require_second_factor(event: MfaEnabled, ctx: Context) -> None:
    await ctx.table.put({**_mfa_key(event.user_id), "enabled": True})


@domain.on(MfaDisabled)
async def drop_second_factor(event: MfaDisabled, ctx: Context) -> None:
    await ctx.table.delete(_mfa_key(event.user_id))


async def _roles(ctx: Context, user_id: str) -> list[str]:
    """The roles auth_admin granted the user, as its events told: the `roles` claim."""
    page = await ctx.table.query(
        Key("PK").eq(f"USER#{user_id}") & Key("SK").begins_with("ROLE#"),
        filter=Attr("held").eq(True),
        consistent=True,
    )
    return sorted(str(item["role"]) for item in page.items)


@domain.on(RoleGranted)
async def remember_granted_role(event: RoleGranted, ctx: Context) -> None:
    await _record_role(ctx, event.user_id, event.role, event.revision, held=True)


@domain.on(RoleRevoked)
async def forget_revoked_role(event: RoleRevoked, ctx: Context) -> None:
    await _record_role(ctx, event.user_id, event.role, event.revision, held=False)


async def _record_role(ctx: Context, user_id: str, role: str, revision: int, *, held: bool) -> None:
    """Keep the latest change of a role by its revision; a revoked role stays as an item
    saying so, so that its grant, delivered late, cannot bring it back."""
    key = _role_key(user_id, role)
    item = await ctx.table.get(key, consistent=True)
    if item is not None and int(item["revision"]) >= revision:
        return
    condition = Attr("revision").eq(item["revision"]) if item else Attr("PK").not_exists()
    async with ctx.unit_of_work() as uow:
        uow.put({**key, "role": role, "held": held, "revision": revision}, condition=condition)
