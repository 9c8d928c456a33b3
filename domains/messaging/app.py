"""The messaging domain: welcomes new users through its own e-mail task queue."""

from __future__ import annotations

from bus import Context, Domain
from domains.messaging.contracts import SendEmail, WelcomeEmailSent
from domains.users.contracts import UserCreated

domain = Domain("messaging", sends=[SendEmail])


@domain.on(UserCreated)
async def welcome_new_user(event: UserCreated, ctx: Context) -> None:
    """Queue the welcome e-mail and record the fact; both leave only if this succeeds."""
    ctx.send(SendEmail(to=event.email, template="welcome", name=event.name))
    ctx.publish(WelcomeEmailSent(user_id=event.user_id, email=event.email), subject=event.user_id)


@domain.task(SendEmail)
async def send_email(task: SendEmail, ctx: Context) -> None:
    """Deliver an e-mail (logged here; a provider adapter plugs in behind the same task)."""
    ctx.log.info("email sent", extra={"to": task.to, "template": task.template})
    ctx.metrics.add("EmailsSent")
