"""The messaging_consumers domain: the e-mails facts call for, sent through a `Mailer`.

Facts become SEND_EMAIL tasks on the domain's own queue (welcome, account locked, receipt,
dunning notice, achievement); other domains send the task themselves (auth_password's
one-time links, communication's campaigns). `deliver` writes the letter in the user's
language, hands it to the mailer and records what became of it: EMAIL_SENT with the
provider's message id, or EMAIL_FAILED with the task parked in the DLQ with its reason.

Items, all in the domain's table: `USER#<user_id>` `PROFILE` is the projection of users
(address, name, locale; a tombstone once deleted); `DELIVERY#<task id>` records one
task's sending (never its link or body); `SUPPRESSED#<address>` is the suppression list;
`NOTIFICATION#<id>` a received bounce notification; `MAILBOX#<address>` the local mailer's
letters, kept whole (links included) as a mail catcher keeps them.
"""

from __future__ import annotations

import ipaddress
from typing import Any, NoReturn
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, ValidationError

from bus import (
    Attr,
    Context,
    Domain,
    Key,
    PermanentError,
    Request,
    Storage,
    TransactionCanceled,
    TransientError,
)
from bus.access import INTERNAL, PUBLIC
from bus.domain import Mail
from bus.errors import MailRefused, MailRejected
from bus.mail import sender_address
from bus.pagination import PageQuery, read_page
from domains.achievements.contracts import AchievementUnlocked
from domains.auth_core.contracts import AccountLocked
from domains.billing.contracts import InvoicePaid, PaymentFailed
from domains.messaging_consumers.contracts import EmailBounced, EmailFailed, EmailSent, SendEmail
from domains.messaging_consumers.errors import (
    MailboxNotLocal,
    MalformedNotification,
    NoLocalMailbox,
    UndeliverableTask,
)
from domains.messaging_consumers.mailer import (
    Letter,
    LocalMailbox,
    Mailer,
    ProviderMailer,
    mailbox_key,
)
from domains.messaging_consumers.notifications import SnsNotification, suppressions
from domains.messaging_consumers.templates import money, phrase, render
from domains.users.contracts import (
    EmailAddress,
    UserCreated,
    UserDeleted,
    UserUpdated,
    normalize_email,
)

#: Where SES's bounce and complaint notifications arrive (through SNS on AWS).
NOTIFICATIONS_ROUTE = "/mail/notifications"

domain = Domain(
    "messaging_consumers",
    storage=Storage(),
    sends=[SendEmail],
    mail=Mail(notifications=NOTIFICATIONS_ROUTE),
)

#: Provider refusals of one task before it fails for good: the queue's receive limit, so a
#: task the provider keeps refusing ends in the DLQ about when SQS would put it there.
MAX_REFUSALS = domain.settings.max_receive_count


def _mailer(ctx: Context, message_id: str) -> Mailer:
    """The runtime's mail provider, or, where it provides none, the domain's table as the
    local mailbox."""
    provider = ctx.mail_provider
    if provider is None:
        return LocalMailbox(ctx.table, message_id, _iso(ctx))
    return ProviderMailer(provider)


def _on_this_machine(peer: str | None) -> bool:
    """Whether a request came over loopback, or in process (no peer at all)."""
    if peer is None:
        return True
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:  # not an address: a UNIX socket's path, say; never trusted
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # a dual-stack listener's form of an IPv4 peer
    return address.is_loopback


def _iso(ctx: Context) -> str:
    return ctx.now().isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _user_key(user_id: str) -> dict[str, str]:
    return {"PK": f"USER#{user_id}", "SK": "PROFILE"}


def _delivery_key(task_id: str) -> dict[str, str]:
    return {"PK": f"DELIVERY#{task_id}", "SK": "DELIVERY"}


def _suppression_key(address: str) -> dict[str, str]:
    """Keyed on the one spelling of the address (`normalize_email`: case, Unicode or IDNA
    domain), as SES's notifications and a task may spell one address differently;
    `ValueError` for what is no address."""
    return {"PK": f"SUPPRESSED#{normalize_email(address)}", "SK": "SUPPRESSED"}


# -- the projection of users ------------------------------------------------------------


async def _project(
    ctx: Context, user_id: str, fields: dict[str, Any], then: SendEmail | None = None
) -> None:
    """Write the user's state as of the event being handled unless a later event's state
    (or the tombstone) is there already, as events of one user may arrive out of order; and
    send `then` in the same commit."""
    assert ctx.envelope is not None
    # Events of one instant are told apart by their ids, UUIDv7s that grow with time.
    as_of = f"{ctx.envelope.time}|{ctx.envelope.id}"
    current = await ctx.table.get(_user_key(user_id), consistent=True)
    stale = current is not None and (current.get("deleted") or current["as_of"] >= as_of)
    try:
        async with ctx.unit_of_work() as uow:
            if not stale:
                item = {**_user_key(user_id), "user_id": user_id, "as_of": as_of, **fields}
                expected = (
                    Attr("PK").not_exists()
                    if current is None
                    else Attr("as_of").eq(current["as_of"])
                )
                uow.put(item, condition=expected)
            if then is not None:
                uow.send(then)
    except TransactionCanceled as error:
        raise TransientError(f"user {user_id} changed meanwhile; read again") from error


@domain.on(UserCreated)
async def welcome_new_user(event: UserCreated, ctx: Context) -> None:
    """Remember how to address the user, and welcome them in their language."""
    welcome = SendEmail(
        to=event.email,
        template="welcome",
        name=event.name,
        user_id=event.user_id,
        locale=event.locale,
    )
    fields = {"email": event.email, "name": event.name, "locale": event.locale}
    await _project(ctx, event.user_id, fields, then=welcome)


@domain.on(UserUpdated)
async def track_user(event: UserUpdated, ctx: Context) -> None:
    fields = {"email": event.email, "name": event.name, "locale": event.locale}
    await _project(ctx, event.user_id, fields)


@domain.on(UserDeleted)
async def forget_user(event: UserDeleted, ctx: Context) -> None:
    """Erase the address and name; the tombstone keeps a late USER_UPDATED from bringing
    them back."""
    assert ctx.envelope is not None
    async with ctx.unit_of_work() as uow:
        uow.put(
            {**_user_key(event.user_id), "user_id": event.user_id, "deleted": True, "as_of": "~"}
        )


async def _recipient(user_id: str, ctx: Context) -> dict[str, Any] | None:
    """The projected user, None once deleted; `TransientError` while their USER_CREATED has
    not arrived yet (it is retried, and parked with the reason if it never comes)."""
    item = await ctx.table.get(_user_key(user_id), consistent=True)
    if item is None:
        raise TransientError(f"no address for user {user_id} yet")
    return None if item.get("deleted") else item


def _letter_for(user: dict[str, Any], template: Any, **values: str) -> SendEmail:
    return SendEmail(
        to=user["email"],
        template=template,
        name=user["name"],
        user_id=user["user_id"],
        locale=user.get("locale", "en"),
        values=values,
    )


# -- facts that call for an e-mail ------------------------------------------------------


@domain.on(AccountLocked)
async def tell_account_locked(event: AccountLocked, ctx: Context) -> None:
    if user := await _recipient(event.user_id, ctx):
        ctx.send(_letter_for(user, "account-locked", until=event.until))


@domain.on(InvoicePaid)
async def send_receipt(event: InvoicePaid, ctx: Context) -> None:
    if user := await _recipient(event.user_id, ctx):
        amount = money(event.amount, event.currency, user.get("locale", "en"))
        ctx.send(
            _letter_for(
                user, "receipt", amount=amount, invoice_id=event.invoice_id, paid_at=event.paid_at
            )
        )


@domain.on(PaymentFailed)
async def send_dunning_notice(event: PaymentFailed, ctx: Context) -> None:
    if user := await _recipient(event.user_id, ctx):
        locale = user.get("locale", "en")
        next_step = (
            phrase("final", locale)
            if event.next_attempt_at is None
            else phrase("retry", locale, when=event.next_attempt_at)
        )
        ctx.send(
            _letter_for(
                user,
                "payment-failed",
                amount=money(event.amount, event.currency, locale),
                invoice_id=event.invoice_id,
                decline_code=event.decline_code,
                next_step=next_step,
            )
        )


@domain.on(AchievementUnlocked)
async def tell_achievement(event: AchievementUnlocked, ctx: Context) -> None:
    if user := await _recipient(event.user_id, ctx):
        ctx.send(_letter_for(user, "achievement", title=event.title))


# -- sending ----------------------------------------------------------------------------


@domain.task(SendEmail)
async def deliver(task: SendEmail, ctx: Context) -> None:
    """Send one e-mail at most once per task (see docs/messaging.md for the guarantee).

    The task's id keys a delivery record claimed before the provider is called. Found
    `sent` or `failed`, the task had its effect. Found `sending`, an earlier attempt died
    between claiming and recording: the provider may have accepted the letter, so it is
    not sent again but failed as `unconfirmed`.
    """
    assert ctx.envelope is not None
    key = _delivery_key(ctx.envelope.id)
    record = await ctx.table.get(key, consistent=True)
    state = None if record is None else record["state"]
    if state in ("sent", "failed"):
        return
    if state == "sending":
        await _fail(ctx, task, key, "unconfirmed: an earlier attempt may have sent it")
    try:
        suppression = _suppression_key(task.to)
    except ValueError as error:
        await _fail(ctx, task, key, f"not an e-mail address: {error}")
    if await ctx.table.get(suppression, consistent=True):
        await _fail(ctx, task, key, "suppressed")
    try:
        letter = _compose(task)
    except UndeliverableTask as error:
        await _fail(ctx, task, key, str(error))
    refusals = 0 if record is None else int(record.get("refusals", 0))
    await ctx.table.put(
        {**key, "state": "sending", "refusals": refusals, "template": task.template},
        condition=Attr("PK").not_exists() | Attr("state").eq("refused"),
    )
    try:
        message_id = await _mailer(ctx, ctx.new_id()).send(letter)
    except MailRejected as error:
        await _fail(ctx, task, key, f"rejected: {error}")
    except MailRefused as error:
        refusals += 1
        if refusals >= MAX_REFUSALS:
            await _fail(ctx, task, key, f"refused {refusals} times: {error}")
        await ctx.table.put(
            {**key, "state": "refused", "refusals": refusals, "template": task.template}
        )
        raise
    async with ctx.unit_of_work() as uow:
        uow.update(
            key,
            set={"state": "sent", "message_id": message_id, "sent_at": _iso(ctx)},
            condition=Attr("state").eq("sending"),
        )
        uow.publish(
            EmailSent(
                to=task.to,
                template=task.template,
                message_id=message_id,
                user_id=task.user_id,
                campaign_id=task.campaign_id,
            ),
            subject=task.user_id or task.to,
        )
    ctx.log.info(
        "email sent", extra={"to": task.to, "template": task.template, "message_id": message_id}
    )
    ctx.metrics.add("EmailsSent")


async def _fail(ctx: Context, task: SendEmail, key: dict[str, str], reason: str) -> NoReturn:
    """Record the failure and EMAIL_FAILED, then park the task in the DLQ with `reason`."""
    async with ctx.unit_of_work() as uow:
        uow.put({**key, "state": "failed", "reason": reason, "template": task.template})
        uow.publish(
            EmailFailed(
                to=task.to,
                template=task.template,
                reason=reason,
                user_id=task.user_id,
                campaign_id=task.campaign_id,
            ),
            subject=task.user_id or task.to,
        )
    ctx.log.warning(
        "email failed", extra={"to": task.to, "template": task.template, "reason": reason}
    )
    ctx.metrics.add("EmailsFailed")
    raise PermanentError(reason)


def _compose(task: SendEmail) -> Letter:
    headers: dict[str, str] = {}
    if task.template == "campaign":
        if not task.subject or not task.body:
            raise UndeliverableTask("a campaign e-mail needs its subject and body")
        subject, text = task.subject, task.body
    else:
        values = {**task.values, "name": task.name, "link": task.link or ""}
        try:
            wording = render(task.template, task.locale, values)
        except KeyError as error:
            raise UndeliverableTask(f"template {task.template} needs the value {error}") from None
        subject, text = wording.subject, wording.text
    if task.unsubscribe_url:
        url = urlsplit(task.unsubscribe_url)
        if url.scheme != "https" and url.hostname not in ("localhost", "127.0.0.1"):
            raise UndeliverableTask("an unsubscribe link is an https URL (RFC 8058)")
        headers["List-Unsubscribe"] = f"<{task.unsubscribe_url}>"
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    return Letter(task.to, sender_address(), subject, text, headers)


# -- bounces and complaints -------------------------------------------------------------


class NotificationReceipt(BaseModel):
    received: bool
    duplicate: bool
    suppressed: list[str]


@domain.post(NOTIFICATIONS_ROUTE, response=NotificationReceipt, access=INTERNAL)
async def receive_notification(request: Request[None], ctx: Context) -> NotificationReceipt:
    """An SES bounce or complaint notification as SNS delivers it: permanent bounces and
    complaints put their recipients on the suppression list, each with EMAIL_BOUNCED once.
    INTERNAL: reached by a platform caller, never through the public gateway."""
    try:
        notification = SnsNotification.model_validate_json(request.raw_body)
        found = suppressions(notification)
    except (ValidationError, ValueError) as error:
        raise MalformedNotification(
            "the body is not an SES bounce or complaint notification sent through SNS"
        ) from error
    receipt = {"PK": f"NOTIFICATION#{notification.MessageId}", "SK": "RECEIVED"}
    fresh = [
        (address, kind)
        for address, kind in found
        if await ctx.table.get(_suppression_key(address), consistent=True) is None
    ]
    try:
        async with ctx.unit_of_work() as uow:
            uow.put({**receipt, "received_at": _iso(ctx)}, condition=Attr("PK").not_exists())
            for address, kind in fresh:
                uow.put(
                    {**_suppression_key(address), "kind": kind, "since": _iso(ctx)},
                    condition=Attr("PK").not_exists(),
                )
                uow.publish(EmailBounced(email=address, kind=kind), subject=address)
    except TransactionCanceled:
        return NotificationReceipt(received=True, duplicate=True, suppressed=[])
    return NotificationReceipt(
        received=True, duplicate=False, suppressed=[address for address, _ in fresh]
    )


# -- the local mailbox ------------------------------------------------------------------


class MailboxQuery(PageQuery):
    to: EmailAddress = Field(description="the recipient whose letters to read")


class MailboxLetter(BaseModel):
    message_id: str
    to: str
    sender: str
    subject: str
    text: str
    headers: dict[str, str]
    sent_at: str


class Mailbox(BaseModel):
    items: list[MailboxLetter]
    cursor: str | None


@domain.get("/mail", response=Mailbox, access=PUBLIC, query=MailboxQuery)
async def read_mailbox(request: Request[None], ctx: Context) -> Mailbox:
    """The letters the local mailer kept for one address, oldest first. Only where the local
    mailer runs (`tctf run`): anywhere else there is no mailbox (404); and only to a caller
    on this machine, whatever address `tctf run` listens on (403 to any other peer)."""
    if ctx.mail_provider is not None:
        raise NoLocalMailbox("mail goes through a provider here; there is no local mailbox")
    if not _on_this_machine(request.client):
        raise MailboxNotLocal(
            "the local mailbox answers only on loopback: read it on the machine running "
            "tctf run (tctf mail --to ADDRESS)"
        )
    query = request.params
    assert isinstance(query, MailboxQuery)
    page = await read_page(ctx.table, Key("PK").eq(mailbox_key(query.to, "")["PK"]), query)
    return Mailbox(
        items=[
            MailboxLetter(
                message_id=i["message_id"],
                to=i["to"],
                sender=i["from"],
                subject=i["subject"],
                text=i["text"],
                headers=i["headers"],
                sent_at=i["sent_at"],
            )
            for i in page.items
        ],
        cursor=page.cursor,
    )
