"""The communication domain: campaigns an admin schedules for a segment of users, delivered
in batches through messaging_consumers, with progress counted from what became of each
e-mail, and unsubscribe links honoured.

Items, all in communication's table: `USERS` / `USER#<user_id>` is the segment projection
(from the users and achievements facts); `CAMPAIGNS` / `CAMPAIGN#<id>` a campaign and its
progress; `SCHEDULE` / `<send_at>#<id>` the campaigns waiting for their time, read by the
minute's sweep; `CAMPAIGN#<id>` / `BATCH#<n>` the recipients of one batch (expiring) and
`RECIPIENT#<user_id>` what became of one recipient's e-mail.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter, field_validator

from bus import (
    Attr,
    Conflict,
    Context,
    Domain,
    Key,
    NotFound,
    PermanentError,
    Rejected,
    Request,
    Storage,
    TransactionCanceled,
    TransientError,
)
from bus.access import Access
from bus.pagination import PageQuery, page_query, read_page
from bus.secrets import deployed
from bus.storage.conditions import Condition
from bus.storage.errors import InvalidRequest
from domains.achievements.contracts import AchievementUnlocked
from domains.communication.contracts import (
    BATCH_SIZE,
    AchievementSegment,
    CampaignDelivered,
    CampaignScheduled,
    DeliverCampaignBatch,
    PlanSegment,
    QueueCampaignRecipients,
    Segment,
    SignUpSegment,
    StartDueCampaigns,
)
from domains.communication.unsubscribe import (
    SECRET,
    app_url,
    read_token,
    signing_seeds,
    unsubscribe_url,
)
from domains.messaging_consumers.contracts import EmailFailed, EmailSent, SendEmail
from domains.users.contracts import UserCreated, UserDeleted, UserUpdated, has_control_characters

domain = Domain(
    "communication",
    storage=Storage(),
    sends=[SendEmail, QueueCampaignRecipients, DeliverCampaignBatch],
    secrets=[SECRET],
)

if deployed():
    # A function that could not mail working unsubscribe links fails its init, visibly,
    # not the first campaign.
    signing_seeds()
    app_url()

#: The role that may create, read and cancel campaigns.
ADMIN_ROLE = "admin"
ADMIN = Access(roles=(ADMIN_ROLE,))
#: How far ahead a campaign may be scheduled.
MAX_LEAD_TIME = timedelta(days=365)
#: How long a batch's recipient list (names and addresses) is kept after it is written.
BATCH_RETENTION = 14 * 24 * 3600
#: Statuses in order: waiting for its time, e-mails going out, all accounted for, canceled.
Status = Literal["scheduled", "sending", "delivered", "canceled"]
SEGMENT: TypeAdapter[Segment] = TypeAdapter(Segment)

domain.every("rate(1 minute)", StartDueCampaigns(), name="due-campaigns")


class CampaignDraft(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subject: str = Field(min_length=1, max_length=200)
    body: str = Field(min_length=1, max_length=20_000)
    segment: Segment
    send_at: AwareDatetime

    @field_validator("subject")
    @classmethod
    def _one_line(cls, value: str) -> str:
        if has_control_characters(value) or not value.strip():
            raise ValueError("a subject is one line of text, not only spaces")
        return value.strip()


class Progress(BaseModel):
    #: E-mails handed to messaging so far; final once `all_queued`.
    queued: int
    sent: int
    failed: int
    all_queued: bool


class Campaign(BaseModel):
    campaign_id: str
    subject: str
    body: str
    segment: Segment
    send_at: str
    status: Status
    created_by: str
    created_at: str
    started_at: str | None
    delivered_at: str | None
    canceled_at: str | None
    progress: Progress


class Campaigns(BaseModel):
    items: list[Campaign]
    cursor: str | None


class UnsubscribeQuery(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    token: str = Field(min_length=1, max_length=2048, description="the link's signed token")


class OneClickUnsubscribe(BaseModel):
    """RFC 8058's one-click body: `List-Unsubscribe=One-Click`, form-encoded."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    list_unsubscribe: Literal["One-Click"] = Field(alias="List-Unsubscribe")


class UnsubscribeLink(BaseModel):
    campaign_id: str
    unsubscribed: bool


def _user_key(user_id: str) -> dict[str, str]:
    return {"PK": "USERS", "SK": f"USER#{user_id}"}


def _campaign_key(campaign_id: str) -> dict[str, str]:
    return {"PK": "CAMPAIGNS", "SK": f"CAMPAIGN#{campaign_id}"}


def _schedule_key(send_at: str, campaign_id: str) -> dict[str, str]:
    return {"PK": "SCHEDULE", "SK": f"{send_at}#{campaign_id}"}


def _batch_key(campaign_id: str, batch: int) -> dict[str, str]:
    return {"PK": f"CAMPAIGN#{campaign_id}", "SK": f"BATCH#{batch:06d}"}


def _recipient_key(campaign_id: str, user_id: str) -> dict[str, str]:
    return {"PK": f"CAMPAIGN#{campaign_id}", "SK": f"RECIPIENT#{user_id}"}


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# -- the segment projection -------------------------------------------------------------


async def _keep_profile(
    user_id: str, profile: dict[str, Any], ctx: Context, *, signed_up: bool
) -> None:
    """Write a user's profile unless a newer fact wrote it already (facts may arrive out of
    order) or the user was deleted; the sign-up time comes from `USER_CREATED` only."""
    assert ctx.envelope is not None
    fact_time = ctx.envelope.time
    item = await ctx.table.get(_user_key(user_id), consistent=True)
    if item is not None and item.get("deleted"):
        return
    changes: dict[str, Any] = {"user_id": user_id}
    if signed_up and (item is None or "signed_up_at" not in item):
        changes["signed_up_at"] = fact_time
    if item is None or item.get("profile_at", "") < fact_time:
        changes.update(profile, profile_at=fact_time)
    if len(changes) == 1:
        return
    unchanged = (
        Attr("PK").not_exists()
        if item is None
        else Attr("deleted").not_exists() & Attr("profile_at").eq(item.get("profile_at"))
        if "profile_at" in item
        else Attr("deleted").not_exists() & Attr("profile_at").not_exists()
    )
    try:
        async with ctx.unit_of_work() as uow:
            uow.update(_user_key(user_id), set=changes, condition=unchanged)
    except TransactionCanceled as error:
        raise TransientError(
            f"user {user_id} changed meanwhile; applying the fact again"
        ) from error


@domain.on(UserCreated)
async def project_new_user(event: UserCreated, ctx: Context) -> None:
    profile = {"email": event.email, "name": event.name, "plan": event.plan}
    await _keep_profile(event.user_id, profile, ctx, signed_up=True)


@domain.on(UserUpdated)
async def project_user_update(event: UserUpdated, ctx: Context) -> None:
    profile = {"email": event.email, "name": event.name, "plan": event.plan}
    await _keep_profile(event.user_id, profile, ctx, signed_up=False)


@domain.on(UserDeleted)
async def forget_user(event: UserDeleted, ctx: Context) -> None:
    """Keep only a tombstone, so no late fact brings the address back."""
    async with ctx.unit_of_work() as uow:
        uow.put({**_user_key(event.user_id), "user_id": event.user_id, "deleted": True})


@domain.on(AchievementUnlocked)
async def project_achievement(event: AchievementUnlocked, ctx: Context) -> None:
    """Adding to a set is idempotent: a repeated fact changes nothing."""
    try:
        async with ctx.unit_of_work() as uow:
            uow.update(
                _user_key(event.user_id),
                set={"user_id": event.user_id},
                add={"achievements": {event.achievement_id}},
                condition=Attr("deleted").not_exists(),
            )
    except TransactionCanceled:
        return  # the user was deleted


def _segment_filter(segment: Segment) -> Condition:
    reachable = (
        Attr("email").exists() & Attr("deleted").not_exists() & Attr("unsubscribed").not_exists()
    )
    if isinstance(segment, PlanSegment):
        return reachable & Attr("plan").eq(segment.plan)
    if isinstance(segment, SignUpSegment):
        return (
            reachable
            & Attr("signed_up_at").gte(_iso(segment.signed_up_from))
            & Attr("signed_up_at").lt(_iso(segment.signed_up_until))
        )
    assert isinstance(segment, AchievementSegment)
    return reachable & Attr("achievements").contains(segment.achievement_id)


async def _segment_page(
    segment: Segment, cursor: str | None, ctx: Context
) -> tuple[list[dict[str, Any]], str | None]:
    """Up to `BATCH_SIZE` reachable users of the segment from `cursor` on, in id order, and
    the cursor of the rest (None: the segment ends here). Each read asks for no more than
    the page still lacks, so the cursor falls exactly after the page's last user."""
    found: list[dict[str, Any]] = []
    while True:
        page = await ctx.table.query(
            Key("PK").eq("USERS") & Key("SK").begins_with("USER#"),
            filter=_segment_filter(segment),
            limit=BATCH_SIZE - len(found),
            cursor=cursor,
            consistent=True,
        )
        found += page.items
        cursor = page.cursor
        if len(found) == BATCH_SIZE or cursor is None:
            break
    recipients = [{"user_id": i["user_id"], "email": i["email"], "name": i["name"]} for i in found]
    return recipients, cursor


# -- campaigns --------------------------------------------------------------------------


def _campaign_view(item: dict[str, Any]) -> Campaign:
    return Campaign(
        campaign_id=item["campaign_id"],
        subject=item["subject"],
        body=item["body"],
        segment=item["segment"],
        send_at=item["send_at"],
        status=item["status"],
        created_by=item["created_by"],
        created_at=item["created_at"],
        started_at=item.get("started_at"),
        delivered_at=item.get("delivered_at"),
        canceled_at=item.get("canceled_at"),
        progress=Progress(
            queued=int(item["queued"]),
            sent=int(item["sent"]),
            failed=int(item["failed"]),
            all_queued=bool(item["all_queued"]),
        ),
    )


async def _campaign(campaign_id: str, ctx: Context) -> dict[str, Any]:
    item = await ctx.table.get(_campaign_key(campaign_id), consistent=True)
    if item is None:
        raise NotFound(f"no campaign {campaign_id}")
    return item


@domain.post(
    "/communication/campaigns",
    response=Campaign,
    status=201,
    location="/communication/campaigns/{campaign_id}",
    access=ADMIN,
)
async def create_campaign(request: Request[CampaignDraft], ctx: Context) -> Campaign:
    """Schedule a campaign for its segment at `send_at` (a minute's precision, at most a
    year ahead); refused when the segment reaches no one now."""
    draft = request.body
    now = ctx.now()
    if draft.send_at <= now:
        raise Rejected(f"send_at must be in the future (it is {_iso(now)} now)")
    if draft.send_at > now + MAX_LEAD_TIME:
        raise Rejected(f"send_at is at most {MAX_LEAD_TIME.days} days ahead")
    segment = draft.segment
    first, _ = await _segment_page(segment, None, ctx)
    if not first:
        raise Rejected("the segment reaches no one: no subscribed user matches it")
    assert request.principal is not None
    item: dict[str, Any] = {
        "campaign_id": ctx.new_id(),
        "subject": draft.subject,
        "body": draft.body,
        "segment": segment.model_dump(mode="json"),
        "send_at": _iso(draft.send_at),
        "status": "scheduled",
        "created_by": request.principal.subject,
        "created_at": _iso(now),
        "queued": 0,
        "sent": 0,
        "failed": 0,
        "all_queued": False,
        "batches": 0,
        "version": 0,
    }
    campaign_id = item["campaign_id"]
    async with ctx.unit_of_work() as uow:
        uow.put({**_campaign_key(campaign_id), **item}, condition=Attr("PK").not_exists())
        uow.put({**_schedule_key(item["send_at"], campaign_id), "campaign_id": campaign_id})
        uow.publish(
            CampaignScheduled(
                campaign_id=campaign_id,
                subject=draft.subject,
                segment=segment,
                send_at=item["send_at"],
                created_by=item["created_by"],
            ),
            subject=campaign_id,
        )
    return _campaign_view(item)


@domain.get("/communication/campaigns/{campaign_id}", response=Campaign, access=ADMIN)
async def get_campaign(request: Request[None], ctx: Context) -> Campaign:
    """A campaign and its progress, readable while it is being delivered."""
    return _campaign_view(await _campaign(request.path_params["campaign_id"], ctx))


@domain.get("/communication/campaigns", response=Campaigns, access=ADMIN, query=PageQuery)
async def list_campaigns(request: Request[None], ctx: Context) -> Campaigns:
    """Every campaign, oldest first, `limit` (1-100, default 20) a page."""
    page_of = page_query(request)
    page = await read_page(ctx.table, Key("PK").eq("CAMPAIGNS"), page_of)
    return Campaigns(items=[_campaign_view(i) for i in page.items], cursor=page.cursor)


@domain.post("/communication/campaigns/{campaign_id}/cancel", response=Campaign, access=ADMIN)
async def cancel_campaign(request: Request[None], ctx: Context) -> Campaign:
    """Cancel a campaign that has not started; 409 once its e-mails are going out."""
    item = await _campaign(request.path_params["campaign_id"], ctx)
    if item["status"] == "canceled":
        return _campaign_view(item)
    if item["status"] != "scheduled":
        raise Conflict(f"the campaign is {item['status']} already; only a scheduled one cancels")
    canceled = {**item, "status": "canceled", "canceled_at": _iso(ctx.now())}
    try:
        async with ctx.unit_of_work() as uow:
            uow.update(
                _campaign_key(item["campaign_id"]),
                set={"status": "canceled", "canceled_at": canceled["canceled_at"]},
                condition=Attr("status").eq("scheduled"),
            )
            uow.delete(_schedule_key(item["send_at"], item["campaign_id"]))
    except TransactionCanceled as error:
        raise Conflict("the campaign started meanwhile; it can no longer be canceled") from error
    return _campaign_view(canceled)


# -- delivery ---------------------------------------------------------------------------


@domain.task(StartDueCampaigns)
async def start_due_campaigns(task: StartDueCampaigns, ctx: Context) -> None:
    """Start every campaign whose time has come: queue its first batch of recipients."""
    cursor: str | None = None
    while True:
        page = await ctx.table.query(
            Key("PK").eq("SCHEDULE") & Key("SK").lte(f"{_iso(ctx.now())}~"),
            cursor=cursor,
            consistent=True,
        )
        for entry in page.items:
            ctx.send(QueueCampaignRecipients(campaign_id=entry["campaign_id"], batch=0))
        cursor = page.cursor
        if cursor is None:
            return


@domain.task(QueueCampaignRecipients)
async def queue_recipients(task: QueueCampaignRecipients, ctx: Context) -> None:
    """Take one page of the segment as batch `task.batch`: keep its recipients, send its
    delivery and the next page's queueing. The campaign's `batches` says which page is
    next, so a repeated task queues nothing twice."""
    item = await ctx.table.get(_campaign_key(task.campaign_id), consistent=True)
    if item is None:
        return
    expected = "scheduled" if task.batch == 0 else "sending"
    if item["status"] != expected or int(item["batches"]) != task.batch:
        return  # canceled, or this page is queued already
    segment = SEGMENT.validate_python(item["segment"])
    try:
        recipients, next_cursor = await _segment_page(segment, task.cursor, ctx)
    except InvalidRequest as error:
        raise PermanentError(f"the task's cursor is not one of this segment: {error}") from error
    queued = int(item["queued"]) + len(recipients)
    done = int(item["sent"]) + int(item["failed"])
    changes: dict[str, Any] = {
        "queued": queued,
        "batches": task.batch + 1,
        "all_queued": next_cursor is None,
        "version": int(item["version"]) + 1,
    }
    if task.batch == 0:
        changes.update(status="sending", started_at=_iso(ctx.now()))
    delivered = next_cursor is None and done == queued
    if delivered:
        changes.update(status="delivered", delivered_at=_iso(ctx.now()))
    try:
        async with ctx.unit_of_work() as uow:
            uow.update(
                _campaign_key(task.campaign_id),
                set=changes,
                condition=Attr("version").eq(item["version"]),
            )
            if task.batch == 0:
                uow.delete(_schedule_key(item["send_at"], task.campaign_id))
            if recipients:
                uow.put(
                    {
                        **_batch_key(task.campaign_id, task.batch),
                        "recipients": recipients,
                        "expires_at": int(ctx.clock.now()) + BATCH_RETENTION,
                    }
                )
                uow.send(DeliverCampaignBatch(campaign_id=task.campaign_id, batch=task.batch))
            if next_cursor is not None:
                uow.send(
                    QueueCampaignRecipients(
                        campaign_id=task.campaign_id, batch=task.batch + 1, cursor=next_cursor
                    )
                )
            if delivered:
                _publish_delivered(uow, {**item, **changes})
    except TransactionCanceled as error:
        raise TransientError(
            f"campaign {task.campaign_id} changed meanwhile; queueing the page again"
        ) from error


@domain.task(DeliverCampaignBatch)
async def deliver_batch(task: DeliverCampaignBatch, ctx: Context) -> None:
    """Hand each recipient's e-mail to messaging_consumers, with its own unsubscribe link.
    The tasks leave when the handler succeeds, with ids derived from this task's: a batch
    delivered again sends the same e-mails, which messaging_consumers takes once."""
    campaign = await ctx.table.get(_campaign_key(task.campaign_id), consistent=True)
    batch = await ctx.table.get(_batch_key(task.campaign_id, task.batch), consistent=True)
    if campaign is None or batch is None or campaign["status"] != "sending":
        return  # every e-mail is accounted for already, or the batch expired
    now = ctx.clock.now()
    for recipient in batch["recipients"]:
        ctx.send(
            SendEmail(
                to=recipient["email"],
                template="campaign",
                name=recipient["name"],
                user_id=recipient["user_id"],
                campaign_id=task.campaign_id,
                subject=campaign["subject"],
                body=campaign["body"],
                unsubscribe_url=unsubscribe_url(recipient["user_id"], task.campaign_id, now),
            )
        )


# Not narrowed with `where={"template": ["campaign"]}`: moto scores the complexity of the
# resulting SNS `$or` filter policy by multiplying across its branches and refuses it (over
# 150), so `tctf up` on moto would fail; the handlers ignore other templates instead.
@domain.on(EmailSent)
async def count_sent(event: EmailSent, ctx: Context) -> None:
    if event.template == "campaign":
        await _count(event.campaign_id, event.user_id, "sent", ctx)


@domain.on(EmailFailed)
async def count_failed(event: EmailFailed, ctx: Context) -> None:
    if event.template == "campaign":
        await _count(event.campaign_id, event.user_id, "failed", ctx)


async def _count(
    campaign_id: str | None, user_id: str | None, outcome: Literal["sent", "failed"], ctx: Context
) -> None:
    """Count one recipient's outcome once: the recipient's item is written only if absent,
    in the same transaction as the campaign's counts (guarded by its version)."""
    if campaign_id is None or user_id is None:
        return
    item = await ctx.table.get(_campaign_key(campaign_id), consistent=True)
    if item is None or item["status"] not in ("sending", "delivered"):
        return
    if await ctx.table.get(_recipient_key(campaign_id, user_id), consistent=True):
        return  # counted already
    counts = {"sent": int(item["sent"]), "failed": int(item["failed"])}
    counts[outcome] += 1
    changes: dict[str, Any] = {**counts, "version": int(item["version"]) + 1}
    delivered = (
        item["status"] == "sending"
        and bool(item["all_queued"])
        and counts["sent"] + counts["failed"] == int(item["queued"])
    )
    if delivered:
        changes.update(status="delivered", delivered_at=_iso(ctx.now()))
    try:
        async with ctx.unit_of_work() as uow:
            uow.put(
                {**_recipient_key(campaign_id, user_id), "outcome": outcome},
                condition=Attr("PK").not_exists(),
            )
            uow.update(
                _campaign_key(campaign_id),
                set=changes,
                condition=Attr("version").eq(item["version"]),
            )
            if delivered:
                _publish_delivered(uow, {**item, **changes})
    except TransactionCanceled as error:
        raise TransientError(
            f"campaign {campaign_id}'s progress changed meanwhile; counting again"
        ) from error


def _publish_delivered(uow: Any, item: dict[str, Any]) -> None:
    uow.publish(
        CampaignDelivered(
            campaign_id=item["campaign_id"],
            queued=int(item["queued"]),
            sent=int(item["sent"]),
            failed=int(item["failed"]),
            delivered_at=item["delivered_at"],
        ),
        subject=item["campaign_id"],
    )


# -- unsubscribing ----------------------------------------------------------------------


@domain.get("/unsubscribe", response=UnsubscribeLink, query=UnsubscribeQuery)
async def read_unsubscribe_link(request: Request[None], ctx: Context) -> UnsubscribeLink:
    """What a link would do; changes nothing (mail scanners follow links with GET)."""
    user_id, campaign_id = _token_of(request, ctx)
    user = await ctx.table.get(_user_key(user_id), consistent=True)
    gone = user is None or "unsubscribed" in user or bool(user.get("deleted"))
    return UnsubscribeLink(campaign_id=campaign_id, unsubscribed=gone)


@domain.post(
    "/unsubscribe",
    body=OneClickUnsubscribe,
    response=UnsubscribeLink,
    query=UnsubscribeQuery,
    forms=True,
)
async def unsubscribe(request: Request[OneClickUnsubscribe], ctx: Context) -> UnsubscribeLink:
    """RFC 8058 one-click unsubscribe: no later campaign goes to the link's user."""
    user_id, campaign_id = _token_of(request, ctx)
    try:
        async with ctx.unit_of_work() as uow:
            uow.update(
                _user_key(user_id),
                set={"unsubscribed": _iso(ctx.now()), "unsubscribed_from": campaign_id},
                condition=Attr("PK").exists()
                & Attr("deleted").not_exists()
                & Attr("unsubscribed").not_exists(),
            )
    except TransactionCanceled:
        pass  # unsubscribed already, or the account is gone: either way no more mail
    return UnsubscribeLink(campaign_id=campaign_id, unsubscribed=True)


def _token_of(request: Request[Any], ctx: Context) -> tuple[str, str]:
    params = request.params
    assert isinstance(params, UnsubscribeQuery)
    return read_token(params.token, ctx.clock.now())
