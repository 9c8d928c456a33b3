"""The entry point built from the environment, on the in-memory transport and on moto server."""

from __future__ import annotations

import itertools
import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from adapters.aws.dead_letters import REASON_ATTRIBUTE
from adapters.aws.ses import SesMailProvider
from adapters.lambda_ import entry
from adapters.lambda_.app import LambdaApp
from adapters.lambda_.boot import build
from bus import ConfigurationError, Domain
from bus.envelope import Envelope
from bus.memory import InMemoryTransport
from domains.users.contracts import UserCreated
from tests.cold_start import NO_AWS, modules_after_import

from .conftest import LAMBDA_GO, LambdaContext, sample

_apps = itertools.count()


def _record(message_id: str, body: str, queue_arn: str) -> dict:  # type: ignore[type-arg]
    record = sample(LAMBDA_GO / "sqs-event.json")["Records"][0]
    return {**record, "messageId": message_id, "body": body, "eventSourceARN": queue_arn}


def _user_created(id: str = "u-evt-1") -> str:
    event = UserCreated(user_id="u1", email="ada@example.com", name="Ada")
    return (
        Envelope(
            id=id,
            source="users",
            type=event.type,
            time="2026-01-01T00:00:00.000Z",
            dataversion=event.version,
            correlationid="corr-9",
            data=event,
        )
        .encode()
        .decode()
    )


@pytest.fixture
def memory_app(greeter: Domain) -> Iterator[LambdaApp]:
    app = build({"TCTF_DOMAIN": "greeter", "TCTF_TRANSPORT": "memory"})
    yield app
    app.close()


def test_built_from_the_environment_the_domain_handles_its_events(memory_app: LambdaApp) -> None:
    arn = "arn:aws:sqs:us-east-1:123456789012:tctf-greeter-events"
    event = {"Records": [_record("m1", _user_created(), arn)]}

    assert memory_app(event, LambdaContext()) == {"batchItemFailures": []}
    transport = memory_app.publisher
    assert isinstance(transport, InMemoryTransport)
    (queued,) = transport.queues["tctf-greeter-tasks"].messages()
    sent = json.loads(queued.body)
    assert (sent["type"], sent["correlationid"], sent["causationid"]) == (
        "GREET",
        "corr-9",
        "u-evt-1",
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "TCTF_DOMAIN is not set"),
        ({"TCTF_DOMAIN": "nowhere"}, "no domain .nowhere.: expected domains/nowhere/app.py"),
        ({"TCTF_DOMAIN": "users", "TCTF_TRANSPORT": "kafka"}, "TCTF_TRANSPORT='kafka'"),
        ({"TCTF_DOMAIN": "users"}, "TCTF_TRANSPORT=sns needs TCTF_TOPIC_ARN"),
        (
            {"TCTF_DOMAIN": "users", "TCTF_TRANSPORT": "eventbridge", "TCTF_EVENT_BUS": "x"},
            "TCTF_EVENT_BUS='x' does not name 'tctf-bus'",
        ),
        (
            {"TCTF_DOMAIN": "users", "TCTF_SAFETY_MARGIN_MS": "soon"},
            "TCTF_SAFETY_MARGIN_MS must be milliseconds",
        ),
        (
            {"TCTF_DOMAIN": "users", "TCTF_PUBLISH_DEADLINE_S": "0"},
            "TCTF_PUBLISH_DEADLINE_S must be a positive number of seconds",
        ),
        (
            {"TCTF_DOMAIN": "users", "TCTF_OUTBOX_SWEEP_AGE_S": "-1"},
            "TCTF_OUTBOX_SWEEP_AGE_S must be a number of seconds, 0 or more, got '-1'",
        ),
        (
            {"TCTF_DOMAIN": "users", "TCTF_OUTBOX_SWEEP_AGE_S": "15m"},
            "TCTF_OUTBOX_SWEEP_AGE_S must be a number of seconds",
        ),
    ],
)
def test_configuration_mistakes_are_named(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        build(env)


def test_the_outbox_sweep_age_is_read_from_the_environment() -> None:
    default = build({"TCTF_DOMAIN": "users", "TCTF_TRANSPORT": "memory"})
    chosen = build(
        {"TCTF_DOMAIN": "users", "TCTF_TRANSPORT": "memory", "TCTF_OUTBOX_SWEEP_AGE_S": "60"}
    )
    default.close()
    chosen.close()

    assert (default.outbox_sweep_age_s, chosen.outbox_sweep_age_s) == (900.0, 60.0)


def test_handler_without_a_domain_says_what_to_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TCTF_DOMAIN", raising=False)
    monkeypatch.setattr(entry, "_app", None)
    with pytest.raises(ConfigurationError, match="TCTF_DOMAIN is not set"):
        entry.handler({"Records": []}, LambdaContext())


def test_on_moto_the_lambda_publishes_sends_and_dead_letters(
    moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, greeter: Domain
) -> None:
    app_name = f"lam{next(_apps)}"
    region = "us-east-1"
    monkeypatch.setenv("AWS_DEFAULT_REGION", region)
    env = {
        "TCTF_DOMAIN": "greeter",
        "TCTF_TRANSPORT": "sns",
        "TCTF_APP": app_name,
        "TCTF_TOPIC_ARN": f"arn:aws:sns:{region}:123456789012:{app_name}-events",
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_DEFAULT_REGION": region,
        "TCTF_PROVISION": "1",
    }
    monkeypatch.setattr(entry, "_app", None)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    arn = f"arn:aws:sqs:{region}:123456789012:{app_name}-greeter-events"
    event = {
        "Records": [
            _record("m1", _user_created(), arn),
            _record("m2", "not an envelope", arn),
        ]
    }

    try:
        response = entry.handler(event, LambdaContext())
    finally:
        if entry._app is not None:
            entry._app.close()
        monkeypatch.setattr(entry, "_app", None)

    assert response == {"batchItemFailures": []}
    sqs = boto3.client("sqs", endpoint_url=moto_endpoint, region_name=region)

    def receive(queue: str) -> list[dict[str, Any]]:
        url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
        messages: list[dict[str, Any]] = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
        ).get("Messages", [])
        return messages

    (task,) = receive(f"{app_name}-greeter-tasks")
    assert json.loads(task["Body"])["type"] == "GREET"
    (letter,) = receive(f"{app_name}-greeter-events-dlq")
    assert letter["Body"] == "not an envelope"
    reason = letter["MessageAttributes"][REASON_ATTRIBUTE]["StringValue"]
    assert reason.startswith("record body is not JSON")


def test_a_publish_stops_retrying_when_the_invocation_runs_out_of_time() -> None:
    with socket.socket() as sock:  # a port nobody listens on: every call is refused
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    app = build(
        {
            "TCTF_DOMAIN": "messaging_consumers",
            "TCTF_TRANSPORT": "sns",
            "TCTF_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:tctf-events",
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
    )
    arn = "arn:aws:sqs:us-east-1:123456789012:tctf-messaging_consumers-events"
    try:
        assert app.publisher.settings.retry_deadline == 10.0  # type: ignore[attr-defined]
        started = time.monotonic()
        response = app({"Records": [_record("m1", _user_created(), arn)]}, LambdaContext([4000]))
        elapsed = time.monotonic() - started
        # 4 s left, less the 2 s safety margin: publishing may retry for 2 s.
        assert app.publisher.settings.retry_deadline == 2.0  # type: ignore[attr-defined]
    finally:
        app.close()

    assert response == {"batchItemFailures": [{"itemIdentifier": "m1"}]}
    # The time left, plus botocore's own retries of the last call (backoff up to 1 + 2 s).
    assert elapsed < 4.0 + 3.0


@pytest.mark.parametrize("domain", ["users", "messaging_consumers"])
@pytest.mark.parametrize(
    "transport",
    [
        pytest.param({"TCTF_TRANSPORT": "memory"}, id="memory"),
        pytest.param(
            {
                "TCTF_TRANSPORT": "sns",
                "TCTF_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:tctf-events",
            },
            id="sns",
        ),
        pytest.param(
            {
                "TCTF_TRANSPORT": "eventbridge",
                "TCTF_EVENT_BUS": "arn:aws:events:us-east-1:123456789012:event-bus/tctf-bus",
            },
            id="eventbridge",
        ),
    ],
)
def test_a_cold_start_does_not_import_anyio(domain: str, transport: dict[str, str]) -> None:
    """A function runs on its own asyncio loop: anyio (about 7 ms of a cold start) is for the
    task groups and cancel scopes of serving locally, loaded only when they are used."""
    loaded = modules_after_import({"TCTF_DOMAIN": domain, **transport}, "adapters.lambda_.entry")
    assert "adapters.lambda_.boot" in loaded  # the probe did build the function
    assert not {m for m in loaded if m.partition(".")[0] == "anyio"}


SNS = {
    "TCTF_TRANSPORT": "sns",
    "TCTF_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:tctf-events",
}


@pytest.mark.parametrize(
    ("exporters", "loaded_families"),
    [
        pytest.param({}, set(), id="unset"),
        pytest.param({"OTEL_TRACES_EXPORTER": "none"}, set(), id="none"),
        pytest.param({"OTEL_TRACES_EXPORTER": "console"}, {"opentelemetry.sdk"}, id="console"),
        pytest.param(
            {"OTEL_TRACES_EXPORTER": "otlp"},
            {"opentelemetry.sdk", "opentelemetry.exporter", "google.protobuf"},
            id="otlp",
        ),
    ],
)
def test_a_cold_start_imports_opentelemetry_only_for_the_exporters_named(
    exporters: dict[str, str], loaded_families: set[str]
) -> None:
    """Decisions 0008 and 0012: tracing costs a function's cold start nothing unless an
    OTEL_TRACES_EXPORTER is named, and the OTLP exporter (protobuf, requests) only for otlp."""
    loaded = modules_after_import(
        {"TCTF_DOMAIN": "messaging_consumers", **SNS, **exporters}, "adapters.lambda_.entry"
    )
    assert "adapters.lambda_.boot" in loaded
    families = {"opentelemetry", "opentelemetry.sdk", "opentelemetry.exporter", "google.protobuf"}
    found = {f for f in families if any(m == f or m.startswith(f + ".") for m in loaded)}
    expected = loaded_families | ({"opentelemetry"} if loaded_families else set())
    assert found == expected


@pytest.mark.parametrize(
    ("domain", "sends_through_ses"), [("messaging_consumers", True), ("users", False)]
)
def test_a_function_of_a_domain_declaring_mail_is_given_ses_and_opens_no_client_at_init(
    domain: str, sends_through_ses: bool
) -> None:
    """The SES client is the adapter's, made on the first send: a cold start builds the
    provider and loads neither SES's model nor a connection."""
    app = build({"TCTF_DOMAIN": domain, **SNS, **NO_AWS})
    try:
        assert isinstance(app.mail_provider, SesMailProvider) == sends_through_ses
        if isinstance(app.mail_provider, SesMailProvider):
            assert app.mail_provider.opened is False
    finally:
        app.close()
