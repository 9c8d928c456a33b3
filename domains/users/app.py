"""The users domain: sign-up and profiles, stored in its own table, announcing USER_CREATED."""

from __future__ import annotations

from pydantic import BaseModel, Field

from bus import Attr, Conflict, Context, Domain, NotFound, Request, Storage, TransactionCanceled
from domains.users.contracts import UserCreated

domain = Domain("users", storage=Storage())


class SignUp(BaseModel):
    email: str = Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=254)
    name: str = Field(min_length=1, max_length=200)


class User(BaseModel):
    user_id: str
    email: str
    name: str


@domain.post("/users", response=User, status=201)
async def sign_up(request: Request[SignUp], ctx: Context) -> User:
    """Create a user and announce it in one transaction; an e-mail signs up once."""
    body = request.body
    user = User(user_id=ctx.new_id(), email=body.email.lower(), name=body.name)
    try:
        async with ctx.unit_of_work() as uow:
            uow.put({"PK": f"USER#{user.user_id}", "SK": "PROFILE", **user.model_dump()})
            uow.put(
                {"PK": f"EMAIL#{user.email}", "SK": "EMAIL", "user_id": user.user_id},
                condition=Attr("PK").not_exists(),
            )
            uow.publish(UserCreated(**user.model_dump()), subject=user.user_id)
    except TransactionCanceled as error:
        raise Conflict(f"{user.email} is already signed up") from error
    ctx.metrics.add("UsersSignedUp")
    return user


@domain.get("/users/{user_id}", response=User)
async def get_user(request: Request[None], ctx: Context) -> User:
    item = await ctx.table.get({"PK": f"USER#{request.path_params['user_id']}", "SK": "PROFILE"})
    if item is None:
        raise NotFound(f"no user {request.path_params['user_id']}")
    return User.model_validate(item)
