"""Event versions: upcasting old payloads, tolerant reads of newer ones, clear refusals."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from bus import Event
from bus.errors import InvalidMessageData, UnsupportedMessageVersion


class PlanChanged(Event):
    type = "PLAN_CHANGED"
    version = 3
    account_id: str
    plan: str
    seats: int


@PlanChanged.upcaster(from_version=1)
def _v1_named_it_tier(data: dict[str, object]) -> dict[str, object]:
    data["plan"] = data.pop("tier")
    return data


@PlanChanged.upcaster(from_version=2)
def _v2_had_no_seats(data: dict[str, object]) -> dict[str, object]:
    return {**data, "seats": 1}


def test_old_versions_are_upcast_step_by_step_to_the_current_model() -> None:
    event = PlanChanged.read(1, {"account_id": "a1", "tier": "pro"})
    assert event == PlanChanged(account_id="a1", plan="pro", seats=1)


def test_a_newer_version_that_still_fits_is_read_tolerantly() -> None:
    event = PlanChanged.read(4, {"account_id": "a1", "plan": "pro", "seats": 3, "region": "eu"})
    assert event == PlanChanged(account_id="a1", plan="pro", seats=3)


def test_a_newer_version_that_no_longer_fits_is_refused_with_the_versions_named() -> None:
    with pytest.raises(UnsupportedMessageVersion, match="version 4 is newer than the handled"):
        PlanChanged.read(4, {"account_id": "a1", "plan_id": 9})


def test_a_missing_upcaster_is_named_in_the_error() -> None:
    class Renamed(Event):
        type = "RENAMED"
        version = 2
        name: str

    with pytest.raises(UnsupportedMessageVersion, match=r"upcaster\(from_version=1\)"):
        Renamed.read(1, {"name": "x"})


def test_an_invalid_payload_of_the_current_version_names_the_field() -> None:
    with pytest.raises(InvalidMessageData, match="seats"):
        PlanChanged.read(3, {"account_id": "a1", "plan": "pro", "seats": "many"})


def test_events_are_immutable() -> None:
    event = PlanChanged(account_id="a1", plan="pro", seats=1)
    with pytest.raises(ValidationError):
        event.plan = "free"  # type: ignore[misc]


def test_an_upcaster_must_start_below_the_current_version() -> None:
    with pytest.raises(ValueError, match="between 1 and 2"):
        PlanChanged.upcaster(from_version=3)
