"""The auth_password domain: argon2id password hashes, and the single-use, expiring links
that set or reset a password, kept as SHA-256 digests and sent only inside SEND_EMAIL.

Items: `USER#<id>/ACCOUNT` and `EMAIL#<address>/ACCOUNT` (a projection of USER_CREATED),
`USER#<id>/CREDENTIAL` (the hash), `TOKEN#<sha256>/TOKEN` (what a link may do, until when).
"""

from __future__ import annotations

import hashlib
import os
import secrets
from functools import cache
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from bus import (
    Attr,
    ConfigurationError,
    Context,
    Domain,
    Rejected,
    Request,
    Storage,
    TransactionCanceled,
)
from bus.access import INTERNAL, SIGNED_IN
from domains.auth_password.contracts import (
    VERIFICATIONS_PATH,
    PasswordChanged,
    PasswordCheck,
    PasswordCheckResult,
    PasswordResetRequested,
    PasswordSet,
)
from domains.messaging_consumers.contracts import SendEmail
from domains.users.contracts import EmailAddress, UserCreated, UserDeleted, normalize_email

if TYPE_CHECKING:
    from argon2 import PasswordHasher

domain = Domain("auth_password", storage=Storage(), sends=[SendEmail])

Purpose = Literal["set", "reset"]
#: How long a link works: a welcome may wait a few days, a reset link should not.
LINK_LIFETIME: dict[Purpose, float] = {"set": 72 * 3600.0, "reset": 3600.0}
#: The e-mail template of each link.
TEMPLATE: dict[Purpose, str] = {"set": "set-password", "reset": "reset-password"}
#: NIST SP 800-63B: at least 8; 12 keeps a single dictionary word out.
MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 256
#: The environment variable naming the public base URL of the app the e-mailed links open
#: (`tctf run` sets it to the address it serves, unless it is set).
APP_URL_VARIABLE = "TCTF_APP_URL"
_INVALID_LINK = "this link is invalid, used or expired; ask for a new one"


#: The argon2-cffi profile new passwords are hashed with: RFC 9106's low-memory
#: parameters (argon2id, 64 MiB, 3 passes). `TCTF_PASSWORD_HASH_PROFILE` may name another
#: of `argon2.profiles`; the test suite names CHEAPEST, still argon2id, at a thousandth of
#: the cost. Verifying reads the parameters from the stored hash, whatever the profile.
PASSWORD_HASH_PROFILE = "RFC_9106_LOW_MEMORY"
HASH_PROFILES = ("RFC_9106_LOW_MEMORY", "RFC_9106_HIGH_MEMORY", "PRE_21_2", "CHEAPEST")


#: Profiles too cheap to protect a real password: refused where the domain is deployed.
TEST_ONLY_PROFILES = ("CHEAPEST",)


#: Where links in e-mails lead when `TCTF_APP_URL` is not set: `tctf run`'s address.
LOCAL_APP_URL = "http://localhost:8000"


def app_url() -> str:
    """The app's public base URL, which links in e-mails open (`TCTF_APP_URL`; a deployed
    stage sets it from its `app_url`). A deployed function without it refuses to send a link
    to localhost."""
    configured = os.environ.get(APP_URL_VARIABLE)
    if configured:
        return configured.rstrip("/")
    if "AWS_LAMBDA_FUNCTION_NAME" in os.environ:
        raise ConfigurationError(
            "TCTF_APP_URL is not set: a deployed auth_password needs the app's public URL "
            "for the links it e-mails (the stage's `app_url` in deploy.toml)"
        )
    return LOCAL_APP_URL


def hash_profile() -> str:
    profile = os.environ.get("TCTF_PASSWORD_HASH_PROFILE", PASSWORD_HASH_PROFILE)
    if profile not in HASH_PROFILES:
        raise ConfigurationError(
            f"TCTF_PASSWORD_HASH_PROFILE is {profile!r}; one of {', '.join(HASH_PROFILES)}"
        )
    if profile in TEST_ONLY_PROFILES and "AWS_LAMBDA_FUNCTION_NAME" in os.environ:
        raise ConfigurationError(
            f"TCTF_PASSWORD_HASH_PROFILE {profile} is for test runs only: a deployed function "
            "hashes passwords with a profile an attacker cannot brute-force cheaply"
        )
    return profile


def hasher() -> PasswordHasher:
    return _hasher(hash_profile())


@cache
def _hasher(profile: str) -> PasswordHasher:
    """Imported on first use, so routes that hash nothing pay nothing at cold start."""
    from argon2 import PasswordHasher, profiles

    return PasswordHasher.from_parameters(getattr(profiles, profile))


def dummy_hash() -> str:
    """A hash no password matches, verified for unknown addresses so that a wrong address
    costs the time a wrong password does: made with the profile real hashes are made with."""
    return _dummy_hash(hash_profile())


@cache
def _dummy_hash(profile: str) -> str:
    return _hasher(profile).hash(secrets.token_urlsafe(32))


def verify(stored: str, password: str) -> bool:
    from argon2.exceptions import InvalidHashError, VerificationError

    try:
        return hasher().verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def digest(token: str) -> str:
    """The token's SHA-256: a link token has 256 random bits, so no slow hash is needed."""
    return hashlib.sha256(token.encode()).hexdigest()


def _account_key(user_id: str) -> dict[str, str]:
    return {"PK": f"USER#{user_id}", "SK": "ACCOUNT"}


def _email_key(email: str) -> dict[str, str]:
    return {"PK": f"EMAIL#{email}", "SK": "ACCOUNT"}


def _credential_key(user_id: str) -> dict[str, str]:
    return {"PK": f"USER#{user_id}", "SK": "CREDENTIAL"}


def _token_key(token: str) -> dict[str, str]:
    return {"PK": f"TOKEN#{digest(token)}", "SK": "TOKEN"}


def _iso(ctx: Context) -> str:
    return ctx.now().isoformat(timespec="milliseconds").replace("+00:00", "Z")


async def _email_link(
    ctx: Context, purpose: Purpose, user_id: str, to: str, name: str, locale: str
) -> None:
    """Store a new link's digest and send the link: the token itself exists only inside
    the SEND_EMAIL task, which leaves only if the handler succeeds."""
    token = secrets.token_urlsafe(32)
    expires_at = ctx.clock.now() + LINK_LIFETIME[purpose]
    await ctx.table.put(
        {**_token_key(token), "user_id": user_id, "purpose": purpose, "expires_at": int(expires_at)}
    )
    base = app_url()
    link = f"{base}/{TEMPLATE[purpose]}#token={token}"
    ctx.send(
        SendEmail(
            to=to, template=TEMPLATE[purpose], name=name, user_id=user_id, locale=locale, link=link
        )
    )


@domain.on(UserCreated)
async def invite_to_set_password(event: UserCreated, ctx: Context) -> None:
    """Remember the account, and e-mail a link to choose its first password."""
    email = normalize_email(event.email)
    account = {"user_id": event.user_id, "email": email, "name": event.name, "locale": event.locale}
    await ctx.table.put({**_account_key(event.user_id), **account})
    await ctx.table.put({**_email_key(email), **account})
    await _email_link(ctx, "set", event.user_id, email, event.name, event.locale)


@domain.on(UserDeleted)
async def forget_account(event: UserDeleted, ctx: Context) -> None:
    """Erase the account and its credential; its links find no account and fail."""
    account = await ctx.table.get(_account_key(event.user_id), consistent=True)
    async with ctx.unit_of_work() as uow:
        uow.delete(_credential_key(event.user_id))
        uow.delete(_account_key(event.user_id))
        if account is not None:
            uow.delete(_email_key(account["email"]))


class NewPassword(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str = Field(min_length=1, max_length=256, repr=False)
    password: str = Field(
        min_length=MIN_PASSWORD_LENGTH, max_length=MAX_PASSWORD_LENGTH, repr=False
    )


class ResetRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: EmailAddress


class PasswordChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    current_password: str = Field(max_length=MAX_PASSWORD_LENGTH, repr=False)
    new_password: str = Field(
        min_length=MIN_PASSWORD_LENGTH, max_length=MAX_PASSWORD_LENGTH, repr=False
    )


async def _use_link(request: Request[NewPassword], ctx: Context, purpose: Purpose) -> str:
    """Spend the link and store the new hash in one transaction; the link is deleted on
    use, so a second use finds nothing."""
    key = _token_key(request.body.token)
    link = await ctx.table.get(key, consistent=True)
    if link is None or link["purpose"] != purpose or link["expires_at"] <= ctx.clock.now():
        raise Rejected(_INVALID_LINK)
    user_id = str(link["user_id"])
    event: PasswordSet | PasswordChanged = (
        PasswordSet(user_id=user_id)
        if purpose == "set"
        else PasswordChanged(user_id=user_id, how="reset")
    )
    password_hash = hasher().hash(request.body.password)
    try:
        async with ctx.unit_of_work() as uow:
            uow.delete(key, condition=Attr("expires_at").gt(int(ctx.clock.now())))
            uow.check(_account_key(user_id), Attr("PK").exists())
            uow.put({**_credential_key(user_id), "hash": password_hash, "updated_at": _iso(ctx)})
            uow.publish(event, subject=user_id)
    except TransactionCanceled as error:
        raise Rejected(_INVALID_LINK) from error
    return user_id


@domain.post("/auth/password/set", status=204)
async def set_password(request: Request[NewPassword], ctx: Context) -> None:
    """Choose the first password with the link e-mailed at sign-up."""
    await _use_link(request, ctx, "set")


@domain.post("/auth/password/reset", status=204)
async def reset_password(request: Request[NewPassword], ctx: Context) -> None:
    """Choose a new password with a reset link."""
    await _use_link(request, ctx, "reset")


@domain.post("/auth/password/reset-requests", status=202)
async def request_reset(request: Request[ResetRequest], ctx: Context) -> None:
    """E-mail a reset link if the address has an account; the answer is 202 either way,
    so the route tells no one which addresses have accounts."""
    account = await ctx.table.get(_email_key(request.body.email), consistent=True)
    if account is None:
        return
    user_id = str(account["user_id"])
    locale = str(account.get("locale", "en"))  # accounts from before locales read English
    await _email_link(ctx, "reset", user_id, str(account["email"]), str(account["name"]), locale)
    ctx.publish(PasswordResetRequested(user_id=user_id), subject=user_id)


@domain.put("/auth/password", status=204, access=SIGNED_IN)
async def change_password(request: Request[PasswordChange], ctx: Context) -> None:
    """Change the signed-in user's password; the current one is required."""
    assert request.principal is not None
    user_id = request.principal.subject
    credential = await ctx.table.get(_credential_key(user_id), consistent=True)
    stored = str(credential["hash"]) if credential else dummy_hash()
    if not verify(stored, request.body.current_password) or credential is None:
        raise Rejected("the current password is not right")
    new_hash = hasher().hash(request.body.new_password)
    try:
        async with ctx.unit_of_work() as uow:
            uow.put(
                {**_credential_key(user_id), "hash": new_hash, "updated_at": _iso(ctx)},
                condition=Attr("hash").eq(stored),
            )
            uow.publish(PasswordChanged(user_id=user_id, how="change"), subject=user_id)
    except TransactionCanceled as error:
        raise Rejected("the password changed meanwhile; try again") from error


@domain.post(VERIFICATIONS_PATH, response=PasswordCheckResult, access=INTERNAL)
async def verify_password(request: Request[PasswordCheck], ctx: Context) -> PasswordCheckResult:
    """Whose password is this? Answered for auth_core's sign-in. An unknown address or an
    account without a password is checked against a dummy hash: every answer costs one
    argon2 verification, so timing does not tell which addresses exist."""
    try:
        email = normalize_email(request.body.email)
    except ValueError:
        email = ""
    account = await ctx.table.get(_email_key(email), consistent=True) if email else None
    credential: dict[str, Any] | None = None
    if account is not None:
        credential = await ctx.table.get(_credential_key(str(account["user_id"])), consistent=True)
    stored = str(credential["hash"]) if credential else dummy_hash()
    matches = verify(stored, request.body.password) and credential is not None
    user_id = str(account["user_id"]) if account is not None else None
    return PasswordCheckResult(user_id=user_id, matches=matches)
