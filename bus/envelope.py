"""The wire form of every event and task: a CloudEvents 1.0 envelope encoded with orjson.

Encoding happens once per publish and decoding once per delivery, so both are single passes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, Final, NamedTuple

import orjson

from bus.errors import MalformedEnvelope, MessageTooLarge, UnencodableMessage
from bus.limits import ServiceLimits
from bus.messages import Message

SPECVERSION: Final = "1.0"
_REQUIRED: Final = ("id", "source", "type", "time", "dataversion", "correlationid")
#: W3C Trace Context `traceparent`: version (never ff), 16-byte trace id and 8-byte parent id
#: (neither all zeros), flags; one match, checked on every delivery.
_TRACEPARENT: Final = re.compile(
    r"(?!ff)[0-9a-f]{2}-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}"
)
#: Longest `subject` or `causationid` adopted from a delivered envelope. Both are ids that
#: events published while handling it inherit, so an oversized one would grow every
#: downstream message towards its size limit.
MAX_INHERITED_ID_LENGTH: Final = 256
#: The integers orjson writes and reads exactly: JSON from the wire holds no others.
_INT_MIN: Final = -(2**63)
_INT_MAX: Final = 2**64 - 1
#: A run of digits long enough to be out of that range; shorter runs never are.
_LONG_DIGITS: Final = re.compile(rb"[0-9]{19,}")


class Envelope(NamedTuple):
    """CloudEvents attributes plus `dataversion`, `correlationid`, `causationid`, `traceparent`.

    `data` is the message model when the envelope was made by a producer, and the decoded
    JSON object when it was read off a queue. A named tuple: immutable and cheap to build,
    which matters once per publish and once per delivery.
    """

    id: str
    source: str
    type: str
    time: str
    dataversion: int
    correlationid: str
    data: Message | Mapping[str, Any]
    causationid: str | None = None
    traceparent: str | None = None
    subject: str | None = None
    specversion: str = SPECVERSION

    def encode(self) -> bytes:
        """The envelope as compact JSON bytes (data serialised by pydantic-core in one pass)."""
        data = self.data
        if isinstance(data, Message):
            payload = data.__pydantic_serializer__.to_json(data)
            if _LONG_DIGITS.search(payload) is not None:
                _refuse_wide_integers(self.type, payload)
            body: Any = orjson.Fragment(payload)
        else:
            body = data
        attributes: dict[str, Any] = {
            "specversion": self.specversion,
            "id": self.id,
            "source": self.source,
            "type": self.type,
            "time": self.time,
            "dataversion": self.dataversion,
            "correlationid": self.correlationid,
        }
        if self.causationid is not None:
            attributes["causationid"] = self.causationid
        if self.traceparent is not None:
            attributes["traceparent"] = self.traceparent
        if self.subject is not None:
            attributes["subject"] = self.subject
        attributes["datacontenttype"] = "application/json"
        attributes["data"] = body
        try:
            return orjson.dumps(attributes)
        except orjson.JSONEncodeError as error:
            raise UnencodableMessage(f"{self.type} {self.id} cannot be encoded: {error}") from None

    def data_dict(self) -> Mapping[str, Any]:
        """The payload as a JSON object, whichever form `data` holds."""
        data = self.data
        if isinstance(data, Message):
            return data.model_dump(mode="json")
        return data

    @classmethod
    def decode(cls, body: bytes | str) -> Envelope:
        """Parse and check an encoded envelope; anything unreadable is `MalformedEnvelope`."""
        try:
            raw = orjson.loads(body)
        except orjson.JSONDecodeError as error:
            raise MalformedEnvelope(f"record body is not JSON: {error}") from None
        if not isinstance(raw, dict):
            raise MalformedEnvelope(f"record body is JSON {type(raw).__name__}, not an object")
        return cls.from_dict(raw)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Envelope:
        """Check and adopt an already-parsed envelope object."""
        try:
            attributes = (
                raw["id"],
                raw["source"],
                raw["type"],
                raw["time"],
                raw["dataversion"],
                raw["correlationid"],
                raw["data"],
            )
        except KeyError:
            missing = [name for name in _REQUIRED if name not in raw]
            raise MalformedEnvelope(
                f"envelope lacks required attributes: {', '.join(missing)}"
            ) from None
        id_, source, type_, time, version, correlationid, data = attributes
        if (
            raw.get("specversion") != SPECVERSION
            or type(version) is not int
            or version < 1
            or type(data) is not dict
            or not (
                type(id_) is str
                and type(source) is str
                and type(type_) is str
                and type(time) is str
                and type(correlationid) is str
                and id_
                and source
                and type_
                and time
                and correlationid
                and len(id_) <= MAX_INHERITED_ID_LENGTH
                and len(correlationid) <= MAX_INHERITED_ID_LENGTH
            )
        ):
            _explain(raw)
        causationid = raw.get("causationid")
        if causationid is not None:
            causationid = _inherited_id(causationid)
        traceparent = raw.get("traceparent")
        if traceparent is not None:
            traceparent = _traceparent(traceparent)
        subject = raw.get("subject")
        if subject is not None:
            subject = _inherited_id(subject)
        # tuple.__new__ skips the named tuple's Python-level __new__: once per delivery.
        return _new_envelope(
            cls,
            (
                id_,
                source,
                type_,
                time,
                version,
                correlationid,
                data,
                causationid,
                traceparent,
                subject,
                SPECVERSION,
            ),
        )


_new_envelope: Final = tuple.__new__


def _traceparent(value: Any) -> str | None:
    """A W3C `traceparent` as sent, or None for anything else: an unusable trace context is
    dropped (as the W3C specification says), never carried on or failed over."""
    if type(value) is str and _TRACEPARENT.fullmatch(value) is not None:
        return value
    return None


def _inherited_id(value: Any) -> str | None:
    """An optional id attribute as sent if it is a short printable string, else None."""
    if type(value) is str and 0 < len(value) <= MAX_INHERITED_ID_LENGTH and value.isprintable():
        return value
    return None


def adoptable_id(value: str) -> bool:
    """Whether a consumer would adopt `value` as a `subject` or `causationid`."""
    return _inherited_id(value) is not None


def check_adoptable(envelope: Envelope) -> None:
    """Raise `UnencodableMessage` unless a consumer's `Envelope.from_dict` would take every
    attribute as staged: refused before its unit of work commits, never parked by the relay
    after (a committed fact announced to no one) nor silently dropped by a consumer."""
    subject = envelope.subject
    causationid = envelope.causationid
    traceparent = envelope.traceparent
    if (
        type(envelope.correlationid) is str
        and 0 < len(envelope.correlationid) <= MAX_INHERITED_ID_LENGTH
        and type(envelope.id) is str
        and 0 < len(envelope.id) <= MAX_INHERITED_ID_LENGTH
        and (subject is None or _inherited_id(subject) is not None)
        and (causationid is None or _inherited_id(causationid) is not None)
        and (traceparent is None or _traceparent(traceparent) is not None)
        and type(envelope.dataversion) is int
        and envelope.dataversion >= 1
        and type(envelope.source) is str
        and type(envelope.type) is str
        and type(envelope.time) is str
        and envelope.source
        and envelope.type
        and envelope.time
        and envelope.specversion == SPECVERSION
    ):
        return
    _explain_unadoptable(envelope)


def _explain_unadoptable(envelope: Envelope) -> None:
    """Raise why `check_adoptable` refuses `envelope`, in the words a consumer would use."""
    what = f"{envelope.type} {str(envelope.id)[:MAX_INHERITED_ID_LENGTH]}"
    try:
        read = Envelope.from_dict({**envelope._asdict(), "data": {}})
    except MalformedEnvelope as error:
        raise UnencodableMessage(f"{what} would be refused by its consumers: {error}") from None
    for name in ("causationid", "subject", "traceparent"):
        staged = getattr(envelope, name)
        if getattr(read, name) != staged:
            raise UnencodableMessage(
                f"{what}: envelope attribute {name!r} ({len(str(staged))} characters) would be "
                f"dropped by its consumers, who take only a non-empty printable string of at "
                f"most {MAX_INHERITED_ID_LENGTH} characters"
            )


def _refuse_wide_integers(message_type: str, payload: bytes) -> None:
    """Raise `UnencodableMessage` if the JSON `payload` holds an integer outside 64 bits."""

    def checked(literal: str) -> int:
        number = int(literal)
        if not _INT_MIN <= number <= _INT_MAX:
            shown = literal if len(literal) <= 40 else f"{literal[:20]}...({len(literal)} digits)"
            raise UnencodableMessage(
                f"{message_type} holds the integer {shown}, outside the 64-bit range "
                f"[{_INT_MIN}, {_INT_MAX}] its consumers read exactly; send it as a string"
            )
        return number

    json.loads(payload, parse_int=checked)


def _explain(raw: Mapping[str, Any]) -> None:
    """Raise the precise reason an envelope that failed the fast checks is malformed."""
    if raw.get("specversion") != SPECVERSION:
        raise MalformedEnvelope(
            f"envelope specversion is {raw.get('specversion')!r}; only '1.0' is understood"
        )
    version = raw["dataversion"]
    if type(version) is not int or version < 1:
        raise MalformedEnvelope(f"dataversion must be a positive integer, got {version!r}")
    if not isinstance(raw["data"], dict):
        raise MalformedEnvelope("envelope data must be a JSON object")
    for name in ("id", "source", "type", "time", "correlationid"):
        if not isinstance(raw[name], str) or not raw[name]:
            raise MalformedEnvelope(f"envelope attribute {name!r} must be a non-empty string")
    for name in ("id", "correlationid"):
        if len(raw[name]) > MAX_INHERITED_ID_LENGTH:
            raise MalformedEnvelope(
                f"envelope attribute {name!r} is {len(raw[name])} characters, over the "
                f"{MAX_INHERITED_ID_LENGTH} every event published in its handling would inherit"
            )
    raise MalformedEnvelope("envelope is malformed")


def message_attributes(envelope: Envelope) -> dict[str, tuple[str, str]]:
    """The attributes a queue message carries beside the body, as (data type, value).

    SNS filter policies and tracing read them; SNS and SQS count them in the size limit.
    """
    attributes = {
        "type": ("String", envelope.type),
        "dataversion": ("Number", str(envelope.dataversion)),
        "source": ("String", envelope.source),
        "correlationid": ("String", envelope.correlationid),
    }
    if envelope.traceparent:
        attributes["traceparent"] = ("String", envelope.traceparent)
    return attributes


def message_size(envelope: Envelope, body: bytes) -> int:
    """Bytes SNS and SQS count for a message: the body plus each attribute's name, data type
    and value (the same sum as `message_attributes` would give, without building it)."""
    size = (
        len(body)
        + _FIXED_ATTRIBUTE_BYTES
        + _utf8_len(envelope.type + envelope.source + envelope.correlationid)
        + len(str(envelope.dataversion))
    )
    if envelope.traceparent:
        size += _TRACEPARENT_BYTES + _utf8_len(envelope.traceparent)
    return size


_FIXED_ATTRIBUTE_BYTES: Final = sum(
    len(name) + len(kind)
    for name, kind in (
        ("type", "String"),
        ("dataversion", "Number"),
        ("source", "String"),
        ("correlationid", "String"),
    )
)
_TRACEPARENT_BYTES: Final = len("traceparent") + len("String")


def _utf8_len(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode())


def check_message_size(envelope: Envelope, body: bytes, limits: ServiceLimits) -> None:
    """Raise `MessageTooLarge` if the message (body and attributes) is over the limit."""
    size = message_size(envelope, body)
    if size > limits.max_message_bytes:
        raise MessageTooLarge(
            size, limits.max_message_bytes, limits.service, f"{envelope.type} {envelope.id}"
        )


def check_size(body: bytes, limits: ServiceLimits, what: str = "message") -> None:
    """Raise `MessageTooLarge` if a bare `body` is over the service's message size limit."""
    if len(body) > limits.max_message_bytes:
        raise MessageTooLarge(len(body), limits.max_message_bytes, limits.service, what)
