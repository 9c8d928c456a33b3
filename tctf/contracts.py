"""What the domains' `contracts` modules declare: events and tasks (the catalog behind
`tctf events`, and its committed schema snapshot) and the operations callers use."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path
from types import ModuleType
from typing import Any

import domains
from bus.catalog import Catalog
from bus.client import Operation
from bus.domain import Domain
from bus.messages import Message

#: The committed snapshot of every message's schema (tests/contracts/ checks against it).
SNAPSHOT = Path(domains.__file__).resolve().parents[1] / "tests/contracts/snapshots/events.json"


def catalog(loaded: list[Domain]) -> Catalog:
    """The catalog of `loaded` domains, each owning the messages its `contracts` defines."""
    return Catalog(loaded, {domain.name: contract_messages(domain.name) for domain in loaded})


def contract_messages(name: str) -> list[type[Message]]:
    """The event and task classes `domains/<name>/contracts.py` defines (none if it has none)."""
    module = _contracts(name)
    if module is None:
        return []
    return [
        value
        for value in vars(module).values()
        if inspect.isclass(value)
        and issubclass(value, Message)
        and value.__module__ == module.__name__
        and "type" in vars(value)
    ]


def contract_operations(name: str) -> list[Operation[Any, Any]]:
    """The `Operation`s `domains/<name>/contracts.py` declares for callers."""
    module = _contracts(name)
    return [v for v in vars(module).values() if isinstance(v, Operation)] if module else []


def _contracts(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(f"domains.{name}.contracts")
    except ModuleNotFoundError as error:
        if error.name == f"domains.{name}.contracts":
            return None
        raise


def render_table(found: Catalog) -> str:
    """One line per type: kind, version, producers, consumers."""
    rows = [("TYPE", "KIND", "VERSION", "PRODUCERS", "CONSUMERS")]
    for entry in found.entries:
        rows.append(
            (
                entry.type,
                entry.kind,
                str(entry.version),
                ", ".join(entry.producers) or "-",
                ", ".join(entry.consumers) or "-",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    lines = []
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True)]
        lines.append("  ".join([*cells, row[-1]]))
    return "\n".join(lines)
