"""The event catalog: every event and task type with its version, producer, consumers and
JSON Schema; its AsyncAPI 3.0 document; and what makes a schema change breaking.

A snapshot (`Catalog.snapshot()`) is plain JSON committed with the code; `breaking_changes`
compares the code with it. A change breaks consumers when a field is removed or retyped, or
becomes required or optional, at the same version; raising the version is allowed only with an
upcaster from every older version the snapshot knows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from bus.domain import Domain
from bus.messages import Message, Task
from bus.schemas import meaning, self_contained

ASYNCAPI_VERSION = "3.0.0"


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    """One message type: who publishes (or sends) it, who handles it, and its schema."""

    message: type[Message]
    #: The domain whose contracts define an event, or that consumes a task; None if unknown.
    owner: str | None
    #: Domains that may send a task (`sends=`); for an event, its owner.
    producers: tuple[str, ...]
    #: Handler names (`domain.handler`) subscribed to it.
    consumers: tuple[str, ...]

    @property
    def type(self) -> str:
        return self.message.type

    @property
    def kind(self) -> str:
        return "task" if issubclass(self.message, Task) else "event"

    @property
    def version(self) -> int:
        return self.message.version

    def schema(self) -> dict[str, Any]:
        """The payload's JSON Schema, as consumers validate it."""
        return self.message.model_json_schema()

    def snapshot(self) -> dict[str, Any]:
        return {"kind": self.kind, "version": self.version, "schema": self.schema()}


class Catalog:
    """Every message type the given domains publish, send or handle."""

    def __init__(self, domains: Iterable[Domain], owned: Mapping[str, Iterable[type[Message]]]):
        """`owned` maps a domain name to the messages its contracts define."""
        domains = list(domains)
        owner_of: dict[type[Message], str] = {}
        for name, messages in owned.items():
            for message in messages:
                owner_of[message] = name
        messages_seen: dict[str, type[Message]] = {m.type: m for m in owner_of}
        for domain in domains:
            for sub in domain.subscriptions:
                messages_seen.setdefault(sub.message.type, sub.message)
            for task in domain.sends:
                messages_seen.setdefault(task.type, task)
        entries = []
        for type_, message in sorted(messages_seen.items()):
            owner = getattr(message, "domain", None) if issubclass(message, Task) else None
            owner = owner or owner_of.get(message)
            if issubclass(message, Task):
                producers = tuple(d.name for d in domains if any(t.type == type_ for t in d.sends))
            else:
                producers = (owner,) if owner else ()
            consumers = tuple(
                sub.name for d in domains for sub in d.subscriptions if sub.message.type == type_
            )
            entries.append(CatalogEntry(message, owner, producers, consumers))
        self.entries: tuple[CatalogEntry, ...] = tuple(entries)

    def snapshot(self) -> dict[str, Any]:
        """The committed form: each type's kind, version and schema."""
        return {entry.type: entry.snapshot() for entry in self.entries}

    def breaking_changes(self, snapshot: Mapping[str, Any]) -> list[str]:
        """Why the code would break a consumer written against `snapshot`; empty if nothing."""
        current = {entry.type: entry for entry in self.entries}
        problems = []
        for type_, recorded in sorted(snapshot.items()):
            entry = current.get(type_)
            if entry is None:
                problems.append(f"{type_} is no longer defined, yet consumers may still read it")
                continue
            problems.extend(_breaking(entry, recorded))
        return problems

    def asyncapi(self, *, title: str = "tctf", version: str = "0.1.0") -> dict[str, Any]:
        """The AsyncAPI 3.0 document: a channel per type, a send operation per producer and
        a receive operation per consumer."""
        channels: dict[str, Any] = {}
        operations: dict[str, Any] = {}
        messages: dict[str, Any] = {}
        for entry in self.entries:
            message_ref = {"$ref": f"#/channels/{entry.type}/messages/{entry.type}"}
            messages[entry.type] = _message(entry)
            channels[entry.type] = {
                "address": f"tasks/{entry.owner}" if entry.kind == "task" else "events",
                "description": _channel_description(entry),
                "messages": {entry.type: {"$ref": f"#/components/messages/{entry.type}"}},
            }
            channel_ref = {"$ref": f"#/channels/{entry.type}"}
            for producer in entry.producers:
                operations[f"{producer}.sends.{entry.type}"] = {
                    "action": "send",
                    "channel": channel_ref,
                    "messages": [message_ref],
                }
            for consumer in entry.consumers:
                operations[consumer] = {
                    "action": "receive",
                    "channel": channel_ref,
                    "messages": [message_ref],
                }
        return {
            "asyncapi": ASYNCAPI_VERSION,
            "info": {"title": f"{title} events and tasks", "version": version},
            "defaultContentType": "application/json",
            "channels": channels,
            "operations": operations,
            "components": {"messages": messages},
        }


def _message(entry: CatalogEntry) -> dict[str, Any]:
    doc = (entry.message.__doc__ or "").strip()
    return {
        "name": entry.type,
        "title": entry.message.__name__,
        "summary": doc.splitlines()[0] if doc else entry.type,
        "contentType": "application/json",
        "payload": entry.schema(),
        "x-version": entry.version,
        "x-upcasts-from": sorted(entry.message.upcasters),
    }


def _channel_description(entry: CatalogEntry) -> str:
    if entry.kind == "task":
        return f"{entry.owner}'s task queue: {entry.type} is a command only it runs"
    return f"the shared topic or bus, {entry.type} fanned out to its subscribers' queues"


def _breaking(entry: CatalogEntry, recorded: Mapping[str, Any]) -> list[str]:
    old_version = int(recorded["version"])
    if entry.version < old_version:
        return [f"{entry.type} went back from version {old_version} to {entry.version}"]
    if entry.version > old_version:
        missing = [v for v in range(old_version, entry.version) if v not in entry.message.upcasters]
        if missing:
            steps = ", ".join(str(v) for v in missing)
            return [
                f"{entry.type} is version {entry.version} but has no upcaster from version(s) "
                f"{steps}: register @{entry.message.__name__}.upcaster(from_version=N)"
            ]
        return []
    return [f"{entry.type} v{entry.version}: {why}" for why in _field_changes(recorded, entry)]


def _field_changes(recorded: Mapping[str, Any], entry: CatalogEntry) -> list[str]:
    old, new = self_contained(recorded["schema"]), self_contained(entry.schema())
    old_fields, new_fields = old.get("properties", {}), new.get("properties", {})
    old_required, new_required = set(old.get("required", ())), set(new.get("required", ()))
    raise_it = f"raise the version and add an upcaster to {entry.message.__name__}"
    changes = [
        f"field {name!r} was removed ({raise_it})"
        for name in sorted(old_fields.keys() - new_fields)
    ]
    for name in sorted(old_fields.keys() & new_fields.keys()):
        if meaning(old_fields[name]) != meaning(new_fields[name]):
            changes.append(f"field {name!r} was retyped ({raise_it})")
    for name in sorted(new_required - old_required):
        changes.append(f"field {name!r} is newly required ({raise_it})")
    for name in sorted((old_required - new_required) & new_fields.keys()):
        changes.append(
            f"field {name!r} is no longer required, yet consumers expect it ({raise_it})"
        )
    return changes
