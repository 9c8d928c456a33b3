"""The event catalog: each published schema against its committed snapshot, what counts as
a breaking change, and the AsyncAPI document."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from pydantic import BaseModel

import domains
from bus.catalog import Catalog
from bus.messages import Event, Message
from tctf.cli import main
from tctf.config import load_domains
from tctf.contracts import SNAPSHOT, catalog


def test_no_published_schema_breaks_its_committed_snapshot() -> None:
    problems = catalog(load_domains()).breaking_changes(orjson.loads(SNAPSHOT.read_bytes()))
    assert problems == []


def test_the_committed_snapshot_is_current() -> None:
    recorded = orjson.loads(SNAPSHOT.read_bytes())
    assert catalog(load_domains()).snapshot() == recorded, (
        "the event schemas changed compatibly: run `tctf events --update` and commit the snapshot"
    )


class Placed(Event):
    """v1 as recorded."""

    type = "ORDER_PLACED"
    order_id: str
    total: int
    note: str | None = None


class Address(BaseModel):
    street: str


class Shipped(Event):
    type = "ORDER_SHIPPED"
    to: Address


def changes(before: type[Message], after: type[Message]) -> list[str]:
    recorded = Catalog([], {"orders": [before]}).snapshot()
    return Catalog([], {"orders": [after]}).breaking_changes(recorded)


def test_a_removed_field_breaks() -> None:
    class Removed(Event):
        type = "ORDER_PLACED"
        order_id: str
        note: str | None = None

    assert changes(Placed, Removed) == [
        "ORDER_PLACED v1: field 'total' was removed (raise the version and add an upcaster "
        "to Removed)"
    ]


def test_a_retyped_field_breaks_and_a_new_description_does_not() -> None:
    class Retyped(Event):
        type = "ORDER_PLACED"
        order_id: str
        total: str
        note: str | None = None

    class Described(Event):
        """Only the words changed."""

        type = "ORDER_PLACED"
        order_id: str
        total: int
        note: str | None = None

    assert ["total" in why and "retyped" in why for why in changes(Placed, Retyped)] == [True]
    assert changes(Placed, Described) == []


def test_a_new_required_field_breaks_and_a_new_optional_one_does_not() -> None:
    class Required(Event):
        type = "ORDER_PLACED"
        order_id: str
        total: int
        note: str | None = None
        currency: str

    class Defaulted(Event):
        type = "ORDER_PLACED"
        order_id: str
        total: int
        note: str | None = None
        currency: str = "EUR"

    assert ["'currency' is newly required" in why for why in changes(Placed, Required)] == [True]
    assert changes(Placed, Defaulted) == []


def test_a_field_no_longer_required_breaks() -> None:
    class Loosened(Event):
        type = "ORDER_PLACED"
        order_id: str
        total: int | None = None
        note: str | None = None

    assert ["'total' is no longer required" in why for why in changes(Placed, Loosened)].count(
        True
    ) == 1


def test_a_change_inside_a_nested_model_breaks() -> None:
    class Moved(BaseModel):
        street: int

    class ShippedElsewhere(Event):
        type = "ORDER_SHIPPED"
        to: Moved

    assert ["'to' was retyped" in why for why in changes(Shipped, ShippedElsewhere)] == [True]


def test_a_raised_version_needs_an_upcaster_from_the_recorded_one() -> None:
    class PlacedV2(Event):
        type = "ORDER_PLACED"
        version = 2
        order_id: str
        amount: int

    assert ["no upcaster from version(s) 1" in why for why in changes(Placed, PlacedV2)] == [True]

    @PlacedV2.upcaster(from_version=1)
    def _rename(data: dict[str, Any]) -> dict[str, Any]:
        data["amount"] = data.pop("total")
        return data

    assert changes(Placed, PlacedV2) == []


def test_a_type_gone_from_the_code_breaks() -> None:
    recorded = Catalog([], {"orders": [Placed]}).snapshot()
    assert Catalog([], {}).breaking_changes(recorded) == [
        "ORDER_PLACED is no longer defined, yet consumers may still read it"
    ]


def test_the_catalog_names_producer_consumers_and_version() -> None:
    found = {entry.type: entry for entry in catalog(load_domains()).entries}
    created, email = found["USER_CREATED"], found["SEND_EMAIL"]
    assert (created.kind, created.version, created.producers) == ("event", 2, ("users",))
    assert "messaging_consumers.welcome_new_user" in created.consumers
    assert "auth_password.invite_to_set_password" in created.consumers
    assert (email.kind, email.owner) == ("task", "messaging_consumers")
    assert {"messaging_consumers", "auth_password"} <= set(email.producers)


def test_the_asyncapi_document_has_a_channel_per_type_and_an_operation_per_party() -> None:
    document = catalog(load_domains()).asyncapi()
    assert document["asyncapi"] == "3.0.0"
    assert document["channels"]["SEND_EMAIL"]["address"] == "tasks/messaging_consumers"
    sends = document["operations"]["users.sends.USER_CREATED"]
    receives = document["operations"]["messaging_consumers.welcome_new_user"]
    assert (sends["action"], receives["action"]) == ("send", "receive")
    assert receives["channel"] == {"$ref": "#/channels/USER_CREATED"}
    message = document["components"]["messages"]["USER_CREATED"]
    assert message["x-version"] == 2 and message["x-upcasts-from"] == [1]
    assert set(message["payload"]["required"]) == {"user_id", "email", "name"}


def test_tctf_events_lists_checks_and_writes_asyncapi(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["events", "--check"]) == 0
    assert main(["events", "--asyncapi", str(tmp_path / "asyncapi.json")]) == 0
    assert main(["events", "--domain", "messaging_consumers"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["TYPE", "KIND", "VERSION", "PRODUCERS", "CONSUMERS"]
    [send_email] = [line for line in table if line.startswith("SEND_EMAIL ")]
    assert "messaging_consumers.deliver" in send_email
    assert orjson.loads((tmp_path / "asyncapi.json").read_bytes())["asyncapi"] == "3.0.0"


@pytest.fixture
def unsnapshotted_domain(tmp_path: Path) -> Iterator[str]:
    """A domain `probe` whose contracts define an event the committed snapshot lacks."""
    package = tmp_path / "probe"
    package.mkdir()
    (package / "__init__.py").write_text('"""Probe."""\n')
    (package / "contracts.py").write_text(
        '"""Probe\'s events."""\n\nfrom bus import Event\n\n\n'
        'class Probed(Event):\n    type = "PROBED"\n    probe_id: str\n'
    )
    (package / "app.py").write_text(
        '"""Probe."""\n\nfrom bus import Domain\n\ndomain = Domain("probe")\n'
    )
    domains.__path__.append(str(tmp_path))
    try:
        yield "probe"
    finally:
        domains.__path__.remove(str(tmp_path))
        for name in [m for m in sys.modules if m.startswith("domains.probe")]:
            del sys.modules[name]


def test_tctf_events_check_fails_exactly_when_the_snapshot_test_would(
    unsnapshotted_domain: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(AssertionError, match="tctf events --update"):
        test_the_committed_snapshot_is_current()
    assert main(["events", "--check"]) == 1
    assert main(["events", "--check", "--domain", unsnapshotted_domain]) == 1
    errors = capsys.readouterr().err.splitlines()
    assert errors == 2 * [
        "tctf events: the committed snapshot lacks PROBED: run `tctf events --update` "
        "and commit tests/contracts/snapshots/events.json"
    ]
