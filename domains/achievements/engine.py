"""The rule engine: a `Domain` built from `Rule`s, one subscription per fact a rule counts,
the counters and awards in the domain's table, and the route listing a user's awards.

Items, all under `USER#<user_id>`: `PROFILE` (the user is known; `erased_at` once deleted),
`COUNTER#<rule>` (the rule's count), `ITEM#<rule>#<item>` (whether a counted thing is in,
and the position of the latest fact about it), `DAY#<rule>#<date>` (a streak's days) and
`AWARD#<rule>` (the achievement, written once under a condition).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, suppress
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pydantic import BaseModel

from bus import (
    Attr,
    ConditionFailed,
    Context,
    Domain,
    Event,
    Key,
    NotFound,
    Request,
    Storage,
    TransactionCanceled,
    TransientError,
)
from bus.access import SIGNED_IN
from bus.event_unit_of_work import EventUnitOfWork
from bus.pagination import PageQuery, page_query, read_page
from domains.achievements.contracts import AchievementUnlocked
from domains.achievements.rules import Rule, Source
from domains.users.contracts import UserCreated, UserDeleted

#: The role that may read anyone's achievements.
ADMIN_ROLE = "admin"
#: How long a streak's day is kept after it happened: late facts older than this are lost.
STREAK_DAY_KEPT = timedelta(days=60)


class Achievement(BaseModel):
    achievement_id: str
    title: str
    unlocked_at: str


class Achievements(BaseModel):
    items: list[Achievement]
    cursor: str | None


def _partition(user_id: str) -> str:
    return f"USER#{user_id}"


def _profile_key(user_id: str) -> dict[str, str]:
    return {"PK": _partition(user_id), "SK": "PROFILE"}


def _counter_key(user_id: str, rule: Rule) -> dict[str, str]:
    return {"PK": _partition(user_id), "SK": f"COUNTER#{rule.id}"}


def _item_key(user_id: str, rule: Rule, item: str) -> dict[str, str]:
    return {"PK": _partition(user_id), "SK": f"ITEM#{rule.id}#{item}"}


def _day_key(user_id: str, rule: Rule, day: date) -> dict[str, str]:
    return {"PK": _partition(user_id), "SK": f"DAY#{rule.id}#{day.isoformat()}"}


def _award_key(user_id: str, rule: Rule) -> dict[str, str]:
    return {"PK": _partition(user_id), "SK": f"AWARD#{rule.id}"}


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _fact_time(ctx: Context) -> datetime:
    assert ctx.envelope is not None, "rules count delivered facts"
    return datetime.fromisoformat(ctx.envelope.time).astimezone(UTC)


def _fact_position(ctx: Context) -> str:
    """Where a fact stands among the facts about one item: its time, then its id (time-
    ordered), so the latest fact wins however the queue ordered them."""
    assert ctx.envelope is not None
    return f"{_iso(_fact_time(ctx))}|{ctx.envelope.id}"


def achievements_domain(rules: Sequence[Rule]) -> Domain:
    """The achievements domain running `rules`: nothing else changes when a rule is added."""
    domain = Domain("achievements", storage=Storage())
    for rule in rules:
        for source in rule.add:
            _subscribe(domain, rule, source, counts_in=True)
        for source in rule.remove:
            _subscribe(domain, rule, source, counts_in=False)
    domain.on(UserCreated)(know_user)
    domain.on(UserDeleted)(erase_user)
    domain.get(
        "/users/{user_id}/achievements", response=Achievements, access=SIGNED_IN, query=PageQuery
    )(list_achievements)
    return domain


def _subscribe(domain: Domain, rule: Rule, source: Source, *, counts_in: bool) -> None:
    async def count(event: Event, ctx: Context) -> None:
        user_id = str(getattr(event, source.user))
        if rule.kind == "streak":
            await _count_day(ctx, rule, user_id)
        else:
            assert source.item is not None
            await _count_item(ctx, rule, user_id, str(getattr(event, source.item)), counts_in)

    # The name keys idempotency records: stable as long as the rule and the fact are.
    name = f"{rule.id}_on_{source.event.lower()}"
    domain.on(source.message, where=source.where, name=name)(count)


async def _count_item(ctx: Context, rule: Rule, user_id: str, item: str, counts_in: bool) -> None:
    """Set whether `item` counts for the user, unless a later fact about it came first."""
    if await _erased(ctx, user_id):
        return
    position = _fact_position(ctx)
    known = await ctx.table.get(_item_key(user_id, rule, item), consistent=True)
    if known is not None and known["position"] >= position:
        return  # a duplicate, or older than what the item already says
    was_in = bool(known and known["counts"])
    counter = await ctx.table.get(_counter_key(user_id, rule), consistent=True)
    count = int(counter["count"]) if counter else 0
    new_count = count + int(counts_in) - int(was_in)
    async with _unit_of_work(ctx, user_id) as uow:
        uow.put(
            {**_item_key(user_id, rule, item), "counts": counts_in, "position": position},
            condition=Attr("PK").not_exists()
            if known is None
            else Attr("position").eq(known["position"]),
        )
        if new_count != count:
            _set_count(uow, user_id, rule, counter, new_count)
        if new_count >= rule.threshold:
            await _award(uow, ctx, rule, user_id)


async def _count_day(ctx: Context, rule: Rule, user_id: str) -> None:
    """Record the fact's UTC day; award once the run of consecutive days it joins is long
    enough (days arriving out of order join runs as well as in order)."""
    day = _fact_time(ctx).date()
    if await _erased(ctx, user_id):
        return
    if await ctx.table.get(_day_key(user_id, rule, day), consistent=True) is not None:
        return
    counter = await ctx.table.get(_counter_key(user_id, rule), consistent=True)
    days = await _days_around(ctx, rule, user_id, day)
    run = _run_through(day, days | {day})
    async with _unit_of_work(ctx, user_id) as uow:
        kept_until = datetime.combine(day, datetime.min.time(), UTC) + STREAK_DAY_KEPT
        uow.put(
            {**_day_key(user_id, rule, day), "expires_at": int(kept_until.timestamp())},
            condition=Attr("PK").not_exists(),
        )
        # The counter serialises a user's days: two days committed at once would each miss
        # the other and a completed run would go unnoticed.
        _set_count(uow, user_id, rule, counter, (int(counter["count"]) if counter else 0) + 1)
        if run >= rule.threshold:
            await _award(uow, ctx, rule, user_id)


async def _days_around(ctx: Context, rule: Rule, user_id: str, day: date) -> set[date]:
    reach = timedelta(days=rule.threshold - 1)
    prefix = f"DAY#{rule.id}#"
    page = await ctx.table.query(
        Key("PK").eq(_partition(user_id))
        & Key("SK").between(prefix + (day - reach).isoformat(), prefix + (day + reach).isoformat()),
        consistent=True,
    )
    return {date.fromisoformat(i["SK"].removeprefix(prefix)) for i in page.items}


def _run_through(day: date, days: set[date]) -> int:
    """The number of consecutive days in `days` that include `day`."""
    one = timedelta(days=1)
    first, last = day, day
    while first - one in days:
        first -= one
    while last + one in days:
        last += one
    return (last - first).days + 1


def _set_count(
    uow: EventUnitOfWork, user_id: str, rule: Rule, counter: dict[str, Any] | None, count: int
) -> None:
    uow.put(
        {**_counter_key(user_id, rule), "count": count},
        condition=Attr("PK").not_exists()
        if counter is None
        else Attr("count").eq(counter["count"]),
    )


async def _award(uow: EventUnitOfWork, ctx: Context, rule: Rule, user_id: str) -> None:
    """The award and its fact, once: the write is conditional on there being none yet."""
    if await ctx.table.get(_award_key(user_id, rule), consistent=True) is not None:
        return
    unlocked_at = _iso(ctx.now())
    uow.put(
        {
            **_award_key(user_id, rule),
            "achievement_id": rule.id,
            "title": rule.title,
            "unlocked_at": unlocked_at,
        },
        condition=Attr("PK").not_exists(),
    )
    uow.publish(
        AchievementUnlocked(
            user_id=user_id, achievement_id=rule.id, title=rule.title, unlocked_at=unlocked_at
        ),
        subject=user_id,
    )


@asynccontextmanager
async def _unit_of_work(ctx: Context, user_id: str) -> AsyncIterator[EventUnitOfWork]:
    """A unit of work that commits only while the user is not erased; one that lost a race
    is tried again (`TransientError`) and then sees what won."""
    try:
        async with ctx.unit_of_work() as uow:
            uow.check(_profile_key(user_id), Attr("erased_at").not_exists())
            yield uow
    except TransactionCanceled as error:
        raise TransientError(
            f"the achievements of {user_id} changed meanwhile, or the user was erased"
        ) from error


async def _erased(ctx: Context, user_id: str) -> bool:
    profile = await ctx.table.get(_profile_key(user_id), consistent=True)
    return profile is not None and "erased_at" in profile


# -- users ------------------------------------------------------------------------------


async def know_user(event: UserCreated, ctx: Context) -> None:
    """Remember the user exists, so their (empty) list answers and an unknown id does not."""
    try:
        await ctx.table.put(
            {**_profile_key(event.user_id), "user_id": event.user_id},
            condition=Attr("PK").not_exists(),
        )
    except ConditionFailed:
        return  # known already, or erased by a USER_DELETED that came first


async def erase_user(event: UserDeleted, ctx: Context) -> None:
    """Forget the user's counters, items, days and awards; keep only the tombstone, so a
    fact arriving late counts nothing for them."""
    user_id = event.user_id
    with suppress(ConditionFailed):  # erased before: finish what that erasure left
        await ctx.table.put(
            {**_profile_key(user_id), "user_id": user_id, "erased_at": _iso(ctx.now())},
            condition=Attr("erased_at").not_exists(),
        )
    cursor: str | None = None
    while True:
        page = await ctx.table.query(
            Key("PK").eq(_partition(user_id)), cursor=cursor, consistent=True
        )
        for item in page.items:
            if item["SK"] != "PROFILE":
                await ctx.table.delete({"PK": item["PK"], "SK": item["SK"]})
        cursor = page.cursor
        if cursor is None:
            return


# -- the route --------------------------------------------------------------------------


async def list_achievements(request: Request[None], ctx: Context) -> Achievements:
    """The user's achievements by id, `limit` (1-100, default 20) a page.

    Private: only the user and admins read them (a streak tells when someone signs in, a
    big invoice what they pay); anyone else gets the 404 an unknown user gets.
    """
    user_id = request.path_params["user_id"]
    caller = request.principal
    allowed = caller is not None and (caller.subject == user_id or ADMIN_ROLE in caller.roles)
    profile = await ctx.table.get(_profile_key(user_id), consistent=True) if allowed else None
    if profile is None or "erased_at" in profile:
        raise NotFound(f"no user {user_id}")
    page_of = page_query(request)
    page = await read_page(
        ctx.table, Key("PK").eq(_partition(user_id)) & Key("SK").begins_with("AWARD#"), page_of
    )
    return Achievements(
        items=[Achievement.model_validate(i) for i in page.items], cursor=page.cursor
    )
