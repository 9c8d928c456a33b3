"""Domain HTTP routes, served the same way behind API Gateway and on localhost.

`HttpRouter` matches an `HttpRequest` to an `HttpRoute`, validates its JSON body with the
route's pydantic model, runs the handler with a `Context`, and answers an `HttpResponse`. Bad
input is a 4xx problem+json (RFC 9457), never a 500; an unreachable dependency is a 503 with
`Retry-After`; every answer carries the request's `x-correlation-id`, is never cached and
never sniffed, and an error's detail never names internal keys, event types or ids.
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import partial
from typing import Any
from urllib.parse import parse_qsl, unquote

import orjson
from pydantic import BaseModel, ValidationError

from bus.access import Authenticator, Principal, Unauthenticated, bearer_token
from bus.client import Client, Clients, Reply, current_clients
from bus.context import Context
from bus.dispatch import Publisher, flush
from bus.domain import Domain, HttpRoute, Request
from bus.envelope import MAX_INHERITED_ID_LENGTH
from bus.errors import (
    ConfigurationError,
    Conflict,
    Forbidden,
    MessageTooLarge,
    NotFound,
    PermanentError,
    Rejected,
    TooManyRequests,
    TransientError,
    Unauthorized,
)
from bus.ids import IdGenerator
from bus.middleware import current_correlation_id
from bus.observability import log_access
from bus.storage.errors import ConditionFailed, TransactionCanceled
from bus.tracing import UNTRACED_REQUEST, ServerSpan, Tracing

PROBLEM_JSON = "application/problem+json"
#: The body a route declared with `forms=True` may also take.
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
CORRELATION_HEADER = "x-correlation-id"
#: Seconds a client is asked to wait before retrying a 503.
RETRY_AFTER_SECONDS = 1
#: On every answer: browsers must not guess a content type, and no cache may keep an answer,
#: which may carry personal data (a route cannot be relied on to say when it does).
HARDENING_HEADERS = {"x-content-type-options": "nosniff", "cache-control": "no-store"}
#: The longest path parameter a route is given: ids are short, and a longer one could
#: only fail further in (a table key has a size limit), so it is answered 404 here.
MAX_PATH_PARAM_LENGTH = 256
#: A caller's `x-correlation-id` adopted as the request's: no longer than every envelope
#: published in its handling may carry (`bus.envelope`), of characters no log line, header,
#: message attribute or log query needs to escape and no redaction rewrites (no `@`).
_ADOPTABLE_CORRELATION_ID = re.compile(rf"[A-Za-z0-9._:/+=-]{{1,{MAX_INHERITED_ID_LENGTH}}}")
ContextFactory = Callable[[str, str | None], Context]
_log = logging.getLogger("tctf.http")
_clock = time.perf_counter

# Error details for the caller; what really happened (keys, types, ids) goes to the log.
_FAILED = "the handler failed; see the logs"
_CONFLICT = "the request conflicts with the resource's current state"
_UNPROCESSABLE = "the request cannot be processed; see the logs"
_TOO_LARGE = "the request's events are too large to publish; send a smaller request"


class ProblemType(StrEnum):
    """The stable `type` of every problem the platform answers (RFC 9457 §3.1.1).

    URNs identify the kind of problem and are never dereferenced; a client branches on
    them, not on `title` or `detail`.
    """

    MALFORMED_BODY = "urn:tctf:problem:malformed-body"
    INVALID_BODY = "urn:tctf:problem:invalid-body"
    INVALID_QUERY = "urn:tctf:problem:invalid-query"
    BODY_TOO_LARGE = "urn:tctf:problem:body-too-large"
    NO_ROUTE = "urn:tctf:problem:no-route"
    METHOD_NOT_ALLOWED = "urn:tctf:problem:method-not-allowed"
    NOT_FOUND = "urn:tctf:problem:not-found"
    CONFLICT = "urn:tctf:problem:conflict"
    UNAUTHORIZED = "urn:tctf:problem:unauthorized"
    FORBIDDEN = "urn:tctf:problem:forbidden"
    TOO_MANY_REQUESTS = "urn:tctf:problem:too-many-requests"
    REJECTED = "urn:tctf:problem:rejected"
    UNPROCESSABLE = "urn:tctf:problem:unprocessable"
    EVENTS_TOO_LARGE = "urn:tctf:problem:events-too-large"
    UNAVAILABLE = "urn:tctf:problem:unavailable"
    INTERNAL = "urn:tctf:problem:internal"


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """An HTTP request as it arrives, before routing: headers lower-cased or not."""

    method: str
    path: str
    query: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    #: The claims of a bearer token a gateway in front already verified (API Gateway's JWT
    #: authorizer puts them in the Lambda event); None where this router checks tokens.
    verified_claims: Mapping[str, Any] | None = None
    #: The address of the peer the request came from, as the edge saw it (ASGI's `client`,
    #: API Gateway's `sourceIp`); None for a call made in process.
    client: str | None = None


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status: int
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        return orjson.loads(self.body) if self.body else None


def problem(
    status: int,
    title: str,
    detail: str,
    *,
    kind: ProblemType,
    correlation_id: str | None = None,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> HttpResponse:
    """An RFC 9457 problem document of `kind`; with a correlation id, in its body and its
    header."""
    document = {"type": kind.value, "title": title, "status": status, "detail": detail, **extra}
    answer_headers = {"content-type": PROBLEM_JSON, **HARDENING_HEADERS, **(headers or {})}
    if correlation_id is not None:
        document["correlation_id"] = correlation_id
        answer_headers[CORRELATION_HEADER] = correlation_id
    return HttpResponse(status, orjson.dumps(document), answer_headers)


def unavailable(detail: str, correlation_id: str | None = None) -> HttpResponse:
    """A 503 asking the client to retry: a dependency (table, publisher) is unreachable."""
    return problem(
        503,
        "Service Unavailable",
        detail,
        kind=ProblemType.UNAVAILABLE,
        correlation_id=correlation_id,
        headers={"retry-after": str(RETRY_AFTER_SECONDS)},
    )


@dataclass(frozen=True, slots=True)
class _Compiled:
    route: HttpRoute
    pattern: re.Pattern[str]


def _compile(path: str) -> re.Pattern[str]:
    parts = re.split(r"(\{[A-Za-z_][A-Za-z0-9_]*\})", path.rstrip("/") or "/")
    regex = "".join(f"(?P<{p[1:-1]}>[^/]+)" if p.startswith("{") else re.escape(p) for p in parts)
    return re.compile(f"^{regex}/?$")


class HttpRouter:
    """Routes requests to the HTTP handlers of the given domains.

    `ids` makes the correlation id of a request that brings none and matches no route.
    `clients` is how route handlers reach other domains (`ctx.client`); by default this
    router itself, in process. `tracing`, when given, opens a server span per request
    (`bus.tracing`).
    """

    def __init__(
        self,
        domains: Iterable[Domain],
        publisher: Publisher,
        context: ContextFactory,
        *,
        ids: Callable[[], str] | None = None,
        clients: Clients | None = None,
        tracing: Tracing | None = None,
        authenticator: Authenticator | None = None,
    ) -> None:
        self._publisher = publisher
        self._tracing = tracing
        self._context = context
        self._ids = ids or IdGenerator()
        #: The domains served, in order: what their OpenAPI document describes.
        self.domains = tuple(domains)
        self._routes = [_Compiled(r, _compile(r.path)) for d in self.domains for r in d.http_routes]
        self.clients: Clients = clients or RouterClients(self)
        #: Verifies bearer tokens for routes that need a caller; without one, such routes
        #: answer 401 to everyone (closed, never open).
        self.authenticator = authenticator

    @property
    def routes(self) -> list[HttpRoute]:
        return [c.route for c in self._routes]

    def correlation_id(self, headers: Mapping[str, str]) -> str:
        """The caller's `x-correlation-id` (header names in any case), or a new id.

        A tracing header must not fail a request, nor can it be trusted: one too long for an
        envelope or holding other characters than `_ADOPTABLE_CORRELATION_ID`'s is replaced
        by a new id, and the log line says so."""
        for name, value in headers.items():
            if name.lower() == CORRELATION_HEADER and value:
                if _ADOPTABLE_CORRELATION_ID.fullmatch(value) is not None:
                    return value
                fresh = self._ids()
                _log.info(
                    "x-correlation-id refused (%d characters; at most %d of A-Z a-z 0-9 . _ : "
                    "/ + = -): this request's correlation id is %s",
                    len(value),
                    MAX_INHERITED_ID_LENGTH,
                    fresh,
                    extra={"correlation_id": fresh},
                )
                return fresh
        return self._ids()

    async def handle(
        self, request: HttpRequest, *, internal: bool = False, domain: str | None = None
    ) -> HttpResponse:
        """Answer one request; `internal` for another domain's in-process call, which alone
        reaches `INTERNAL` routes and is trusted without a bearer token. With `domain`, only
        that domain's routes answer, as only its API would over HTTPS."""
        started = _clock()
        headers = {k.lower(): v for k, v in request.headers.items()}
        correlation_id = self.correlation_id(headers)
        token = current_correlation_id.set(correlation_id)
        clients_token = current_clients.set(self.clients)
        routed: list[HttpRoute] = []
        try:
            if self._tracing is None:
                response = await self._route(
                    request, headers, correlation_id, UNTRACED_REQUEST, internal, domain, routed
                )
            else:
                with self._tracing.server(request.method, headers, correlation_id) as span:
                    response = await self._route(
                        request, headers, correlation_id, span, internal, domain, routed
                    )
        finally:
            current_clients.reset(clients_token)
            current_correlation_id.reset(token)
        route = routed[0] if routed else None
        log_access(
            request.method,
            route.path if route is not None else None,
            response.status,
            started,
            correlation_id,
            route.domain if route is not None else None,
        )
        return response

    async def _route(
        self,
        request: HttpRequest,
        headers: dict[str, str],
        correlation_id: str,
        span: ServerSpan,
        internal: bool,
        domain: str | None,
        routed: list[HttpRoute],
    ) -> HttpResponse:
        matched = self._match(request, correlation_id, internal, domain)
        if isinstance(matched, HttpResponse):
            span.answered(matched.status)
            return matched
        route, params = matched
        routed.append(route)
        span.routed(route.path, route.domain)
        principal: Principal | None = None
        if route.access.signed_in and not internal:
            caller = await self._authorize(route, request, headers, correlation_id)
            if isinstance(caller, HttpResponse):
                span.answered(caller.status)
                return caller
            principal = caller
        context = self._context(route.domain, correlation_id)
        response = await self._run(route, params, request, headers, context, principal)
        span.answered(response.status)
        return response

    async def _authorize(
        self,
        route: HttpRoute,
        request: HttpRequest,
        headers: dict[str, str],
        correlation_id: str,
    ) -> Principal | HttpResponse:
        """The caller behind the bearer token, if it may call `route`: 401 without a valid
        token, 403 when the token lacks the route's scopes or roles."""
        token = bearer_token(headers)
        try:
            if request.verified_claims is not None and "sub" in request.verified_claims:
                principal = Principal.from_claims(request.verified_claims)
            elif token is None:
                raise Unauthenticated("no bearer token")
            elif self.authenticator is None:
                raise Unauthenticated("no authenticator is configured for signed-in routes")
            else:
                principal = await self.authenticator.authenticate(token)
        except Unauthenticated as error:
            _log.info("route %s: unauthenticated: %s", route.name, error)
            return problem(
                401,
                "Unauthorized",
                "a valid bearer token is required",
                kind=ProblemType.UNAUTHORIZED,
                correlation_id=correlation_id,
                headers={"www-authenticate": 'Bearer realm="api"'},
            )
        if not principal.may(route.access):
            return problem(
                403,
                "Forbidden",
                f"this route needs {route.access.label}",
                kind=ProblemType.FORBIDDEN,
                correlation_id=correlation_id,
            )
        return principal

    async def _run(
        self,
        route: HttpRoute,
        params: dict[str, str],
        request: HttpRequest,
        headers: dict[str, str],
        context: Context,
        principal: Principal | None = None,
    ) -> HttpResponse:
        cid = context.correlation_id
        body: BaseModel | None = None
        if route.body is not None:
            content_type = headers.get("content-type", "").partition(";")[0].strip().lower()
            if route.forms and content_type == FORM_CONTENT_TYPE:
                parsed = _parse_form(route.body, request.body, cid)
            else:
                parsed = _parse_body(route.body, request.body, cid)
            if isinstance(parsed, HttpResponse):
                return parsed
            body = parsed
        query: BaseModel | None = None
        if route.query is not None:
            try:
                query = route.query.model_validate(dict(request.query))
            except ValidationError as error:
                return problem(
                    422,
                    "Unprocessable Content",
                    "query string failed validation",
                    kind=ProblemType.INVALID_QUERY,
                    correlation_id=cid,
                    errors=_field_errors(error),
                )
        call = Request(
            path_params=params,
            query=request.query,
            headers=headers,
            body=body,
            principal=principal,
            raw_body=request.body,
            params=query,
            client=request.client,
        )
        try:
            result = await route.handler(call, context)
        except NotFound as error:
            return problem(
                404, "Not Found", str(error), kind=ProblemType.NOT_FOUND, correlation_id=cid
            )
        except Conflict as error:
            return problem(
                409, "Conflict", str(error), kind=ProblemType.CONFLICT, correlation_id=cid
            )
        except Unauthorized as error:
            return problem(
                401, "Unauthorized", str(error), kind=ProblemType.UNAUTHORIZED, correlation_id=cid
            )
        except Forbidden as error:
            return problem(
                403, "Forbidden", str(error), kind=ProblemType.FORBIDDEN, correlation_id=cid
            )
        except TooManyRequests as error:
            retry_after = {"retry-after": str(max(1, math.ceil(error.retry_after)))}
            return problem(
                429,
                "Too Many Requests",
                str(error),
                kind=ProblemType.TOO_MANY_REQUESTS,
                correlation_id=cid,
                headers=retry_after,
            )
        except Rejected as error:  # the handler's own words, written for the caller
            return problem(
                422,
                "Unprocessable Content",
                str(error),
                kind=ProblemType.REJECTED,
                correlation_id=cid,
            )
        except (ConditionFailed, TransactionCanceled):
            _log.info("route %s: a write's condition failed", route.name, exc_info=True)
            return problem(
                409, "Conflict", _CONFLICT, kind=ProblemType.CONFLICT, correlation_id=cid
            )
        except PermanentError as error:
            if isinstance(error, ConfigurationError):
                _log.exception("route %s is miswired", route.name)
                return _internal(_FAILED, cid)
            _log.warning("route %s: %s", route.name, error, exc_info=True)
            return problem(
                422,
                "Unprocessable Content",
                _UNPROCESSABLE,
                kind=ProblemType.UNPROCESSABLE,
                correlation_id=cid,
            )
        except Exception as error:
            if is_unreachable(error):
                _log.warning("route %s: a dependency is unreachable", route.name, exc_info=True)
                return unavailable("a dependency could not be reached; retry the request", cid)
            _log.exception("route %s failed", route.name)
            return _internal(_FAILED, cid)
        try:
            response = _respond(route, result, cid)
        except ValidationError:
            _log.exception("route %s returned a value its response model refuses", route.name)
            return _internal("the handler's answer is invalid", cid)
        if context.outbox:
            try:
                await flush(self._publisher, context.outbox)
            except MessageTooLarge as error:
                _log.warning("route %s: %s", route.name, error)
                return problem(
                    422,
                    "Unprocessable Content",
                    _TOO_LARGE,
                    kind=ProblemType.EVENTS_TOO_LARGE,
                    correlation_id=cid,
                )
            except Exception:
                _log.warning("route %s: publishing its events failed", route.name, exc_info=True)
                return unavailable("the request's events could not be published; retry it", cid)
        return response

    def _match(
        self,
        request: HttpRequest,
        correlation_id: str,
        internal: bool = False,
        domain: str | None = None,
    ) -> tuple[HttpRoute, dict[str, str]] | HttpResponse:
        allowed: list[str] = []
        for compiled in self._routes:
            if compiled.route.access.internal and not internal:
                continue
            if domain is not None and compiled.route.domain != domain:
                continue
            found = compiled.pattern.match(request.path)
            if found is None:
                continue
            if compiled.route.method == request.method.upper():
                params = found.groupdict()
                if any(len(value) > MAX_PATH_PARAM_LENGTH for value in params.values()):
                    return problem(
                        404,
                        "Not Found",
                        f"no resource has an id over {MAX_PATH_PARAM_LENGTH} characters",
                        kind=ProblemType.NOT_FOUND,
                        correlation_id=correlation_id,
                    )
                return compiled.route, params
            allowed.append(compiled.route.method)
        if allowed:
            return problem(
                405,
                "Method Not Allowed",
                f"{request.method} is not allowed on {request.path}",
                kind=ProblemType.METHOD_NOT_ALLOWED,
                correlation_id=correlation_id,
                headers={"allow": ", ".join(sorted(allowed))},
            )
        return problem(
            404,
            "Not Found",
            f"no route matches {request.method} {request.path}",
            kind=ProblemType.NO_ROUTE,
            correlation_id=correlation_id,
        )


def _internal(detail: str, correlation_id: str) -> HttpResponse:
    return problem(
        500,
        "Internal Server Error",
        detail,
        kind=ProblemType.INTERNAL,
        correlation_id=correlation_id,
    )


class RouterClients:
    """Clients that call domains served by `router` in process: the request goes through
    the router as it would arrive over HTTP (validation, problem answers, correlation)."""

    def __init__(self, router: HttpRouter) -> None:
        self._router = router

    def __call__(self, domain: str, correlation_id: str | None = None) -> Client:
        if not any(served.name == domain for served in self._router.domains):
            names = ", ".join(d.name for d in self._router.domains)
            raise ConfigurationError(
                f"no domain {domain!r} is served in this process (serving: {names})"
            )
        return Client(domain, partial(self._send, domain), correlation_id=correlation_id)

    async def _send(
        self,
        domain: str,
        method: str,
        path: str,
        query: Mapping[str, str],
        headers: Mapping[str, str],
        body: bytes,
    ) -> Reply:
        # An internal caller, answered by `domain`'s routes alone, as its API would be alone
        # behind its URL: the one way to reach an `INTERNAL` route.
        answer = await self._router.handle(
            HttpRequest(method, unquote(path), query, headers, body), internal=True, domain=domain
        )
        return Reply(answer.status, answer.body, answer.headers)


def is_unreachable(error: BaseException) -> bool:
    """Whether `error` means a dependency could not be reached in time: a `TransientError`,
    or a connection failure or timeout anywhere in its chain of causes, as SDKs wrap them."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, TransientError | ConnectionError | TimeoutError):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def _parse_form(
    model: type[BaseModel], raw: bytes, correlation_id: str
) -> BaseModel | HttpResponse:
    """A form-encoded body: UTF-8, each field once (RFC 6749 3.2 refuses repeats, which would
    leave the handler to guess which one counts), then the model's validation."""
    try:
        pairs = parse_qsl(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(raw))
    except (UnicodeDecodeError, ValueError):
        return problem(
            400,
            "Bad Request",
            "request body is not a UTF-8 form",
            kind=ProblemType.MALFORMED_BODY,
            correlation_id=correlation_id,
        )
    fields = dict(pairs)
    if len(fields) != len(pairs):
        repeated = sorted({name for name, _ in pairs if [n for n, _ in pairs].count(name) > 1})
        return problem(
            400,
            "Bad Request",
            f"form fields may each appear once: {', '.join(repeated)} repeated",
            kind=ProblemType.MALFORMED_BODY,
            correlation_id=correlation_id,
        )
    try:
        return model.model_validate(fields)
    except ValidationError as error:
        return _invalid(error, correlation_id)


def _parse_body(
    model: type[BaseModel], raw: bytes, correlation_id: str
) -> BaseModel | HttpResponse:
    try:
        return model.model_validate_json(raw or b"null")
    except ValidationError as error:
        if any(e["type"] == "json_invalid" for e in error.errors()):
            return problem(
                400,
                "Bad Request",
                "request body is not valid JSON",
                kind=ProblemType.MALFORMED_BODY,
                correlation_id=correlation_id,
                errors=_field_errors(error),
            )
        return _invalid(error, correlation_id)


def _invalid(error: ValidationError, correlation_id: str) -> HttpResponse:
    return problem(
        422,
        "Unprocessable Content",
        "request body failed validation",
        kind=ProblemType.INVALID_BODY,
        correlation_id=correlation_id,
        errors=_field_errors(error),
    )


def _field_errors(error: ValidationError) -> list[dict[str, str]]:
    return [
        {"field": ".".join(str(p) for p in e["loc"]) or "(body)", "message": e["msg"]}
        for e in error.errors(include_url=False)
    ]


def _respond(route: HttpRoute, result: Any, correlation_id: str) -> HttpResponse:
    headers = {
        "content-type": "application/json",
        **HARDENING_HEADERS,
        CORRELATION_HEADER: correlation_id,
    }
    if isinstance(result, HttpResponse):  # an answer the route declared in `answers`
        return HttpResponse(result.status, result.body, {**headers, **result.headers})
    if result is None:
        return HttpResponse(204 if route.status == 200 else route.status, b"", headers)
    if route.response is not None and not isinstance(result, route.response):
        result = route.response.model_validate(result)
    if isinstance(result, BaseModel):
        payload = result.__pydantic_serializer__.to_json(result)
        if route.location is not None:
            headers["location"] = route.location.format_map(dict(result))
    else:
        payload = orjson.dumps(result)
    return HttpResponse(route.status, payload, headers)
