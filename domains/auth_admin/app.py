"""The auth_admin domain: roles, the admin's list of users, disabling and enabling users, and
the append-only audit log of every admin action. Every route asks for the `admin` role.

The list is auth_admin's own projection of USER_CREATED / USER_UPDATED / USER_DELETED: the
admin list needs every profile, page by page, and a call to users per page would make
auth_admin's answer depend on users' uptime. The first admin is the person whose address
`TCTF_ADMIN_EMAIL` names, granted the role when they sign up.

Items: `USERS/USER#<user_id>` (a listed user: profile fields, status, roles, version),
`AUDIT/ENTRY#<entry_id>` (one admin action; entry ids are time-ordered, never rewritten).
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from typing import Any, Literal

from pydantic import BaseModel

from bus import Attr, Context, Domain, Key, NotFound, Rejected, Request, Storage
from bus.access import Access
from bus.errors import Unauthorized
from bus.pagination import PageQuery, page_query
from domains.auth_admin.contracts import (
    ROLES,
    RoleGranted,
    RoleRevoked,
    UserDisabled,
    UserEnabled,
)
from domains.users.contracts import UserCreated, UserDeleted, UserUpdated, normalize_email

domain = Domain("auth_admin", storage=Storage())

ADMIN_ROLE = "admin"
ADMIN = Access(roles=(ADMIN_ROLE,))
#: Names the address whose owner becomes the first admin on signing up.
ADMIN_EMAIL_VARIABLE = "TCTF_ADMIN_EMAIL"
_USERS = "USERS"
_AUDIT = "AUDIT"
#: What a cursor may decode to: an id as `ctx.new_id()` makes them.
_CURSOR_ID = re.compile(r"[0-9A-Za-z-]{1,64}")

Action = Literal["user_disabled", "user_enabled", "role_granted", "role_revoked"]


class ManagedUser(BaseModel):
    """A user as an admin sees them."""

    user_id: str
    email: str
    name: str
    plan: str
    status: Literal["active", "disabled"]
    roles: list[str]


class UserPage(BaseModel):
    """One page of users in sign-up order; pass `cursor` back for the next (None: the last)."""

    items: list[ManagedUser]
    cursor: str | None


class AuditEntry(BaseModel):
    """One admin action: who (`actor_id`; None when configuration granted the first admin
    role), what, to whom, when, and the request's correlation id."""

    entry_id: str
    actor_id: str | None = None
    action: Action
    user_id: str
    role: str | None = None
    at: str
    correlation_id: str


class AuditPage(BaseModel):
    """One page of the audit log, newest first; pass `cursor` back for the next."""

    items: list[AuditEntry]
    cursor: str | None


def _user_key(user_id: str) -> dict[str, str]:
    return {"PK": _USERS, "SK": f"USER#{user_id}"}


def _entry_key(entry_id: str) -> dict[str, str]:
    return {"PK": _AUDIT, "SK": f"ENTRY#{entry_id}"}


def _rfc3339(ctx: Context) -> str:
    return ctx.now().isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _managed(item: dict[str, Any]) -> ManagedUser:
    return ManagedUser.model_validate({**item, "roles": sorted(item.get("roles", []))})


def _bootstrap_email() -> str | None:
    configured = os.environ.get(ADMIN_EMAIL_VARIABLE, "").strip()
    if not configured:
        return None
    try:
        return normalize_email(configured)
    except ValueError:
        return None


def _audit(
    ctx: Context, actor_id: str | None, action: Action, user_id: str, role: str | None = None
) -> dict[str, Any]:
    """An audit item; written with a condition that no entry has its key (append-only)."""
    entry = AuditEntry(
        entry_id=ctx.new_id(),
        actor_id=actor_id,
        action=action,
        user_id=user_id,
        role=role,
        at=_rfc3339(ctx),
        correlation_id=ctx.correlation_id,
    )
    return {**_entry_key(entry.entry_id), **entry.model_dump(exclude_none=True)}


def _encode_cursor(last_id: str) -> str:
    return base64.urlsafe_b64encode(last_id.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str | None) -> str | None:
    """The id a page ended at, from the cursor this API gave out; 422 for any other text."""
    if cursor is None:
        return None
    try:
        last_id = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        last_id = ""
    if not _CURSOR_ID.fullmatch(last_id):
        raise Rejected("cursor is not one this API gave out; start again without it")
    return last_id


async def _acting_admin(request: Request[Any], ctx: Context) -> str:
    """The caller, if auth_admin still knows them as an active admin. The gateway checked the
    token's roles, but a token outlives a revocation by up to its 15 minutes: this closes
    that window for admin actions."""
    assert request.principal is not None
    actor_id = request.principal.subject
    item = await ctx.table.get(_user_key(actor_id), consistent=True)
    if item is None or item["status"] != "active" or ADMIN_ROLE not in item.get("roles", []):
        raise Unauthorized("your admin role or account changed; sign in again")
    return actor_id


async def _listed_user(ctx: Context, user_id: str) -> dict[str, Any]:
    item = await ctx.table.get(_user_key(user_id), consistent=True)
    if item is None:
        raise NotFound(f"no user {user_id}")
    return item


@domain.get("/admin/users", response=UserPage, access=ADMIN, query=PageQuery)
async def list_users(request: Request[None], ctx: Context) -> UserPage:
    """Users in sign-up order, `limit` (1-100, default 20) at a time after `cursor`."""
    await _acting_admin(request, ctx)
    page_of = page_query(request)
    limit, after = page_of.limit, _decode_cursor(page_of.cursor)
    sort = Key("SK").gt(f"USER#{after}") if after else Key("SK").begins_with("USER#")
    page = await ctx.table.query(Key("PK").eq(_USERS) & sort, limit=limit + 1, consistent=True)
    items = [_managed(item) for item in page.items[:limit]]
    more = len(page.items) > limit or (page.cursor is not None and bool(items))
    return UserPage(items=items, cursor=_encode_cursor(items[-1].user_id) if more else None)


@domain.post("/admin/users/{user_id}/disable", response=ManagedUser, access=ADMIN)
async def disable_user(request: Request[None], ctx: Context) -> ManagedUser:
    """End every session of the user and refuse their sign-in until enabled again."""
    actor_id = await _acting_admin(request, ctx)
    user_id = request.path_params["user_id"]
    if user_id == actor_id:
        raise Rejected("an admin cannot disable themselves")
    return await _set_status(ctx, actor_id, user_id, "disabled")


@domain.post("/admin/users/{user_id}/enable", response=ManagedUser, access=ADMIN)
async def enable_user(request: Request[None], ctx: Context) -> ManagedUser:
    """Let a disabled user sign in again."""
    actor_id = await _acting_admin(request, ctx)
    return await _set_status(ctx, actor_id, request.path_params["user_id"], "active")


async def _set_status(
    ctx: Context, actor_id: str, user_id: str, status: Literal["active", "disabled"]
) -> ManagedUser:
    """Change the status, announce it and audit it in one transaction; a user already in
    that status is answered as they are, with no event and no entry."""
    item = await _listed_user(ctx, user_id)
    if item["status"] == status:
        return _managed(item)
    disabling = status == "disabled"
    async with ctx.unit_of_work() as uow:
        uow.update(
            _user_key(user_id),
            set={"status": status, "version": item["version"] + 1},
            condition=Attr("version").eq(item["version"]),
        )
        uow.publish(
            UserDisabled(user_id=user_id) if disabling else UserEnabled(user_id=user_id),
            subject=user_id,
        )
        action: Action = "user_disabled" if disabling else "user_enabled"
        uow.put(_audit(ctx, actor_id, action, user_id), condition=Attr("PK").not_exists())
    return _managed({**item, "status": status})


def _role(request: Request[Any]) -> str:
    role = request.path_params["role"]
    if role not in ROLES:
        raise NotFound(f"no role {role}; roles are {', '.join(ROLES)}")
    return role


@domain.put("/admin/users/{user_id}/roles/{role}", response=ManagedUser, access=ADMIN)
async def grant_role(request: Request[None], ctx: Context) -> ManagedUser:
    """Give the user a role; their next access token carries it."""
    actor_id = await _acting_admin(request, ctx)
    role = _role(request)
    return await _change_roles(ctx, actor_id, request.path_params["user_id"], role, grant=True)


@domain.delete("/admin/users/{user_id}/roles/{role}", response=ManagedUser, access=ADMIN)
async def revoke_role(request: Request[None], ctx: Context) -> ManagedUser:
    """Take a role from the user; tokens issued before keep it until they expire, but
    auth_admin's own routes stop answering a revoked admin at once."""
    actor_id = await _acting_admin(request, ctx)
    role, user_id = _role(request), request.path_params["user_id"]
    if user_id == actor_id and role == ADMIN_ROLE:
        raise Rejected("an admin cannot revoke their own admin role")
    return await _change_roles(ctx, actor_id, user_id, role, grant=False)


async def _change_roles(
    ctx: Context, actor_id: str, user_id: str, role: str, *, grant: bool
) -> ManagedUser:
    item = await _listed_user(ctx, user_id)
    roles = set(item.get("roles", []))
    if (role in roles) == grant:
        return _managed(item)
    roles = roles | {role} if grant else roles - {role}
    async with ctx.unit_of_work() as uow:
        uow.update(
            _user_key(user_id),
            set={"roles": sorted(roles), "version": item["version"] + 1},
            condition=Attr("version").eq(item["version"]),
        )
        event = RoleGranted if grant else RoleRevoked
        revision = int(item["version"]) + 1
        uow.publish(event(user_id=user_id, role=role, revision=revision), subject=user_id)
        action: Action = "role_granted" if grant else "role_revoked"
        uow.put(_audit(ctx, actor_id, action, user_id, role), condition=Attr("PK").not_exists())
    return _managed({**item, "roles": sorted(roles)})


@domain.get("/admin/audit", response=AuditPage, access=ADMIN, query=PageQuery)
async def read_audit_log(request: Request[None], ctx: Context) -> AuditPage:
    """Admin actions, newest first, `limit` (1-100, default 20) at a time after `cursor`."""
    await _acting_admin(request, ctx)
    page_of = page_query(request)
    limit, before = page_of.limit, _decode_cursor(page_of.cursor)
    sort = Key("SK").lt(f"ENTRY#{before}") if before else Key("SK").begins_with("ENTRY#")
    page = await ctx.table.query(
        Key("PK").eq(_AUDIT) & sort, limit=limit + 1, descending=True, consistent=True
    )
    items = [AuditEntry.model_validate(item) for item in page.items[:limit]]
    more = len(page.items) > limit or (page.cursor is not None and bool(items))
    return AuditPage(items=items, cursor=_encode_cursor(items[-1].entry_id) if more else None)


@domain.on(UserCreated)
async def list_new_user(event: UserCreated, ctx: Context) -> None:
    """List the user; the address `TCTF_ADMIN_EMAIL` names becomes the first admin. Only
    the owner of that mailbox can ever sign in: the password is set through a link mailed
    to it."""
    if await ctx.table.get(_user_key(event.user_id), consistent=True) is not None:
        return
    bootstrap = event.email == _bootstrap_email()
    roles = [ADMIN_ROLE] if bootstrap else []
    async with ctx.unit_of_work() as uow:
        uow.put(
            {
                **_user_key(event.user_id),
                "user_id": event.user_id,
                "email": event.email,
                "name": event.name,
                "plan": event.plan,
                "status": "active",
                "roles": roles,
                "version": 1,
            },
            condition=Attr("PK").not_exists(),
        )
        if bootstrap:
            ctx.log.info("the configured address signed up: granting the admin role")
            granted = RoleGranted(user_id=event.user_id, role=ADMIN_ROLE, revision=1)
            uow.publish(granted, subject=event.user_id)
            uow.put(
                _audit(ctx, None, "role_granted", event.user_id, ADMIN_ROLE),
                condition=Attr("PK").not_exists(),
            )


@domain.on(UserUpdated)
async def update_listed_user(event: UserUpdated, ctx: Context) -> None:
    """Keep the listed profile as it is now; a user deleted meanwhile stays deleted."""
    item = await ctx.table.get(_user_key(event.user_id), consistent=True)
    if item is None:
        return
    async with ctx.unit_of_work() as uow:
        uow.update(
            _user_key(event.user_id),
            set={
                "email": event.email,
                "name": event.name,
                "plan": event.plan,
                "version": item["version"] + 1,
            },
            condition=Attr("version").eq(item["version"]),
        )


@domain.on(UserDeleted)
async def forget_deleted_user(event: UserDeleted, ctx: Context) -> None:
    """Erase the listed profile; the audit log keeps only ids, never the profile."""
    async with ctx.unit_of_work() as uow:
        uow.delete(_user_key(event.user_id))
