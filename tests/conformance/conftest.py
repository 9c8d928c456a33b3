"""The transports every conformance test runs against, with what each can and cannot do.

A transport joins the suite by adding a `TransportCase` here; it is done when it passes.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from bus import Domain
from bus.clock import Clock, ManualClock, SystemClock
from bus.memory import in_memory
from bus.runtime import TransportFactory
from bus.testing import Harness


@dataclass(frozen=True)
class Features:
    """What a transport can offer the suite; every flag says why a case is shaped differently."""

    #: The DLQ keeps the reason for records moved after max_receive_count (SQS records none
    #: when it moves them itself; records parked at once carry theirs on every transport).
    exhausted_reasons: bool = True
    #: Largest message the publish path accepts: SNS's 256 KiB; EventBridge and SQS take 1 MiB.
    publish_limit: int = 256 * 1024


@dataclass(frozen=True)
class TransportCase:
    name: str
    factory: Callable[[pytest.FixtureRequest], TransportFactory]
    clock: Callable[[], Clock]
    features: Features = Features()


def _aws(kind: str) -> Callable[[pytest.FixtureRequest], TransportFactory]:
    """An AWS transport on the session's moto server (a real HTTP endpoint on loopback)."""

    def factory(request: pytest.FixtureRequest) -> TransportFactory:
        from adapters.aws.eventbridge import eventbridge
        from adapters.aws.session import AwsSettings
        from adapters.aws.sns_sqs import sns_sqs
        from adapters.lambda_.sqs import sqs_batch_handler

        settings = AwsSettings(endpoint_url=request.getfixturevalue("moto_endpoint"))
        build = sns_sqs if kind == "sns" else eventbridge
        return build(settings, handler_for=sqs_batch_handler)

    return factory


CASES = [
    TransportCase("memory", lambda request: in_memory(seed=7), ManualClock),
    TransportCase("sns_sqs", _aws("sns"), SystemClock, Features(exhausted_reasons=False)),
    TransportCase(
        "eventbridge",
        _aws("eventbridge"),
        SystemClock,
        Features(exhausted_reasons=False, publish_limit=1024 * 1024),
    ),
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
