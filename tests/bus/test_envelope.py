"""The CloudEvents envelope: one-pass encoding, strict decoding, size limits."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from bus import Event
from bus.envelope import (
    Envelope,
    check_adoptable,
    check_size,
    message_attributes,
    message_size,
)
from bus.errors import MalformedEnvelope, MessageTooLarge, UnencodableMessage
from bus.limits import EVENTBRIDGE, SNS, SQS, path_limit


class Noted(Event):
    type = "NOTED"
    text: str


def make(text: str = "hello") -> Envelope:
    return Envelope(
        id="e1",
        source="notes",
        type="NOTED",
        time="2026-01-01T00:00:00.000Z",
        dataversion=1,
        correlationid="c1",
        data=Noted(text=text),
        causationid="e0",
        subject="n1",
    )


def test_encoding_is_cloudevents_json_and_decodes_to_the_same_attributes() -> None:
    raw = orjson.loads(make().encode())
    assert raw["specversion"] == "1.0" and raw["datacontenttype"] == "application/json"
    assert raw["data"] == {"text": "hello"}
    decoded = Envelope.decode(make().encode())
    assert (decoded.id, decoded.source, decoded.causationid, decoded.subject) == (
        "e1",
        "notes",
        "e0",
        "n1",
    )
    assert decoded.data == {"text": "hello"}


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"not json", "not JSON"),
        (b"[1, 2]", "not an object"),
        (b'{"specversion": "1.0"}', "lacks required attributes"),
        (orjson.dumps({**orjson.loads(make().encode()), "specversion": "0.3"}), "specversion"),
        (orjson.dumps({**orjson.loads(make().encode()), "dataversion": "1"}), "dataversion"),
        (orjson.dumps({**orjson.loads(make().encode()), "data": [1]}), "data must be"),
        (orjson.dumps({**orjson.loads(make().encode()), "type": ""}), "'type'"),
    ],
)
def test_malformed_bodies_are_refused_with_the_reason(body: bytes, reason: str) -> None:
    with pytest.raises(MalformedEnvelope, match=reason):
        Envelope.decode(body)


def test_the_smallest_limit_on_a_path_applies() -> None:
    assert path_limit(SNS, SQS) is SNS
    assert path_limit(EVENTBRIDGE, SQS).max_message_bytes == 1024 * 1024
    body = make("x" * (SNS.max_message_bytes + 1)).encode()
    with pytest.raises(MessageTooLarge, match=r"over the SNS limit of 262144 bytes"):
        check_size(body, SNS)
    check_size(body, SQS)  # fits on a path without SNS


@pytest.mark.parametrize(
    "traceparent", [None, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"]
)
def test_message_size_counts_the_body_and_every_attribute(traceparent: str | None) -> None:
    envelope = make("héllo")._replace(source="notés", traceparent=traceparent)
    body = envelope.encode()
    attributes = message_attributes(envelope)
    expected = len(body) + sum(
        len(name.encode()) + len(kind.encode()) + len(value.encode())
        for name, (kind, value) in attributes.items()
    )
    assert message_size(envelope, body) == expected
    assert ("traceparent" in attributes) == (traceparent is not None)


@pytest.mark.parametrize(
    "change",
    [
        {"id": "i" * 257},
        {"id": ""},
        {"source": ""},
        {"type": ""},
        {"time": ""},
        {"dataversion": 0},
        {"correlationid": "c" * 257},
        {"correlationid": ""},
        {"causationid": "e" * 257},
        {"subject": "s" * 257},
        {"subject": "new\nline"},
        {"subject": ""},
        {"traceparent": "00-" + "0" * 32 + "-" + "b" * 16 + "-01"},
        {"traceparent": "not a traceparent"},
        {"specversion": "0.3"},
    ],
    ids=lambda change: next(iter(change)),
)
def test_an_attribute_a_consumer_would_refuse_or_drop_is_refused_before_it_is_published(
    change: dict[str, Any],
) -> None:
    staged = make()._replace(**change)
    with pytest.raises(UnencodableMessage, match=next(iter(change))):
        check_adoptable(staged)


def test_an_envelope_a_consumer_reads_back_as_staged_is_adoptable() -> None:
    staged = make()._replace(traceparent="00-" + "a" * 32 + "-" + "b" * 16 + "-01")
    check_adoptable(staged)
    assert Envelope.decode(staged.encode())._replace(data=staged.data) == staged
