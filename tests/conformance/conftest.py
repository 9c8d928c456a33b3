"""The transports every conformance test runs against, with what each can and cannot do.

A transport joins the suite by adding a `TransportCase` here; it is done when it passes.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from bus import Domain
from bus.clock import Clock, ManualClock
from bus.runtime import TransportFactory
from bus.testing import Harness, in_memory


@dataclass(frozen=True)
class Features:
    """What a transport can offer the suite; every flag says why a case is shaped differently."""

    #: The DLQ keeps the reason a record was dead-lettered (SQS itself records none).
    dead_letter_reasons: bool = True


@dataclass(frozen=True)
class TransportCase:
    name: str
    factory: Callable[[pytest.FixtureRequest], TransportFactory]
    clock: Callable[[], Clock]
    features: Features = Features()


CASES = [
    TransportCase("memory", lambda request: in_memory(seed=7), ManualClock),
]

_apps = itertools.count()


@pytest.fixture(params=CASES, ids=lambda case: case.name)
def transport_case(request: pytest.FixtureRequest) -> TransportCase:
    case: TransportCase = request.param
    return case


@pytest.fixture
def features(transport_case: TransportCase) -> Features:
    return transport_case.features


@pytest.fixture
def harness(
    transport_case: TransportCase, request: pytest.FixtureRequest
) -> Callable[..., Harness]:
    """Build a harness on the case's transport; each gets its own resource names."""

    def build(*domains: Domain) -> Harness:
        return Harness(
            *domains,
            transport=transport_case.factory(request),
            clock=transport_case.clock(),
            app=f"conf{next(_apps)}",
        )

    return build
