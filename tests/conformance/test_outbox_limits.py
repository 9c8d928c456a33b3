"""Outbox limits on every transport: an outbox item that can never be published is parked by
the in-process relay, with its reason, and the events after it on its key still go out."""

from __future__ import annotations

from collections.abc import Callable

from bus import Context, Domain, DomainSettings, Event, Storage
from bus.storage import UnitOfWork
from bus.testing import Harness

Build = Callable[..., Harness]


class ParcelBooked(Event):
    type = "PARCEL_BOOKED"
    parcel_id: str


def _domains() -> tuple[Domain, Domain, list[str]]:
    seen: list[str] = []
    parcels = Domain("parcels", storage=Storage())
    couriers = Domain("couriers", DomainSettings(visibility_timeout=1.0, retry_attempts=1))

    @couriers.on(ParcelBooked)
    async def collect(event: ParcelBooked, ctx: Context) -> None:
        seen.append(event.parcel_id)

    return parcels, couriers, seen


async def test_an_unpublishable_outbox_item_is_parked_and_its_key_goes_on(harness: Build) -> None:
    parcels, couriers, seen = _domains()
    async with harness(parcels, couriers) as h:
        runtime = h.runtime
        table = runtime.tables["parcels"]
        booked = runtime.context("parcels").envelope_for(ParcelBooked(parcel_id="p1"), "p1")
        async with UnitOfWork(table, now=runtime.clock.now) as uow:
            uow.publish(b"not an envelope", ordering_key="p1", event_id="broken")
        async with UnitOfWork(table, now=runtime.clock.now) as uow:
            uow.publish(booked.encode(), ordering_key="p1", event_id=booked.id)

        await h.settle()

        assert seen == ["p1"]
        (letter,) = runtime.outbox_dead_letters["parcels"]
        assert letter.body == b"not an envelope"
        assert letter.reason is not None and letter.reason.startswith("MalformedEnvelope")
