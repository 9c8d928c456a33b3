"""The users domain: sign-up and profiles in its own table; a profile answers only to its
owner (or an admin), and is 404 to anyone else so that ids do not leak."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from bus import Attr, Conflict, Context, Domain, NotFound, Request, Storage, TransactionCanceled
from bus.access import SIGNED_IN
from domains.auth_admin.contracts import UserDisabled, UserEnabled
from domains.users.contracts import (
    DEFAULT_LOCALE,
    DisplayName,
    EmailAddress,
    Locale,
    Plan,
    UserCreated,
    UserDeleted,
    UserUpdated,
)

domain = Domain("users", storage=Storage())

#: The role that may read and change any user's profile.
ADMIN_ROLE = "admin"


class SignUp(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: EmailAddress
    name: DisplayName
    plan: Plan = "free"
    locale: Locale = DEFAULT_LOCALE


class ProfileChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: DisplayName | None = None
    plan: Plan | None = None
    locale: Locale | None = None


class User(BaseModel):
    user_id: str
    email: str
    name: str
    plan: Plan
    #: Profiles written before locales existed read as English.
    locale: str = DEFAULT_LOCALE
    status: str
    created_at: str


def _profile_key(user_id: str) -> dict[str, str]:
    return {"PK": f"USER#{user_id}", "SK": "PROFILE"}


def _email_key(email: str) -> dict[str, str]:
    return {"PK": f"EMAIL#{email}", "SK": "EMAIL"}


@domain.post("/users", response=User, status=201, location="/users/{user_id}")
async def sign_up(request: Request[SignUp], ctx: Context) -> User:
    """Create a user and announce it in one transaction; an address signs up once."""
    body = request.body
    user = User(
        user_id=ctx.new_id(),
        email=body.email,
        name=body.name,
        plan=body.plan,
        locale=body.locale,
        status="active",
        created_at=ctx.now().isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    )
    try:
        async with ctx.unit_of_work() as uow:
            uow.put({**_profile_key(user.user_id), **user.model_dump()})
            uow.put(
                {**_email_key(user.email), "user_id": user.user_id},
                condition=Attr("PK").not_exists(),
            )
            uow.publish(
                UserCreated(
                    user_id=user.user_id,
                    email=user.email,
                    name=user.name,
                    plan=user.plan,
                    locale=user.locale,
                ),
                subject=user.user_id,
            )
    except TransactionCanceled as error:
        raise Conflict(f"{user.email} is already signed up") from error
    ctx.metrics.add("UsersSignedUp")
    return user


async def _own_profile(request: Request[Any], ctx: Context) -> User:
    """The profile named in the path, if the caller may see it; 404 otherwise."""
    user_id = request.path_params["user_id"]
    caller = request.principal
    allowed = caller is not None and (caller.subject == user_id or ADMIN_ROLE in caller.roles)
    item = await ctx.table.get(_profile_key(user_id), consistent=True) if allowed else None
    if item is None:
        raise NotFound(f"no user {user_id}")
    return User.model_validate(item)


@domain.get("/users/{user_id}", response=User, access=SIGNED_IN)
async def get_user(request: Request[None], ctx: Context) -> User:
    return await _own_profile(request, ctx)


@domain.patch("/users/{user_id}", response=User, access=SIGNED_IN)
async def update_user(request: Request[ProfileChange], ctx: Context) -> User:
    """Change a name or plan; USER_UPDATED carries the profile as it is afterwards."""
    user = await _own_profile(request, ctx)
    changes = request.body.model_dump(exclude_none=True)
    if not changes:
        return user
    updated = user.model_copy(update=changes)
    async with ctx.unit_of_work() as uow:
        uow.update(_profile_key(user.user_id), set=changes, condition=Attr("PK").exists())
        uow.publish(
            UserUpdated(
                user_id=updated.user_id,
                email=updated.email,
                name=updated.name,
                plan=updated.plan,
                locale=updated.locale,
            ),
            subject=user.user_id,
        )
    return updated


@domain.delete("/users/{user_id}", access=SIGNED_IN)
async def delete_user(request: Request[None], ctx: Context) -> None:
    """Erase the profile and free its address; USER_DELETED tells every projection."""
    user = await _own_profile(request, ctx)
    async with ctx.unit_of_work() as uow:
        uow.delete(_profile_key(user.user_id), condition=Attr("PK").exists())
        uow.delete(_email_key(user.email))
        uow.publish(UserDeleted(user_id=user.user_id), subject=user.user_id)


@domain.on(UserDisabled)
async def mark_disabled(event: UserDisabled, ctx: Context) -> None:
    await _set_status(event.user_id, "disabled", ctx)


@domain.on(UserEnabled)
async def mark_enabled(event: UserEnabled, ctx: Context) -> None:
    await _set_status(event.user_id, "active", ctx)


async def _set_status(user_id: str, status: str, ctx: Context) -> None:
    """Record the status on the profile; a profile deleted meanwhile stays deleted."""
    if await ctx.table.get(_profile_key(user_id), consistent=True) is None:
        return
    async with ctx.unit_of_work() as uow:
        uow.update(_profile_key(user_id), set={"status": status}, condition=Attr("PK").exists())
