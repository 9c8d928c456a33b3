"""A domain's registration surface: event subscriptions, task consumers, HTTP routes, settings.

Decorators only record functions on the `Domain` object; nothing runs at import time.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar, get_args, get_origin

from pydantic import BaseModel

from bus.access import PUBLIC, Access, Principal
from bus.errors import ConfigurationError, HandlerSignatureError
from bus.limits import MAX_BATCH_RECORDS, MAX_CONCURRENCY, MAX_VISIBILITY_TIMEOUT
from bus.messages import Event, Message, Task

if TYPE_CHECKING:
    from bus.context import Context
    from bus.schedules import Schedule
    from bus.storage.spec import GlobalIndex
    from bus.websockets import ConnectHandler, DisconnectHandler, WebSocketRoute

E = TypeVar("E", bound=Event)
T = TypeVar("T", bound=Task)
MessageHandler = Callable[[Any, "Context"], Awaitable[None]]
Body = TypeVar("Body")
HttpHandler = Callable[["Request[Any]", "Context"], Awaitable[Any]]
F = TypeVar("F", bound=Callable[[Any, Any], Awaitable[Any]])

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_SECRET_NAME = re.compile(r"[a-z][a-z0-9-]{0,29}")
_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


#: The share of a delivery's visibility timeout a derived handler timeout leaves spare: for
#: publishing what the handler staged and deleting the record.
_HANDLER_TIMEOUT_SPARE = 0.2


@dataclass(frozen=True, slots=True)
class DomainSettings:
    """How a domain's queues and handlers behave; every field has the default AWS would use."""

    #: Seconds a received record stays hidden before it is delivered again (SQS default 30).
    visibility_timeout: float = 30.0
    #: Deliveries before a record moves to the DLQ (SQS redrive maxReceiveCount).
    max_receive_count: int = 5
    #: Records per batch handed to the dispatcher, 1 to 10 (Lambda SQS batch size).
    batch_size: int = 10
    #: Batches of one queue handled at the same time (Lambda maximum concurrency).
    concurrency: int = 2
    #: Seconds one handler call may take before it fails with TimeoutError. None: derived,
    #: the longest that fits every attempt and its backoff in the visibility timeout with a
    #: fifth to spare, so a hanging handler fails before its record is delivered again.
    handler_timeout: float | None = None
    #: Attempts of a handler within one delivery when it raises a transient error; 1: none.
    retry_attempts: int = 3
    #: Seconds before the first in-place retry; doubled for each further one.
    retry_backoff: float = 0.1
    #: Seconds an idempotency record lives; a duplicate arriving later runs again. The
    #: default outlives the 14 days a DLQ keeps a record, so a redrive repeats no effect.
    idempotency_ttl: float = 15 * 24 * 3600.0

    def __post_init__(self) -> None:
        if not 1 <= self.batch_size <= MAX_BATCH_RECORDS:
            raise ConfigurationError(
                f"batch_size must be between 1 and {MAX_BATCH_RECORDS}, got {self.batch_size}"
            )
        if self.max_receive_count < 1:
            raise ConfigurationError("max_receive_count must be at least 1")
        if self.visibility_timeout < 0 or self.concurrency < 1 or self.retry_attempts < 1:
            raise ConfigurationError(
                "visibility_timeout must be >= 0, concurrency and retry_attempts >= 1"
            )
        if self.visibility_timeout > MAX_VISIBILITY_TIMEOUT:
            raise ConfigurationError(
                f"visibility_timeout is at most {MAX_VISIBILITY_TIMEOUT}s (12 hours, SQS's "
                f"limit), got {self.visibility_timeout:g}"
            )
        if self.concurrency > MAX_CONCURRENCY:
            raise ConfigurationError(
                f"concurrency is at most {MAX_CONCURRENCY} (a Lambda event source mapping's "
                f"maximum concurrency), got {self.concurrency}"
            )
        backoff = self.retry_backoff * (2 ** (self.retry_attempts - 1) - 1)
        if self.handler_timeout is None:
            room = self.visibility_timeout - backoff
            if room <= 0:
                raise ConfigurationError(
                    f"{self.retry_attempts} attempts back off {backoff:g}s in all, no less "
                    f"than the {self.visibility_timeout:g}s visibility timeout: no time is "
                    "left to run the handler; raise visibility_timeout or lower retry_backoff"
                )
            derived = (1 - _HANDLER_TIMEOUT_SPARE) * room / self.retry_attempts
            object.__setattr__(self, "handler_timeout", derived)
        else:
            worst = self.retry_attempts * self.handler_timeout + backoff
            if worst > self.visibility_timeout:
                raise ConfigurationError(
                    f"a delivery may take {worst:g}s ({self.retry_attempts} attempts of "
                    f"{self.handler_timeout:g}s plus backoff), longer than the "
                    f"{self.visibility_timeout:g}s visibility timeout: the record would "
                    "reappear and run twice at once; raise visibility_timeout"
                )


@dataclass(frozen=True, slots=True)
class Storage:
    """A domain's single table: generic string `PK`/`SK`, its GSIs, and a TTL attribute.

    The platform names the table after the app and domain, and adds the outbox index.
    """

    #: Global secondary indexes for the domain's other access patterns.
    indexes: tuple[GlobalIndex, ...] = ()
    #: Attribute holding an item's expiry in epoch seconds (also used by idempotency records).
    ttl_attribute: str = "expires_at"


@dataclass(frozen=True, slots=True)
class Mail:
    """The domain sends e-mail through the platform's mail provider (Amazon SES on AWS).

    Deployed, its function may send as the stage's sender identity only, through the
    domain's own configuration set, whose bounce and complaint notifications reach the
    `notifications` route: an INTERNAL `POST` route taking an SNS notification document.
    """

    #: The path of the route that takes the provider's bounce and complaint notifications.
    notifications: str | None = None


@dataclass(frozen=True, slots=True)
class Subscription:
    """One handler of one message class, optionally narrowed by a content filter."""

    domain: str
    name: str
    message: type[Message]
    handler: MessageHandler
    where: Mapping[str, Any] | None = None

    @property
    def is_task(self) -> bool:
        return issubclass(self.message, Task)


@dataclass(frozen=True, slots=True, kw_only=True)
class Request(Generic[Body]):
    """What an HTTP handler gets: path parameters, query, headers and the validated body.

    Annotate the handler's parameter `request: Request[SignUp]` and the router validates
    the body as `SignUp`, and type checkers know `request.body` is one.
    """

    body: Body
    path_params: Mapping[str, str] = field(default_factory=dict)
    query: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    #: The caller behind the request's verified bearer token; None on a public route or
    #: when another domain calls an internal route in process.
    principal: Principal | None = None
    #: The body's bytes as they arrived, for what must check them exactly (a webhook's
    #: signature is over the bytes, not over their parsed form).
    raw_body: bytes = b""
    #: The query string validated by the route's `query=` model (e.g.
    #: `bus.pagination.PageQuery`); None on a route that declares none.
    params: BaseModel | None = None
    #: The address of the peer the request came from, as the edge saw it; None for a call
    #: made in process.
    client: str | None = None


@dataclass(frozen=True, slots=True)
class HttpRoute:
    """An HTTP route of the domain, with its pydantic request and response models."""

    domain: str
    method: str
    path: str
    name: str
    handler: HttpHandler
    body: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    status: int = 200
    #: Who may call it: checked by the gateway before the handler runs.
    access: Access = PUBLIC
    #: A `Location` header template filled from the response's fields (`/users/{user_id}`),
    #: for a route that creates a resource.
    location: str | None = None
    #: Answers the handler gives itself, as an `HttpResponse` in a shape a standard fixes
    #: (OAuth 2.0's token errors): status -> the JSON body's model, documented in OpenAPI.
    answers: Mapping[int, type[BaseModel]] = field(default_factory=dict)
    #: Also takes its body as `application/x-www-form-urlencoded`, as a standard may demand
    #: (OAuth 2.0's token and revocation endpoints): each field once, validated by `body`.
    forms: bool = False
    #: The model the query string is validated by (a 422 problem if it fails), given to the
    #: handler as `request.params` and documented as OpenAPI query parameters.
    query: type[BaseModel] | None = None


class Domain:
    """The registration surface of one domain, and the unit deployed as one Lambda."""

    def __init__(
        self,
        name: str,
        settings: DomainSettings | None = None,
        *,
        storage: Storage | None = None,
        sends: Iterable[type[Task]] = (),
        mail: Mail | None = None,
        secrets: Iterable[str] = (),
    ) -> None:
        if not _NAME.match(name):
            raise ConfigurationError(
                f"domain name {name!r} must be lower-case letters, digits and '_', "
                "starting with a letter, at most 40 characters (it names queues and tables)"
            )
        self.name = name
        self.settings = settings or DomainSettings()
        #: The domain's own table, if it keeps state; `ctx.table` and `ctx.unit_of_work()`.
        self.storage = storage
        #: The tasks the domain's handlers and routes may send: its function is granted
        #: their queues only, and `ctx.send` refuses any other (see `check_send`).
        self.sends = _task_classes(name, sends)
        self.subscriptions: list[Subscription] = []
        self.http_routes: list[HttpRoute] = []
        #: Tasks the domain sends itself on a clock (`every`).
        self.schedules: list[Schedule] = []
        #: The domain's WebSocket API, if it pushes to clients (`websocket`).
        self.websocket_route: WebSocketRoute | None = None
        #: Whether, and how, the domain sends e-mail (`Mail`).
        self.mail = mail
        #: Secret values the domain reads (`bus.secrets`), each provisioned for its stage,
        #: the same in every container of its function, and granted to that function only.
        self.secrets = _secret_names(name, secrets)

    def __repr__(self) -> str:
        return f"Domain({self.name!r})"

    def on(
        self,
        event: type[E],
        *,
        where: Mapping[str, Any] | None = None,
        name: str | None = None,
    ) -> Callable[[F], F]:
        """Subscribe the decorated `async def handler(event, ctx)` to an event class.

        `where` is an EventBridge event pattern over the event's payload fields
        (e.g. `{"plan": ["pro"]}`); only matching events reach the handler. `name` defaults
        to the function's name; it keys idempotency records, so keep it stable.
        """
        if not (isinstance(event, type) and issubclass(event, Event) and "type" in vars(event)):
            raise ConfigurationError(f"@{self.name}.on() takes an Event subclass, got {event!r}")
        if where is not None:  # fail at registration, not at delivery or provisioning
            from bus.routing import compile_event_pattern, compile_filter_policy

            compile_event_pattern(dict(where))
            compile_filter_policy({"data": dict(where)}, "MessageBody")  # SNS has no wildcard
            _check_filter_fields(event, where)
        return self._subscribe(event, where, name)

    def task(self, task: type[T], *, name: str | None = None) -> Callable[[F], F]:
        """Consume the decorated `async def handler(task, ctx)` from this domain's task queue."""
        if not (isinstance(task, type) and issubclass(task, Task) and "type" in vars(task)):
            raise ConfigurationError(f"@{self.name}.task() takes a Task subclass, got {task!r}")
        if getattr(task, "domain", None) != self.name:
            raise ConfigurationError(
                f"task {task.type} is addressed to domain {getattr(task, 'domain', None)!r}; "
                f"only domain {task.domain if hasattr(task, 'domain') else '?'!r} may consume it"
            )
        if any(sub.message is task for sub in self.subscriptions):
            raise ConfigurationError(f"task {task.type} already has a handler in {self.name}")
        return self._subscribe(task, None, name)

    def every(self, expression: str, task: Task, *, name: str | None = None) -> Schedule:
        """Send `task` to this domain's own task queue whenever `expression` is due.

        `expression` is EventBridge Scheduler's `rate(1 day)` or `cron(0 0 1 * ? *)` (UTC),
        checked here; `name` (default: the task type, dashed) names the schedule. The
        domain must consume the task with `@domain.task`.
        """
        from bus.schedules import Schedule, check_name, parse_expression

        if not isinstance(task, Task) or getattr(task, "domain", None) != self.name:
            raise ConfigurationError(
                f"{self.name}.every() takes a task of domain {self.name} to send itself, "
                f"got {task!r}"
            )
        schedule_name = name or task.type.lower().replace("_", "-")
        check_name(self.name, schedule_name)
        if any(s.name == schedule_name for s in self.schedules):
            raise ConfigurationError(
                f"schedule {schedule_name} of domain {self.name} is declared twice; pass name="
            )
        schedule = Schedule(
            self.name, schedule_name, expression, task, parse_expression(expression)
        )
        self.schedules.append(schedule)
        return schedule

    def websocket(
        self,
        path: str,
        *,
        on_connect: ConnectHandler,
        on_disconnect: DisconnectHandler,
        access: Access | None = None,
    ) -> WebSocketRoute:
        """Serve a WebSocket API at `path` (locally; its own API on AWS), one per domain.

        `on_connect(connection, ctx)` runs once the caller's access token (the `token` query
        parameter) is verified, and records the connection; `on_disconnect(connection_id,
        ctx)` forgets it.
        Handlers post to connections with `ctx.connections.post(connection_id, data)`.
        """
        from bus.access import SIGNED_IN
        from bus.websockets import WebSocketRoute

        if self.websocket_route is not None:
            raise ConfigurationError(f"domain {self.name} declares a second WebSocket route")
        if not path.startswith("/"):
            raise ConfigurationError(f"WebSocket path {path!r} must start with '/'")
        chosen = access or SIGNED_IN
        if not chosen.signed_in:
            raise ConfigurationError(
                f"the WebSocket route of {self.name} must be signed in: a connection receives "
                "a user's messages, so $connect verifies whose it is"
            )
        _check_callable(f"{self.name} on_connect", on_connect, "connection, ctx")
        _check_callable(f"{self.name} on_disconnect", on_disconnect, "connection_id, ctx")
        route = WebSocketRoute(self.name, path, on_connect, on_disconnect, chosen)
        self.websocket_route = route
        return route

    def _subscribe(
        self, message: type[Message], where: Mapping[str, Any] | None, name: str | None
    ) -> Callable[[F], F]:
        def record(handler: F) -> F:
            full = f"{self.name}.{name or _name_of(handler)}"
            parameters = "task, ctx" if issubclass(message, Task) else "event, ctx"
            _check_callable(f"handler {full}", handler, parameters)
            _check_message_annotation(full, handler, message)
            if any(sub.name == full for sub in self.subscriptions):
                raise ConfigurationError(
                    f"handler name {full} is registered twice; pass name= to tell them apart"
                )
            self.subscriptions.append(Subscription(self.name, full, message, handler, where))
            return handler

        return record

    def http_route(
        self,
        method: str,
        path: str,
        *,
        body: type[BaseModel] | None = None,
        response: type[BaseModel] | None = None,
        status: int = 200,
        access: Access = PUBLIC,
        location: str | None = None,
        answers: Mapping[int, type[BaseModel]] | None = None,
        forms: bool = False,
        query: type[BaseModel] | None = None,
    ) -> Callable[[F], F]:
        """Register `async def handler(request, ctx)` for an HTTP method and path template.

        The body model is `body`, or `Model` when the handler takes `request: Request[Model]`.
        `access` says who may call it (`bus.access`: PUBLIC, SIGNED_IN, scopes, roles,
        INTERNAL); the gateway refuses anyone else before the handler runs. `location`, a
        path template over the response's fields, becomes the answer's `Location` header.
        `answers` documents statuses the handler answers itself by returning an
        `HttpResponse` whose JSON body is the given model. With `forms`, the body may also
        come form-encoded (`application/x-www-form-urlencoded`), each field once. `query` is
        the model the query string is validated by, given to the handler as `request.params`.
        """
        method = method.upper()
        if method not in _METHODS:
            raise ConfigurationError(f"method {method} is not one of {', '.join(_METHODS)}")
        if not path.startswith("/"):
            raise ConfigurationError(f"route path {path!r} must start with '/'")

        def record(handler: F) -> F:
            if any(r.method == method and r.path == path for r in self.http_routes):
                raise ConfigurationError(f"route {method} {path} is registered twice")
            name = f"{self.name}.{_name_of(handler)}"
            _check_callable(f"route {name}", handler, "request, ctx")
            model = _body_model(name, handler, body)
            if forms and model is None:
                raise ConfigurationError(f"route {name} takes forms but declares no body model")
            self.http_routes.append(
                HttpRoute(
                    self.name,
                    method,
                    path,
                    name,
                    handler,
                    model,
                    response,
                    status,
                    access,
                    location,
                    dict(answers or {}),
                    forms,
                    query,
                )
            )
            return handler

        return record

    def get(self, path: str, **options: Any) -> Callable[[F], F]:
        return self.http_route("GET", path, **options)

    def post(self, path: str, **options: Any) -> Callable[[F], F]:
        return self.http_route("POST", path, **options)

    def put(self, path: str, **options: Any) -> Callable[[F], F]:
        return self.http_route("PUT", path, **options)

    def patch(self, path: str, **options: Any) -> Callable[[F], F]:
        return self.http_route("PATCH", path, **options)

    def delete(self, path: str, **options: Any) -> Callable[[F], F]:
        return self.http_route("DELETE", path, **options)

    @property
    def event_types(self) -> frozenset[str]:
        return frozenset(s.message.type for s in self.subscriptions if not s.is_task)

    @property
    def task_types(self) -> frozenset[str]:
        return frozenset(s.message.type for s in self.subscriptions if s.is_task)

    def check_send(self, task: Task) -> None:
        """Refuse a task the domain does not declare in `sends=`: its function may not
        write to that queue, so the send would fail in production; it fails here first."""
        if not any(declared.type == task.type for declared in self.sends):
            name = type(task).__name__
            raise ConfigurationError(
                f"domain {self.name} sends task {task.type} without declaring it: "
                f"Domain({self.name!r}, sends=[{name}]) grants its queue"
            )


def _secret_names(domain: str, secrets: Iterable[str]) -> tuple[str, ...]:
    names = tuple(secrets)
    for secret in names:
        if not _SECRET_NAME.fullmatch(secret):
            raise ConfigurationError(
                f"domain {domain}: secret name {secret!r} must be lower-case letters, digits "
                "and '-', starting with a letter, at most 30 characters (it names the secret)"
            )
    return names


def _task_classes(domain: str, sends: Iterable[type[Task]]) -> tuple[type[Task], ...]:
    classes = tuple(sends)
    for task in classes:
        if not (isinstance(task, type) and issubclass(task, Task) and "type" in vars(task)):
            raise ConfigurationError(f"domain {domain}: sends= takes Task subclasses, got {task!r}")
    return classes


def _body_model(
    route: str, handler: Callable[..., Any], declared: type[BaseModel] | None
) -> type[BaseModel] | None:
    """The model a route validates its body with: `declared`, or the `Model` of the handler's
    `request: Request[Model]` annotation; both given, they must agree."""
    annotated = _annotated_body(route, handler, unresolved_ok=declared is not None)
    if declared is not None and annotated is not None and annotated is not declared:
        raise ConfigurationError(
            f"{route} takes Request[{annotated.__name__}] but declares "
            f"body={declared.__name__}; name one model"
        )
    return declared or annotated


def _annotated_body(
    route: str, handler: Callable[..., Any], *, unresolved_ok: bool
) -> type[BaseModel] | None:
    function = inspect.unwrap(handler)
    parameters = list(inspect.signature(function).parameters.values())
    annotation = parameters[0].annotation if parameters else inspect.Parameter.empty
    if isinstance(annotation, str):  # postponed (`from __future__ import annotations`)
        if "[" not in annotation:
            return None
        try:
            # As typing.get_type_hints resolves it, for this one parameter only.
            annotation = eval(annotation, getattr(function, "__globals__", {}))
        except NameError as error:
            if unresolved_ok:
                return None
            raise ConfigurationError(
                f"{route}: cannot resolve the annotation {annotation!r} ({error}); define "
                "the body model at module level, or pass body= to the decorator"
            ) from error
    if get_origin(annotation) is not Request:
        return None
    (model,) = get_args(annotation)
    if model is None or model is type(None) or model is Any:
        return None
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise ConfigurationError(
            f"{route} takes Request[{model!r}]; a body is a pydantic model (or None)"
        )
    return model


def _name_of(handler: Callable[..., Any]) -> str:
    return getattr(handler, "__name__", type(handler).__name__)


def _check_callable(label: str, handler: Callable[..., Any], parameters: str) -> None:
    """Refuse, at registration, a callable the platform would fail to call at every
    delivery: one that is not an `async def`, or cannot take `parameters` positionally."""
    call = getattr(handler, "__call__", None)  # noqa: B004 - an object with async __call__
    if not (
        inspect.iscoroutinefunction(handler)
        or inspect.iscoroutinefunction(inspect.unwrap(handler))
        or inspect.iscoroutinefunction(call)
    ):
        raise HandlerSignatureError(
            f"{label} must be an `async def` taking ({parameters}); the platform awaits "
            f"what it returns, and {handler!r} is not a coroutine function"
        )
    try:
        signature = inspect.signature(handler)
    except (TypeError, ValueError):  # a builtin without a signature: nothing to check
        return
    try:
        signature.bind(None, None)
    except TypeError:
        raise HandlerSignatureError(
            f"{label} must take ({parameters}) positionally; its signature is {signature}"
        ) from None


def _check_message_annotation(
    handler_name: str, handler: Callable[..., Any], message: type[Message]
) -> None:
    """Refuse a handler whose first parameter is annotated with a message class the
    subscribed one is not: it would be handed a message of another shape."""
    annotation = _first_annotation(handler)
    if (
        isinstance(annotation, type)
        and issubclass(annotation, Message)
        and not issubclass(message, annotation)
    ):
        raise ConfigurationError(
            f"{handler_name} takes {annotation.__name__} but is subscribed to {message.type} "
            f"({message.__name__}); annotate it with {message.__name__}"
        )


def _first_annotation(handler: Callable[..., Any]) -> Any:
    """The first parameter's annotation, resolved if it is a plain name (postponed
    annotations); None when there is none or it does not resolve."""
    function = inspect.unwrap(handler)
    try:
        parameters = list(inspect.signature(function).parameters.values())
    except (TypeError, ValueError):
        return None
    if not parameters or parameters[0].annotation is inspect.Parameter.empty:
        return None
    annotation = parameters[0].annotation
    if isinstance(annotation, str):
        if not annotation.isidentifier():
            return None
        return getattr(function, "__globals__", {}).get(annotation)
    return annotation


def _check_filter_fields(event: type[Event], where: Mapping[str, Any]) -> None:
    """Refuse a `where` filter naming a field the event does not have: it would never
    match, and nothing would say why."""
    unknown = list(_unknown_filter_fields(event, where, ""))
    if unknown:
        raise ConfigurationError(
            f"the filter of a handler of {event.type} ({event.__name__}) names "
            + "; ".join(unknown)
            + ": it would never match"
        )


def _unknown_filter_fields(
    model: type[BaseModel], pattern: Mapping[str, Any], prefix: str
) -> Iterator[str]:
    from bus.routing.matcher import OR_KEYWORD, expand_dotted_keys, is_or_relationship

    for key, value in expand_dotted_keys(pattern).items():
        if key == OR_KEYWORD and is_or_relationship(value):
            for alternative in value:
                yield from _unknown_filter_fields(model, alternative, prefix)
            continue
        field = model.model_fields.get(key)
        if field is None:
            known = ", ".join(sorted(model.model_fields)) or "none"
            yield (
                f"{prefix + key!r}, which is not a field of {model.__name__} (its fields: {known})"
            )
        elif isinstance(value, dict):
            nested = _nested_model(field.annotation)
            if nested is not None:
                yield from _unknown_filter_fields(nested, value, f"{prefix}{key}.")


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    """The one pydantic model a field holds, directly, optionally or in a list; None when
    it may hold anything else with fields of its own (a dict, Any), which goes unchecked."""
    models: set[type[BaseModel]] = set()
    pending = [annotation]
    while pending:
        current = pending.pop()
        if current is None or current is type(None):
            continue
        if isinstance(current, type) and issubclass(current, BaseModel):
            models.add(current)
            continue
        origin = get_origin(current)
        if origin is None and isinstance(current, type):
            continue  # a scalar: no fields below it to check
        if origin in (dict, Mapping) or origin is None:
            return None
        pending.extend(get_args(current))
    return models.pop() if len(models) == 1 else None
