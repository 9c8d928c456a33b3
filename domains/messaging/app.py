"""The messaging domain: the e-mails other domains ask for, through its own task queue.

It welcomes new users, and delivers the one-time links auth_password sends. A link is a
secret: it is never logged. Under `tctf run`, `TCTF_MAILBOX` names a directory where each
e-mail is written whole, as a local mail catcher would keep it.
"""

from __future__ import annotations

import os

import orjson

from bus import Context, Domain
from domains.messaging.contracts import SendEmail, Template, WelcomeEmailSent
from domains.users.contracts import UserCreated

domain = Domain("messaging", sends=[SendEmail])

SUBJECTS: dict[Template, str] = {
    "welcome": "Welcome",
    "set-password": "Choose your password",
    "reset-password": "Reset your password",
}


@domain.on(UserCreated)
async def welcome_new_user(event: UserCreated, ctx: Context) -> None:
    """Queue the welcome e-mail and record the fact; both leave only if this succeeds."""
    ctx.send(SendEmail(to=event.email, template="welcome", name=event.name))
    ctx.publish(WelcomeEmailSent(user_id=event.user_id, email=event.email), subject=event.user_id)


@domain.task(SendEmail)
async def send_email(task: SendEmail, ctx: Context) -> None:
    """Deliver an e-mail (logged here, without its link; a provider adapter plugs in behind
    the same task)."""
    ctx.log.info(
        "email sent", extra={"to": task.to, "template": task.template, "has_link": bool(task.link)}
    )
    ctx.metrics.add("EmailsSent")
    mailbox = os.environ.get("TCTF_MAILBOX")
    if mailbox and ctx.envelope is not None:
        letter = {"to": task.to, "subject": SUBJECTS[task.template], "name": task.name}
        if task.link:
            letter["link"] = task.link
        import anyio  # only under `tctf run`: a function's cold start never needs it

        folder = anyio.Path(mailbox)
        await folder.mkdir(parents=True, exist_ok=True)
        await (folder / f"{ctx.envelope.id}.json").write_bytes(orjson.dumps(letter))
