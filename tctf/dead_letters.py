"""`tctf dlq`: what the topology's DLQs hold and why, and moving it back once mended.

Reads through the AWS transports' own DLQ methods; the resources are looked up, never
created, so a missing queue is a clear error. Listing leaves every record in place, but SQS
cannot peek: each listing receives a record once, adding one to its receive count.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import orjson

from adapters.aws.bodies import unwrap
from adapters.aws.eventbridge import EventBridgeTransport
from adapters.aws.outbox_letters import parked_outbox_envelope
from adapters.aws.queues import QueueTransport
from adapters.aws.sns_sqs import SnsSqsTransport
from bus.domain import Domain
from bus.envelope import Envelope
from bus.errors import ConfigurationError, PermanentError
from bus.topology import Topology
from bus.transport import DeadLetter
from tctf.aws import command_settings

DlqPurpose = Literal["events", "tasks", "outbox"]

#: Why a record is in a DLQ when nobody said: SQS records no reason when it moves one.
MOVED_BY_SQS = "moved by SQS after maxReceiveCount"

#: Records listed per DLQ in text; `--json` lists every one.
SHOWN_PER_DLQ = 20


@dataclass(frozen=True, slots=True)
class Dlq:
    """One DLQ of the topology: whose it is, and the queue (or outbox) it serves."""

    name: str
    domain: str
    purpose: DlqPurpose
    #: The queue whose records SQS moves here; None for an outbox DLQ.
    queue: str | None


def dlqs(topology: Topology) -> list[Dlq]:
    """Every DLQ of the topology, domain by domain: its queues' DLQs, then its outbox's."""
    found = [Dlq(q.dlq, q.domain, q.purpose, q.name) for q in topology.queues]
    found += [Dlq(name, domain, "outbox", None) for domain, name in topology.outbox_dlqs.items()]
    order = {domain: index for index, domain in enumerate(topology.domains)}
    return sorted(found, key=lambda dlq: order.get(dlq.domain, len(order)))


def describe(letter: DeadLetter, dlq: Dlq) -> dict[str, Any]:
    """A letter as an operator reads it: ids, why it is there, where from, what it carries."""
    envelope = _envelope(letter, dlq)
    return {
        "message_id": letter.message_id,
        "receive_count": letter.receive_count,
        "reason": letter.reason or MOVED_BY_SQS,
        "source": letter.source or dlq.queue,
        "type": envelope.type if envelope else None,
        "id": envelope.id if envelope else None,
    }


def _envelope(letter: DeadLetter, dlq: Dlq) -> Envelope | None:
    try:
        if dlq.purpose == "outbox":
            return parked_outbox_envelope(letter.body)
        inner = unwrap(letter.body)  # an SNS notification or EventBridge event, opened
        return Envelope.decode(inner) if isinstance(inner, bytes) else Envelope.from_dict(inner)
    except PermanentError:
        return None


async def show(
    domains: Sequence[Domain],
    endpoint_url: str | None,
    transport: str,
    *,
    as_json: bool = False,
    app: str = "tctf",
) -> None:
    """Print every DLQ of the domains with its letters, oldest first; leave them there."""
    topology = Topology.from_domains(domains, app=app)
    async with _transport(topology, endpoint_url, transport) as queues:
        for dlq in dlqs(topology):
            if dlq.purpose == "outbox":
                letters = await queues.outbox_dead_letters(dlq.domain)
            else:
                letters = await queues.dead_letters(dlq.domain, dlq.purpose)
            described = [describe(letter, dlq) for letter in letters]
            lines = _json(dlq, described) if as_json else _text(dlq, described)
            for line in lines:
                print(line)


def _json(dlq: Dlq, described: list[dict[str, Any]]) -> Iterator[str]:
    yield _escape_json_controls(
        orjson.dumps(
            {
                "dlq": dlq.name,
                "domain": dlq.domain,
                "purpose": dlq.purpose,
                "count": len(described),
                "records": described,
            }
        ).decode()
    )


def _text(dlq: Dlq, described: list[dict[str, Any]]) -> Iterator[str]:
    count = len(described)
    yield f"{dlq.name} ({dlq.domain} {dlq.purpose}): {_records(count)}"
    for record in described[:SHOWN_PER_DLQ]:
        shown = {key: printable(value) for key, value in record.items()}
        carries = f"  {shown['type']} {shown['id']}" if record["type"] else ""
        yield f"  {shown['message_id']}  received {record['receive_count']}x{carries}"
        yield f"    reason: {shown['reason']}"
        yield f"    source: {shown['source'] if record['source'] else 'unknown'}"
    if count > SHOWN_PER_DLQ:
        yield f"  ... {count - SHOWN_PER_DLQ} more (--json lists every one)"


async def redrive(
    domain: Domain,
    purpose: DlqPurpose,
    endpoint_url: str | None,
    transport: str,
    *,
    app: str = "tctf",
) -> int:
    """Move a domain's dead letters back: a queue's to the queue, an outbox's published.

    Prints what moved and what stayed; returns 0, or 1 when letters stayed in the DLQ. Warns
    about a queue's letters older than the domain's `idempotency_ttl`: its handlers' records
    of them may be gone, so handlers that already handled them would run again.
    """
    topology = Topology.from_domains([domain], app=app)
    dlq = _dlq_of(topology, domain.name, purpose)
    async with _transport(topology, endpoint_url, transport) as queues:
        if purpose != "outbox":
            letters = await queues.dead_letters(domain.name, purpose)
            ttl = domain.settings.idempotency_ttl
            stale = older_than(letters, dlq, ttl, now=time.time())
            if stale:
                print(
                    f"tctf dlq: warning: {_records(len(stale))} of {dlq.name} "
                    f"{'is' if len(stale) == 1 else 'are'} older than {domain.name}'s "
                    f"idempotency_ttl ({ttl / 3600:g} h): its handlers no longer remember "
                    f"them, so those that already handled them run again ({', '.join(stale)})"
                )
            moved = await queues.redrive(domain.name, purpose)
            print(f"tctf dlq: moved {_records(moved)} from {dlq.name} back to {dlq.queue}")
            return 0
        result = await queues.redrive_outbox(domain.name)
    target = f"topic {topology.topic}" if transport == "sns" else f"bus {topology.event_bus}"
    print(
        f"tctf dlq: published {_records(result.published)} of {dlq.name} to {target}; "
        f"{len(result.kept)} stayed"
    )
    for message_id, reason in result.kept.items():
        print(f"  {message_id}: {reason}")
    return 1 if result.kept else 0


def older_than(letters: Sequence[DeadLetter], dlq: Dlq, seconds: float, now: float) -> list[str]:
    """The ids of the letters whose envelope was made more than `seconds` before `now`."""
    stale: list[str] = []
    for letter in letters:
        envelope = _envelope(letter, dlq)
        if envelope is None:
            continue
        try:
            made = datetime.fromisoformat(envelope.time).timestamp()
        except ValueError:
            continue
        if now - made > seconds:
            stale.append(envelope.id)
    return stale


def _dlq_of(topology: Topology, domain: str, purpose: DlqPurpose) -> Dlq:
    """The domain's DLQ of that purpose; a clear error naming those it has instead."""
    own = [dlq for dlq in dlqs(topology) if dlq.domain == domain]
    for dlq in own:
        if dlq.purpose == purpose:
            return dlq
    has = ", ".join(dlq.purpose for dlq in own) or "none"
    raise ConfigurationError(
        f"domain {domain!r} has no {purpose} DLQ (its DLQs: {has}); choose one with --purpose"
    )


def printable(value: object) -> str:
    """`value` as text safe for a terminal: control and other unprintable characters (escape
    sequences a message may carry to move the cursor, retitle or clear the screen) are shown
    as Python escapes instead of being interpreted."""
    text = str(value)
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)


#: DEL and the C1 controls (CSI is U+009B): JSON lets them through unescaped, terminals act on
#: some of them.
_UNESCAPED_BY_JSON = re.compile("[\x7f-\x9f]")


def _escape_json_controls(line: str) -> str:
    """JSON text with DEL and C1 controls written as `\\u00XX` (only strings can hold them)."""
    return _UNESCAPED_BY_JSON.sub(lambda found: f"\\u{ord(found.group()):04x}", line)


def _records(count: int) -> str:
    return f"{count} record{'' if count == 1 else 's'}"


def _transport(topology: Topology, endpoint_url: str | None, transport: str) -> QueueTransport:
    """The transport over resources that exist: looked up, none created."""
    settings = command_settings(endpoint_url, provision=False)
    if transport == "sns":
        return SnsSqsTransport(topology, settings)
    if transport == "eventbridge":
        return EventBridgeTransport(topology, settings)
    raise ConfigurationError(f"transport must be 'sns' or 'eventbridge', not {transport!r}")
