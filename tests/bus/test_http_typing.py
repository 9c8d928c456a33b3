"""Type checkers see a route's body model: `Request[SignUp]` types `request.body` as `SignUp`,
so a handler needs no `isinstance` check, and a typo in a field is caught before it runs."""

from __future__ import annotations

from pathlib import Path

from mypy import api

ROOT = Path(__file__).resolve().parents[2]

HANDLERS = """
from typing import assert_type

from pydantic import BaseModel

from bus import Context, Domain, Request

domain = Domain("typing")


class SignUp(BaseModel):
    email: str


@domain.post("/users")
async def sign_up(request: Request[SignUp], ctx: Context) -> None:
    assert_type(request.body, SignUp)
    assert_type(request.body.email, str)
    request.body.emial


@domain.get("/users/{user_id}")
async def get_user(request: Request[None], ctx: Context) -> None:
    assert_type(request.body, None)
"""


def test_mypy_types_request_body_as_the_routes_model(tmp_path: Path) -> None:
    module = tmp_path / "typed_routes.py"
    module.write_text(HANDLERS)

    report, errors, status = api.run(
        [
            "--config-file",
            str(ROOT / "pyproject.toml"),
            "--strict",
            "--no-error-summary",
            str(module),
        ]
    )

    assert errors == ""
    line = HANDLERS.splitlines().index("    request.body.emial") + 1
    (reported,) = report.splitlines()
    # Only the file's name: mypy's cache may report it under an earlier run's directory.
    assert f'typed_routes.py:{line}: error: "SignUp" has no attribute "emial"' in reported
    assert status == 1
