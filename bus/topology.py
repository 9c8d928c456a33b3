"""The platform's shape as plain data, derived from its domains.

One model is read by the in-memory transport, the AWS provisioner, infrastructure code and
the docs: topic, queues with their DLQs, subscriptions with filters, routes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from bus.access import TokenPolicy
from bus.domain import Domain
from bus.errors import ConfigurationError

if TYPE_CHECKING:
    from bus.storage.spec import TableSpec

Purpose = Literal["events", "tasks"]


@dataclass(frozen=True, slots=True)
class QueueSpec:
    """A domain's SQS queue and the DLQ its redrive policy points at."""

    name: str
    domain: str
    purpose: Purpose
    dlq: str
    visibility_timeout: float
    max_receive_count: int
    batch_size: int
    concurrency: int
    message_types: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SubscriptionSpec:
    """One handler's interest: which message type (and content filter) reaches which queue."""

    domain: str
    queue: str
    handler: str
    message_type: str
    version: int
    where: Mapping[str, Any] | None


@dataclass(frozen=True, slots=True)
class ScheduleSpec:
    """A schedule sending one task to its domain's task queue (EventBridge Scheduler)."""

    domain: str
    #: The schedule's name on AWS: `<app>-<domain>-<name>`.
    name: str
    #: EventBridge Scheduler's `rate(...)` or `cron(...)`, in UTC.
    expression: str
    task_type: str
    queue: str
    #: The task's payload, the same at every firing (the schedule's input).
    payload: Mapping[str, Any]
    version: int = 1


@dataclass(frozen=True, slots=True)
class RouteSpec:
    """An HTTP route and the domain that serves it."""

    domain: str
    method: str
    path: str
    handler: str
    #: Who may call it (`bus.access.Access`): the gateway's authorizer enforces it.
    signed_in: bool = False
    scopes: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()
    #: Not on the public API: only other domains call it (IAM-authorised on AWS).
    internal: bool = False


@dataclass(frozen=True, slots=True)
class WebSocketSpec:
    """A domain's WebSocket API (`Domain.websocket`): its own API Gateway WebSocket API on
    AWS, whose `$connect` and `$disconnect` routes invoke the domain's function, which posts
    to connections through the API's management endpoint."""

    domain: str
    #: The API's name on AWS: `<app>-<domain>-live`.
    name: str
    #: Where `tctf run` serves it.
    path: str
    routes: tuple[str, ...] = ("$connect", "$disconnect")
    #: The query-string parameter carrying the access token at `$connect`.
    token_parameter: str = "token"


@dataclass(frozen=True, slots=True)
class MailSpec:
    """A domain that sends e-mail (`Domain(..., mail=Mail(...))`): on AWS its own SES
    configuration set, whose bounces and complaints an SNS topic delivers to its function."""

    domain: str
    #: The SES configuration set the domain sends with: `<app>-<domain>`.
    configuration_set: str
    #: The SNS topic of its bounce and complaint notifications: `<app>-<domain>-mail-events`.
    notifications_topic: str
    #: The INTERNAL POST route taking them, if the domain reads them.
    notifications_route: str | None = None

    @property
    def dlq(self) -> str:
        """Where notifications SNS cannot deliver, or the function keeps failing, wait."""
        return f"{self.notifications_topic}-dlq"


@dataclass(frozen=True, slots=True)
class Topology:
    """Everything the platform provisions, in one value."""

    app: str
    topic: str
    event_bus: str
    domains: tuple[str, ...]
    queues: tuple[QueueSpec, ...]
    subscriptions: tuple[SubscriptionSpec, ...]
    routes: tuple[RouteSpec, ...]
    #: One table per domain that keeps state, keyed by domain name.
    tables: Mapping[str, TableSpec] = field(default_factory=dict)
    #: The dead-letter queue of each table's outbox (`<app>-<domain>-outbox-dlq`), keyed by
    #: domain name: where the stream relay parks an outbox item it can never publish, so
    #: that item does not hold up the shard. A domain with a table has one even if it has
    #: no queues of its own.
    outbox_dlqs: Mapping[str, str] = field(default_factory=dict)
    #: The idempotency table (`<app>-<domain>-idempotency`, TTL'd) of each domain that
    #: handles messages and keeps no table of its own, keyed by domain name: every copy of
    #: its function checks one record per handled event there (docs/decisions/0010).
    idempotency_tables: Mapping[str, TableSpec] = field(default_factory=dict)
    #: The task queues each domain declares it sends to (`Domain(..., sends=[...])`), keyed
    #: by domain name; its function may send to no other.
    sends: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    #: What a bearer token must say to pass the gateway (issuer, audience, JWK set): the
    #: local gateway checks it, and it is what API Gateway's JWT authorizer is built from.
    token_policy: TokenPolicy | None = None
    #: Tasks the domains send themselves on a clock (`Domain.every`).
    schedules: tuple[ScheduleSpec, ...] = ()
    #: The domains' WebSocket APIs (`Domain.websocket`).
    websockets: tuple[WebSocketSpec, ...] = ()
    #: The domains that send e-mail (`Domain(..., mail=...)`).
    mail: tuple[MailSpec, ...] = ()

    @classmethod
    def from_domains(cls, domains: Iterable[Domain], app: str = "tctf") -> Topology:
        domains = list(domains)
        _check_unique(domains)
        queues: list[QueueSpec] = []
        subscriptions: list[SubscriptionSpec] = []
        routes: list[RouteSpec] = []
        tables: dict[str, TableSpec] = {}
        outbox_dlqs: dict[str, str] = {}
        idempotency_tables: dict[str, TableSpec] = {}
        sends: dict[str, tuple[str, ...]] = {}
        schedules: list[ScheduleSpec] = []
        websockets: list[WebSocketSpec] = []
        mail: list[MailSpec] = []
        for domain in domains:
            if domain.mail is not None:
                mail.append(_mail_spec(app, domain))
            schedules.extend(_schedule_specs(app, domain))
            if domain.websocket_route is not None:
                path = domain.websocket_route.path
                websockets.append(WebSocketSpec(domain.name, f"{app}-{domain.name}-live", path))
            sends[domain.name] = tuple(
                sorted({f"{app}-{task.domain}-tasks" for task in domain.sends})
            )
            kinds: tuple[tuple[Purpose, frozenset[str]], ...] = (
                ("events", domain.event_types),
                ("tasks", domain.task_types),
            )
            for purpose, types in kinds:
                if not types:
                    continue
                name = f"{app}-{domain.name}-{purpose}"
                s = domain.settings
                queues.append(
                    QueueSpec(
                        name,
                        domain.name,
                        purpose,
                        f"{name}-dlq",
                        s.visibility_timeout,
                        s.max_receive_count,
                        s.batch_size,
                        s.concurrency,
                        tuple(sorted(types)),
                    )
                )
            for sub in domain.subscriptions:
                kind = "tasks" if sub.is_task else "events"
                subscriptions.append(
                    SubscriptionSpec(
                        domain.name,
                        f"{app}-{domain.name}-{kind}",
                        sub.name,
                        sub.message.type,
                        sub.message.version,
                        dict(sub.where) if sub.where is not None else None,
                    )
                )
            routes.extend(
                RouteSpec(
                    r.domain,
                    r.method,
                    r.path,
                    r.name,
                    r.access.signed_in,
                    r.access.scopes,
                    r.access.roles,
                    r.access.internal,
                )
                for r in domain.http_routes
            )
            if domain.storage is not None:
                from bus.storage.outbox import outbox_index
                from bus.storage.spec import TableSpec

                tables[domain.name] = TableSpec(
                    name=f"{app}-{domain.name}",
                    indexes=(*domain.storage.indexes, outbox_index()),
                    ttl_attribute=domain.storage.ttl_attribute,
                )
                outbox_dlqs[domain.name] = f"{app}-{domain.name}-outbox-dlq"
            elif domain.subscriptions:
                idempotency_tables[domain.name] = idempotency_table_spec(app, domain.name)
        topology = cls(
            app=app,
            topic=f"{app}-events",
            event_bus=f"{app}-bus",
            domains=tuple(d.name for d in domains),
            queues=tuple(queues),
            subscriptions=tuple(subscriptions),
            routes=tuple(routes),
            tables=tables,
            outbox_dlqs=outbox_dlqs,
            idempotency_tables=idempotency_tables,
            sends=sends,
            token_policy=TokenPolicy.for_app(app),
            schedules=tuple(schedules),
            websockets=tuple(websockets),
            mail=tuple(mail),
        )
        topology._check_filters()
        return topology

    def _check_filters(self) -> None:
        """Each events queue's combined SNS filter policy must be within SNS's limits."""
        if not any(s.where is not None for s in self.subscriptions):
            return
        from bus.routing import validate_filter_policy

        for queue in self.queues:
            if queue.purpose == "events":
                policy, scope = self.filter_policy(queue.name)
                validate_filter_policy(policy, scope)

    def queue(self, domain: str, purpose: Purpose) -> QueueSpec | None:
        for spec in self.queues:
            if spec.domain == domain and spec.purpose == purpose:
                return spec
        return None

    def require_queue(self, domain: str, purpose: Purpose) -> QueueSpec:
        """The domain's queue of that purpose; a clear error when it has none."""
        spec = self.queue(domain, purpose)
        if spec is None:
            raise ConfigurationError(f"domain {domain!r} has no {purpose} queue")
        return spec

    def task_queue_name(self, task_type: str, domain: str | None = None) -> str:
        """The task queue a task goes to: its `Task.domain`'s, whether or not that domain
        runs in this process (a Lambda's topology holds its own domain only)."""
        if domain is not None:
            return f"{self.app}-{domain}-tasks"
        return self.task_queue_for(task_type).name

    def task_queues_sent_by(self, domain: str) -> tuple[str, ...]:
        """The task queues the domain declares it sends to: all its function may write to,
        besides its own dead-letter queues."""
        return tuple(self.sends.get(domain, ()))

    def task_queue_for(self, task_type: str) -> QueueSpec:
        """The queue consuming a task type; a task nobody consumes is a wiring mistake."""
        for spec in self.queues:
            if spec.purpose == "tasks" and task_type in spec.message_types:
                return spec
        raise ConfigurationError(
            f"no domain consumes task {task_type!r}: register one with @domain.task(...)"
        )

    def subscriptions_of(self, queue: str) -> list[SubscriptionSpec]:
        return [s for s in self.subscriptions if s.queue == queue]

    def filter_policy(
        self, queue: str
    ) -> tuple[dict[str, Any], Literal["MessageAttributes", "MessageBody"]]:
        """The SNS filter policy (and its scope) that lets exactly the queue's events through.

        Without content filters the `type` message attribute decides; with them the policy
        applies to the message body (the envelope), where `data` holds the payload.
        """
        plain, filtered = self._split(queue)
        if not filtered:
            return {"type": plain}, "MessageAttributes"
        alternatives: list[dict[str, Any]] = [{"type": plain}] if plain else []
        alternatives += [{"type": [t], "data": dict(w)} for t, w in filtered]
        if len(alternatives) == 1:
            return alternatives[0], "MessageBody"
        return {"$or": alternatives}, "MessageBody"

    def event_pattern(self, queue: str) -> dict[str, Any]:
        """The EventBridge rule pattern for a queue: `detail-type` is the event type and
        `detail` the envelope."""
        plain, filtered = self._split(queue)
        alternatives: list[dict[str, Any]] = [{"detail-type": plain}] if plain else []
        alternatives += [{"detail-type": [t], "detail": {"data": dict(w)}} for t, w in filtered]
        if len(alternatives) == 1:
            return alternatives[0]
        return {"$or": alternatives}

    def _split(self, queue: str) -> tuple[list[str], list[tuple[str, Mapping[str, Any]]]]:
        subs = self.subscriptions_of(queue)
        plain = sorted({s.message_type for s in subs if s.where is None})
        filtered = [
            (s.message_type, s.where)
            for s in subs
            if s.where is not None and s.message_type not in plain
        ]
        return plain, filtered

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def render_table(self) -> str:
        """A plain-text summary: queues, subscriptions and routes."""
        lines = [f"topic {self.topic}   event bus {self.event_bus}", ""]
        lines += _table(
            ("queue", "dlq", "visibility", "max receives", "batch", "types"),
            [
                (
                    q.name,
                    q.dlq,
                    f"{q.visibility_timeout:g}s",
                    str(q.max_receive_count),
                    str(q.batch_size),
                    ", ".join(q.message_types),
                )
                for q in self.queues
            ],
        )
        lines.append("")
        lines += _table(
            ("handler", "type", "version", "queue", "where"),
            [
                (
                    s.handler,
                    s.message_type,
                    str(s.version),
                    s.queue,
                    "" if s.where is None else str(dict(s.where)),
                )
                for s in self.subscriptions
            ],
        )
        if self.tables or self.idempotency_tables:
            lines.append("")
            lines += _table(
                ("table", "domain", "indexes", "ttl", "outbox dlq"),
                [
                    (
                        t.name,
                        d,
                        ", ".join(i.name for i in t.indexes),
                        t.ttl_attribute or "",
                        self.outbox_dlqs.get(d, ""),
                    )
                    for d, t in (*self.tables.items(), *self.idempotency_tables.items())
                ],
            )
        if self.schedules:
            lines.append("")
            lines += _table(
                ("schedule", "expression", "task", "queue"),
                [(s.name, s.expression, s.task_type, s.queue) for s in self.schedules],
            )
        if self.websockets:
            lines.append("")
            lines += _table(
                ("websocket api", "domain", "local path", "routes", "token"),
                [
                    (w.name, w.domain, w.path, ", ".join(w.routes), f"?{w.token_parameter}=")
                    for w in self.websockets
                ],
            )
        if self.routes:
            lines.append("")
            lines += _table(
                ("method", "path", "handler", "access"),
                [(r.method, r.path, r.handler, _access_label(r)) for r in self.routes],
            )
        return "\n".join(lines)


def _schedule_specs(app: str, domain: Domain) -> list[ScheduleSpec]:
    """The domain's schedules; each one's task must have a consumer in the domain, or the
    schedule would fire into a queue that does not exist."""
    specs = []
    for schedule in domain.schedules:
        if schedule.task.type not in domain.task_types:
            raise ConfigurationError(
                f"domain {domain.name} schedules {schedule.task.type} but does not consume "
                f"it: add @{domain.name}.task({type(schedule.task).__name__})"
            )
        specs.append(
            ScheduleSpec(
                domain.name,
                f"{app}-{domain.name}-{schedule.name}",
                schedule.expression,
                schedule.task.type,
                f"{app}-{domain.name}-tasks",
                schedule.task.model_dump(mode="json"),
                schedule.task.version,
            )
        )
    return specs


def _access_label(route: RouteSpec) -> str:
    from bus.access import Access

    return Access(route.signed_in, route.scopes, route.roles, route.internal).label


def idempotency_table_spec(app: str, domain: str) -> TableSpec:
    """The small table of a stateless domain's idempotency records: string keys, a TTL."""
    from bus.storage.spec import TableSpec

    return TableSpec(name=f"{app}-{domain}-idempotency", ttl_attribute="expires_at")


def _check_unique(domains: Sequence[Domain]) -> None:
    names = [d.name for d in domains]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigurationError(f"domain names must be unique: {', '.join(duplicates)}")


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)
    ]

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    return [line(header), line(tuple("-" * w for w in widths)), *(line(r) for r in rows)]


def _mail_spec(app: str, domain: Domain) -> MailSpec:
    """The domain's mail resources; its notifications route must be an INTERNAL POST route
    it declares, as nothing but the platform delivers to it."""
    assert domain.mail is not None
    path = domain.mail.notifications
    if path is not None and not any(
        r.method == "POST" and r.path == path and r.access.internal for r in domain.http_routes
    ):
        raise ConfigurationError(
            f"domain {domain.name} takes mail notifications at {path!r}, "
            "but declares no INTERNAL POST route there"
        )
    topic = f"{app}{mail_events_topic_suffix(domain.name)}"
    return MailSpec(domain.name, f"{app}-{domain.name}", topic, path)


def mail_events_topic_suffix(domain: str) -> str:
    """How the name of a domain's mail notifications topic ends, whatever the app's name:
    its function tells them from other notifications by it."""
    return f"-{domain}-mail-events"
