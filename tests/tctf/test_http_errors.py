"""The platform's HTTP answers when things fail: an unreachable table and an unreachable
publisher are both a 503 to retry, and a failure's log line names the answer's correlation id."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import orjson
import pytest
from pydantic import BaseModel

from adapters.aws.dynamodb import DynamoTables
from adapters.aws.local import free_port
from adapters.aws.session import AwsSettings
from bus import Context, Domain, Event, Request
from bus.http import HttpRequest, HttpResponse
from bus.observability import JsonFormatter
from domains.users.app import domain as users
from tctf.aws import transport_factory
from tctf.platform import Platform


class Note(BaseModel):
    text: str


class Noted(Event):
    type = "NOTED"
    text: str


notes = Domain("notes")


@notes.post("/notes", status=202)
async def add_note(request: Request[Note], ctx: Context) -> None:
    if request.body.text == "crash":
        logging.getLogger("tctf.notes.store").warning("about to fail")
        raise RuntimeError("bug")
    ctx.publish(Noted(text=request.body.text))


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """What `tctf run` prints: every `tctf.*` line as JSON, formatted as it is written."""
    lines = io.StringIO()
    handler = logging.StreamHandler(lines)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("tctf")
    logger.addHandler(handler)
    try:
        yield lines
    finally:
        logger.removeHandler(handler)


@pytest.fixture
def unreachable(monkeypatch: pytest.MonkeyPatch) -> AwsSettings:
    """An endpoint nothing listens on: every connection is refused at once."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    return AwsSettings(
        endpoint_url=f"http://127.0.0.1:{free_port()}", sdk_max_attempts=1, retry_deadline=0.2
    )


def post(path: str, body: object) -> HttpRequest:
    return HttpRequest("POST", path, body=orjson.dumps(body))


def assert_retry_later(response: HttpResponse) -> None:
    assert response.status == 503, response.body
    assert response.headers["content-type"] == "application/problem+json"
    assert int(response.headers["retry-after"]) > 0
    assert response.json()["correlation_id"] == response.headers["x-correlation-id"]


async def test_a_failed_requests_log_lines_carry_the_correlation_id_of_its_answer(
    log_lines: io.StringIO,
) -> None:
    platform = Platform([notes])

    response = await platform.router.handle(post("/notes", {"text": "crash"}))

    assert response.status == 500
    correlation_id = response.json()["correlation_id"]
    lines = [orjson.loads(line) for line in log_lines.getvalue().splitlines()]
    assert [line["message"] for line in lines] == ["about to fail", "route notes.add_note failed"]
    assert [line["correlation_id"] for line in lines] == [correlation_id, correlation_id]
    assert response.headers["x-correlation-id"] == correlation_id


async def test_an_unreachable_table_is_a_503_to_retry_as_an_unreachable_publisher_is(
    unreachable: AwsSettings,
) -> None:
    async with DynamoTables(unreachable) as tables:
        storing = Platform([users], tables=tables)
        stored = await storing.router.handle(post("/users", {"email": "a@b.co", "name": "A"}))
    publishing = Platform([notes], transport=transport_factory("sns", unreachable))
    published = await publishing.router.handle(post("/notes", {"text": "hi"}))

    assert_retry_later(stored)
    assert_retry_later(published)
    assert stored.json()["title"] == published.json()["title"] == "Service Unavailable"
