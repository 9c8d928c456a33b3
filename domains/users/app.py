"""The users domain: an API to sign up, publishing USER_CREATED."""

from __future__ import annotations

from pydantic import BaseModel, Field

from bus import Context, Domain, Request
from domains.users.contracts import UserCreated

domain = Domain("users")


class SignUp(BaseModel):
    email: str = Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=254)
    name: str = Field(min_length=1, max_length=200)


class SignedUp(BaseModel):
    user_id: str
    email: str
    name: str


@domain.post("/users", body=SignUp, response=SignedUp, status=201)
async def sign_up(request: Request, ctx: Context) -> SignedUp:
    """Create a user and announce it; the event leaves only if this returns."""
    body = request.body
    assert isinstance(body, SignUp)
    user_id = ctx.new_id()
    ctx.publish(UserCreated(user_id=user_id, email=body.email, name=body.name), subject=user_id)
    ctx.metrics.add("UsersSignedUp")
    return SignedUp(user_id=user_id, email=body.email, name=body.name)
