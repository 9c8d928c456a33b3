"""Reading the bounce and complaint notifications SES publishes to an SNS topic.

SNS delivers a JSON document whose `Message` is itself JSON: SES's notification, with
`notificationType` (identity notifications) or `eventType` (configuration-set event
publishing) `Bounce` or `Complaint`. Only a permanent bounce or a complaint suppresses an
address: a transient bounce (a full mailbox) may well be delivered next time.
Formats: docs.aws.amazon.com/ses/latest/dg/notification-contents.html and
docs.aws.amazon.com/sns/latest/dg/sns-message-and-json-formats.html.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from domains.users.contracts import normalize_email


class SnsNotification(BaseModel):
    """The part of SNS's HTTP(S) notification document this domain reads."""

    model_config = ConfigDict(extra="ignore")

    Type: Literal["Notification"]
    MessageId: str = Field(min_length=1, max_length=100)
    TopicArn: str = Field(min_length=1, max_length=256)
    Message: str = Field(min_length=2, max_length=256 * 1024)


class _Recipient(BaseModel):
    emailAddress: str = Field(min_length=3, max_length=1000)


class _Bounce(BaseModel):
    bounceType: Literal["Undetermined", "Permanent", "Transient"]
    bouncedRecipients: list[_Recipient] = Field(min_length=1, max_length=100)


class _Complaint(BaseModel):
    complainedRecipients: list[_Recipient] = Field(min_length=1, max_length=100)


class _SesNotification(BaseModel):
    model_config = ConfigDict(extra="ignore")

    notificationType: Literal["Bounce", "Complaint", "Delivery"] | None = None
    eventType: str | None = None
    bounce: _Bounce | None = None
    complaint: _Complaint | None = None


def suppressions(notification: SnsNotification) -> list[tuple[str, Literal["bounce", "complaint"]]]:
    """The addresses to suppress, each with why; `ValueError` if the message is not an SES
    notification SES would send (a `Bounce` without its `bounce` object, ...)."""
    ses = _SesNotification.model_validate_json(notification.Message)
    kind = ses.notificationType or ses.eventType
    if kind == "Bounce":
        if ses.bounce is None:
            raise ValueError("a Bounce notification carries a bounce object")
        if ses.bounce.bounceType != "Permanent":
            return []
        return _unique([(r.emailAddress, "bounce") for r in ses.bounce.bouncedRecipients])
    if kind == "Complaint":
        if ses.complaint is None:
            raise ValueError("a Complaint notification carries a complaint object")
        return _unique([(r.emailAddress, "complaint") for r in ses.complaint.complainedRecipients])
    if kind == "Delivery":
        return []
    raise ValueError(f"not an SES notification type: {kind!r}")


def _unique(
    found: list[tuple[str, Literal["bounce", "complaint"]]],
) -> list[tuple[str, Literal["bounce", "complaint"]]]:
    seen: dict[str, Literal["bounce", "complaint"]] = {}
    for address, kind in found:
        seen.setdefault(normalize_email(address), kind)
    return list(seen.items())
