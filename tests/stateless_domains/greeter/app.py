"""The greeter domain: on USER_CREATED, a GREET task to its own queue; GREET does nothing
more. Stateless, so its handled records are kept in `<app>-greeter-idempotency`
(decision 0010)."""

from __future__ import annotations

from bus import Context, Domain, Task
from domains.users.contracts import UserCreated


class Greet(Task):
    """Greet one new user."""

    type = "GREET"
    domain = "greeter"

    user_id: str


domain = Domain("greeter", sends=[Greet])


@domain.on(UserCreated)
async def welcome_new_user(event: UserCreated, ctx: Context) -> None:
    ctx.send(Greet(user_id=event.user_id))


@domain.task(Greet)
async def greet(task: Greet, ctx: Context) -> None:
    ctx.metrics.add("Greeted")
