"""What communication publishes and the tasks it sends itself: the only module other domains
may import."""

from __future__ import annotations

from datetime import UTC
from typing import Annotated, Literal, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_serializer, model_validator

from bus.messages import Event, Task

#: How many recipients one `DELIVER_CAMPAIGN_BATCH` carries: one bounded unit of work.
BATCH_SIZE = 100


class PlanSegment(BaseModel):
    """Users on a plan."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["plan"]
    plan: Literal["free", "pro", "business"]


class SignUpSegment(BaseModel):
    """Users who signed up from `signed_up_from` (inclusive) until `signed_up_until`
    (exclusive), RFC 3339 UTC."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["signed_up"]
    signed_up_from: AwareDatetime
    signed_up_until: AwareDatetime

    @model_validator(mode="after")
    def _forwards(self) -> Self:
        if self.signed_up_from >= self.signed_up_until:
            raise ValueError("signed_up_from must be before signed_up_until")
        return self

    @field_serializer("signed_up_from", "signed_up_until")
    def _utc(self, moment: AwareDatetime) -> str:
        return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class AchievementSegment(BaseModel):
    """Users who unlocked an achievement."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["achievement"]
    achievement_id: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:-]+$")


#: Who a campaign goes to, chosen by `kind`.
Segment = Annotated[PlanSegment | SignUpSegment | AchievementSegment, Field(discriminator="kind")]


class CampaignScheduled(Event):
    """An admin scheduled a campaign: it is sent to its segment at `send_at`."""

    type = "CAMPAIGN_SCHEDULED"

    campaign_id: str
    subject: str
    segment: Segment
    send_at: str
    created_by: str


class CampaignDelivered(Event):
    """Every e-mail of a campaign was sent or failed for good: `sent + failed == queued`."""

    type = "CAMPAIGN_DELIVERED"

    campaign_id: str
    queued: int
    sent: int
    failed: int
    delivered_at: str


class StartDueCampaigns(Task):
    """Start every scheduled campaign whose time has come (scheduled every minute)."""

    type = "START_DUE_CAMPAIGNS"
    domain = "communication"


class QueueCampaignRecipients(Task):
    """Take the next page of a campaign's segment (from `cursor`, where the previous page
    ended) as batch `batch`, send its delivery, and the next page's queueing while the
    segment goes on."""

    type = "QUEUE_CAMPAIGN_RECIPIENTS"
    domain = "communication"

    campaign_id: str
    batch: int = Field(ge=0)
    cursor: str | None = Field(default=None, max_length=2048)


class DeliverCampaignBatch(Task):
    """Send the e-mail of each recipient of one batch (at most `BATCH_SIZE`)."""

    type = "DELIVER_CAMPAIGN_BATCH"
    domain = "communication"

    campaign_id: str
    batch: int = Field(ge=0)
