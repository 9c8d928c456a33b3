"""The auth_mfa domain: TOTP authenticators (RFC 6238, pyotp) and recovery codes.

Enrol (`POST /auth/mfa/totp`) gives a secret and its otpauth URI; confirming with a code
turns MFA on (MFA_ENABLED) and gives ten single-use recovery codes, shown once. Sign-in's
second step asks `CHECK_SECOND_FACTOR` (internal); turning MFA off needs a code too.

Secrets: the TOTP secret is stored encrypted (AES-GCM, bound to the user's id, under the
stage's `sealing` secret: `domains.auth_mfa.sealing`), since a TOTP check needs the
secret itself, not a hash; a table leak without the key gives no working authenticator.
Recovery codes carry 80 random bits and are kept as SHA-256 digests. A code that passed
stays spent: its time step is remembered and only a later step passes again (RFC 6238 5.2).

Items: `USER#<id>/TOTP` (the encrypted secret, pending or enabled, the last step used),
`USER#<id>/RECOVERY#<sha256>` (one unused recovery code), `USER#<id>/FAILURES` (recent
wrong codes on the route turning MFA off, and its lock).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from functools import cache

from pydantic import BaseModel, ConfigDict, Field

from bus import (
    Attr,
    ConditionFailed,
    Conflict,
    Context,
    Domain,
    Key,
    Rejected,
    Request,
    Storage,
    TransactionCanceled,
)
from bus.access import INTERNAL, SIGNED_IN
from bus.errors import TooManyRequests
from bus.secrets import deployed
from domains.auth_mfa.contracts import (
    MFA_VERIFICATIONS_PATH,
    MfaCheck,
    MfaCheckResult,
    MfaDisabled,
    MfaEnabled,
    RecoveryCodeUsed,
    SecondFactor,
)
from domains.auth_mfa.sealing import SECRET, SealingKeys, check_environment
from domains.users.contracts import UserDeleted

domain = Domain("auth_mfa", storage=Storage(), secrets=[SECRET])

#: The name authenticator apps show beside the account.
ISSUER = "TCTF"
RECOVERY_CODES = 10
#: Time steps either side of now a code may come from: clocks drift (RFC 6238 5.2).
DRIFT_STEPS = 1
#: Wrong codes within `LOCKOUT_WINDOW` seconds that lock turning MFA off, as for sign-in.
LOCKOUT_THRESHOLD = 5
LOCKOUT_WINDOW = 15 * 60
_WRONG_CODE = "the code is not right"


@cache
def sealing_keys() -> SealingKeys:
    return SealingKeys.from_environment()


if deployed():
    # A function without its key fails its init, visibly, not a user's enrolment.
    check_environment()


def _seal(user_id: str, secret: str) -> str:
    return sealing_keys().seal(user_id, secret)


def _open(user_id: str, sealed: str) -> str:
    return sealing_keys().open(user_id, sealed)


def _digest(code: str) -> str:
    return hashlib.sha256(_canonical(code).encode()).hexdigest()


def _canonical(code: str) -> str:
    """Recovery codes as people type them: any case, with or without the dashes."""
    return code.replace("-", "").replace(" ", "").lower()


def _totp_key(user_id: str) -> dict[str, str]:
    return {"PK": f"USER#{user_id}", "SK": "TOTP"}


def _failures_key(user_id: str) -> dict[str, str]:
    return {"PK": f"USER#{user_id}", "SK": "FAILURES"}


def _recovery_key(user_id: str, code: str) -> dict[str, str]:
    return {"PK": f"USER#{user_id}", "SK": f"RECOVERY#{_digest(code)}"}


def _new_recovery_code() -> str:
    raw = secrets.token_hex(10)  # 80 bits: no offline search finds one from its digest
    return "-".join(raw[i : i + 5] for i in range(0, 20, 5))


def _matching_step(secret: str, code: str, now: float) -> int | None:
    """The time step whose code `code` is, within the allowed drift; None if none is."""
    import pyotp

    totp = pyotp.TOTP(secret)
    current = int(now) // totp.interval
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if hmac.compare_digest(totp.generate_otp(step), code.strip()):
            return step
    return None


class Enrolment(BaseModel):
    """A new authenticator's secret: shown once, to be scanned (`otpauth_uri`) or typed."""

    secret: str = Field(repr=False)
    otpauth_uri: str = Field(repr=False)


class Confirmation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=1, max_length=16, repr=False)


class RecoveryCodes(BaseModel):
    """Ten single-use codes for when the authenticator is lost: shown once."""

    recovery_codes: list[str] = Field(repr=False)


@domain.post("/auth/mfa/totp", response=Enrolment, status=201, access=SIGNED_IN)
async def enrol(request: Request[None], ctx: Context) -> Enrolment:
    """Start enrolling an authenticator; a pending one is replaced, an enabled one is 409."""
    import pyotp

    assert request.principal is not None
    user_id = request.principal.subject
    secret = pyotp.random_base32()
    try:
        await ctx.table.put(
            {
                **_totp_key(user_id),
                "sealed_secret": _seal(user_id, secret),
                "status": "pending",
                "last_step": -1,
            },
            condition=Attr("status").not_exists() | Attr("status").eq("pending"),
        )
    except ConditionFailed as error:
        raise Conflict("MFA is already on; turn it off first") from error
    uri = pyotp.TOTP(secret).provisioning_uri(name=user_id, issuer_name=ISSUER)
    return Enrolment(secret=secret, otpauth_uri=uri)


@domain.post("/auth/mfa/totp/confirmation", response=RecoveryCodes, access=SIGNED_IN)
async def confirm(request: Request[Confirmation], ctx: Context) -> RecoveryCodes:
    """A code from the enrolled authenticator turns MFA on and gives the recovery codes."""
    assert request.principal is not None
    user_id = request.principal.subject
    item = await ctx.table.get(_totp_key(user_id), consistent=True)
    if item is None or item["status"] != "pending":
        raise Rejected("no authenticator is waiting for confirmation; enrol first")
    step = _matching_step(
        _open(user_id, str(item["sealed_secret"])), request.body.code, ctx.clock.now()
    )
    if step is None:
        raise Rejected(_WRONG_CODE)
    codes = [_new_recovery_code() for _ in range(RECOVERY_CODES)]
    try:
        async with ctx.unit_of_work() as uow:
            uow.update(
                _totp_key(user_id),
                set={"status": "enabled", "last_step": step},
                condition=Attr("status").eq("pending")
                & Attr("sealed_secret").eq(item["sealed_secret"]),
            )
            for code in codes:
                uow.put(_recovery_key(user_id, code))
            uow.publish(MfaEnabled(user_id=user_id), subject=user_id)
    except TransactionCanceled as error:
        raise Conflict("the enrolment changed meanwhile; enrol again") from error
    ctx.log.info("MFA enabled", extra={"user_id": user_id})
    return RecoveryCodes(recovery_codes=codes)


@domain.post("/auth/mfa/totp/removal", status=204, access=SIGNED_IN)
async def disable(request: Request[SecondFactor], ctx: Context) -> None:
    """Turn MFA off: only with a current code or a recovery code. Wrong codes lock the
    route for a while, or a stolen access token could try every code."""
    assert request.principal is not None
    user_id = request.principal.subject
    failures = await ctx.table.get(_failures_key(user_id), consistent=True)
    now = int(ctx.clock.now())
    locked_until = int((failures or {}).get("locked_until", 0))
    if locked_until > now:
        raise TooManyRequests("too many wrong codes; try again later", locked_until - now)
    if not await _spend(ctx, user_id, request.body):
        times = [int(t) for t in (failures or {}).get("times", []) if t > now - LOCKOUT_WINDOW]
        times.append(now)
        locked = len(times) >= LOCKOUT_THRESHOLD
        await ctx.table.put(
            {
                **_failures_key(user_id),
                "times": [] if locked else times,
                "locked_until": now + LOCKOUT_WINDOW if locked else 0,
                "expires_at": now + LOCKOUT_WINDOW,
            }
        )
        raise Rejected(_WRONG_CODE)
    await _erase(ctx, user_id)


@domain.post(MFA_VERIFICATIONS_PATH, response=MfaCheckResult, access=INTERNAL)
async def verify(request: Request[MfaCheck], ctx: Context) -> MfaCheckResult:
    """Does this code pass the user's second factor? Asked by auth_core's sign-in."""
    return MfaCheckResult(valid=await _spend(ctx, request.body.user_id, request.body))


async def _spend(ctx: Context, user_id: str, factor: SecondFactor) -> bool:
    """Check a TOTP code or a recovery code and spend it, so that it passes only once."""
    item = await ctx.table.get(_totp_key(user_id), consistent=True)
    if item is None or item["status"] != "enabled":
        return False
    if factor.recovery_code is not None:
        return await _spend_recovery_code(ctx, user_id, factor.recovery_code)
    assert factor.code is not None
    sealed = str(item["sealed_secret"])
    step = _matching_step(_open(user_id, sealed), factor.code, ctx.clock.now())
    if step is None:
        return False
    # Sealed under the secret's previous version: moved to the current one while it opens.
    resealed = sealing_keys().resealed(user_id, sealed)
    try:
        await ctx.table.update(
            _totp_key(user_id),
            set={"last_step": step, **({"sealed_secret": resealed} if resealed else {})},
            condition=Attr("status").eq("enabled") & Attr("last_step").lt(step),
        )
    except ConditionFailed:
        ctx.log.warning("a spent TOTP code was presented again", extra={"user_id": user_id})
        return False
    return True


async def _spend_recovery_code(ctx: Context, user_id: str, code: str) -> bool:
    left = await ctx.table.query(
        Key("PK").eq(f"USER#{user_id}") & Key("SK").begins_with("RECOVERY#"), consistent=True
    )
    try:
        async with ctx.unit_of_work() as uow:
            uow.delete(_recovery_key(user_id, code), condition=Attr("PK").exists())
            uow.publish(
                RecoveryCodeUsed(user_id=user_id, remaining=max(len(left.items) - 1, 0)),
                subject=user_id,
            )
    except TransactionCanceled:
        return False
    return True


async def _erase(ctx: Context, user_id: str) -> None:
    items = await ctx.table.query(Key("PK").eq(f"USER#{user_id}"), consistent=True)
    totp = next((i for i in items.items if i["SK"] == "TOTP"), None)
    async with ctx.unit_of_work() as uow:
        for item in items.items:
            uow.delete({"PK": item["PK"], "SK": item["SK"]})
        if totp is not None and totp["status"] == "enabled":
            uow.publish(MfaDisabled(user_id=user_id), subject=user_id)


@domain.on(UserDeleted)
async def erase_deleted_user(event: UserDeleted, ctx: Context) -> None:
    """Forget the user's secret and recovery codes."""
    await _erase(ctx, event.user_id)
