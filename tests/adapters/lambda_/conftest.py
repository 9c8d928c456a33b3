"""Fixtures for the Lambda adapter: AWS's own sample events, a small domain, a publisher."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, Field

from adapters.aws.dead_letters import MemoryDeadLetters
from adapters.lambda_.app import LambdaApp
from bus import Context, Domain, DomainSettings, Event, Request
from bus.access import INTERNAL, SIGNED_IN
from bus.envelope import Envelope
from tests.fixtures import AWS

SAMPLES = AWS
POWERTOOLS = SAMPLES / "powertools-lambda-python/tests/events"
LAMBDA_GO = SAMPLES / "aws-lambda-go/events/testdata"
LOCALSTACK = SAMPLES / "localstack/tests/aws/services"
#: An EventBridge scheduled rule's event, copied byte for byte from awslabs/aws-lambda-rust-runtime
#: lambda-events/src/fixtures/example-eventbridge-schedule.json (commit 5dcad203ab86,
#: Apache-2.0); the shape of AWS's own sample (`sam local generate-event cloudwatch
#: scheduled-event`).
SCHEDULED_EVENT = Path(__file__).parent / "samples" / "example-eventbridge-schedule.json"


def sample(path: Path) -> dict[str, Any]:
    """A fresh copy of an AWS sample event."""
    return copy.deepcopy(json.loads(path.read_text()))


class ItemReserved(Event):
    type = "ITEM_RESERVED"

    sku: str
    quantity: int


class Reserve(BaseModel):
    sku: str = Field(min_length=1)
    quantity: int = Field(gt=0)


def envelope(event: Event, id: str = "evt-1", correlation: str = "corr-1") -> Envelope:
    return Envelope(
        id=id,
        source="orders",
        type=event.type,
        time="2026-01-01T00:00:00.000Z",
        dataversion=event.version,
        correlationid=correlation,
        data=event,
    )


def body(sku: str = "A-1", id: str = "evt-1") -> str:
    """An encoded ITEM_RESERVED envelope, as it sits in a queue."""
    return envelope(ItemReserved(sku=sku, quantity=1), id).encode().decode()


class Inventory:
    """A domain whose handler records its calls and fails for sku "boom"."""

    def __init__(self) -> None:
        self.handled: list[ItemReserved] = []
        self.domain = Domain("inventory", DomainSettings(retry_attempts=1))
        domain = self.domain

        @domain.on(ItemReserved)
        async def reserve(event: ItemReserved, ctx: Context) -> None:
            if event.sku == "boom":
                raise RuntimeError("warehouse unreachable")
            self.handled.append(event)
            ctx.publish(ItemReserved(sku=event.sku, quantity=event.quantity + 1))

        @domain.post("/items", body=Reserve, status=201)
        async def create(request: Request[Reserve], ctx: Context) -> dict[str, Any]:
            ctx.publish(ItemReserved(sku=request.body.sku, quantity=request.body.quantity))
            return {"sku": request.body.sku, "query": dict(request.query)}

        @domain.get("/items/{sku}")
        async def show(request: Request[None], ctx: Context) -> dict[str, Any]:
            return {"sku": request.path_params["sku"], "agent": request.headers.get("user-agent")}

        @domain.get("/internal/stock", access=INTERNAL)
        async def stock(request: Request[None], ctx: Context) -> dict[str, Any]:
            return {"in_stock": 3}

        @domain.get("/me", access=SIGNED_IN)
        async def mine(request: Request[None], ctx: Context) -> dict[str, Any]:
            assert request.principal is not None
            return {"sub": request.principal.subject, "roles": sorted(request.principal.roles)}


class Published:
    """A publisher that keeps what handlers publish and send, in order."""

    def __init__(self) -> None:
        self.events: list[Envelope] = []
        self.tasks: list[Envelope] = []

    async def publish(self, envelopes: Sequence[Envelope]) -> None:
        self.events.extend(envelopes)

    async def send(self, envelopes: Sequence[Envelope]) -> None:
        self.tasks.extend(envelopes)


class LambdaContext:
    """Lambda's context object: the remaining time follows a script, one value per call."""

    def __init__(self, remaining_ms: Sequence[int] = (60_000,)) -> None:
        self._remaining = list(remaining_ms)
        self.function_name = "tctf-inventory"
        self.aws_request_id = "request-1"

    def get_remaining_time_in_millis(self) -> int:
        return self._remaining.pop(0) if len(self._remaining) > 1 else self._remaining[0]


@pytest.fixture
def inventory() -> Inventory:
    return Inventory()


@pytest.fixture
def published() -> Published:
    return Published()


@pytest.fixture
def dead_letters() -> MemoryDeadLetters:
    return MemoryDeadLetters()


@pytest.fixture
def app(
    inventory: Inventory, published: Published, dead_letters: MemoryDeadLetters
) -> Iterator[LambdaApp]:
    lambda_app = LambdaApp(
        inventory.domain,
        published,
        dead_letters=dead_letters,
        dead_letter_queue="tctf-inventory-events-dlq",
    )
    yield lambda_app
    lambda_app.close()
