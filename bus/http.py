"""Domain HTTP routes, served the same way behind API Gateway and on localhost.

`HttpRouter` matches an `HttpRequest` to an `HttpRoute`, validates its JSON body with the
route's pydantic model, runs the handler with a `Context`, and answers an `HttpResponse`;
bad input is a 4xx problem+json (RFC 9457), never a 500."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from pydantic import BaseModel, ValidationError

from bus.context import Context
from bus.dispatch import Publisher, flush
from bus.domain import Domain, HttpRoute, Request
from bus.errors import Conflict, MessageTooLarge, NotFound, PermanentError
from bus.storage.errors import ConditionFailed, TransactionCanceled

PROBLEM_JSON = "application/problem+json"
ContextFactory = Callable[[str, str | None], Context]
_log = logging.getLogger("tctf.http")


@dataclass(frozen=True, slots=True)
class HttpRequest:
    method: str
    path: str
    query: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status: int
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        return orjson.loads(self.body) if self.body else None


def problem(status: int, title: str, detail: str, **extra: Any) -> HttpResponse:
    """An RFC 9457 problem document."""
    document = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    return HttpResponse(status, orjson.dumps(document), {"content-type": PROBLEM_JSON})


@dataclass(frozen=True, slots=True)
class _Compiled:
    route: HttpRoute
    pattern: re.Pattern[str]


def _compile(path: str) -> re.Pattern[str]:
    parts = re.split(r"(\{[A-Za-z_][A-Za-z0-9_]*\})", path.rstrip("/") or "/")
    regex = "".join(f"(?P<{p[1:-1]}>[^/]+)" if p.startswith("{") else re.escape(p) for p in parts)
    return re.compile(f"^{regex}/?$")


class HttpRouter:
    """Routes requests to the handlers of the given domains."""

    def __init__(
        self, domains: Iterable[Domain], publisher: Publisher, context: ContextFactory
    ) -> None:
        self._publisher = publisher
        self._context = context
        self._routes = [_Compiled(r, _compile(r.path)) for d in domains for r in d.http_routes]

    @property
    def routes(self) -> list[HttpRoute]:
        return [c.route for c in self._routes]

    async def handle(self, request: HttpRequest) -> HttpResponse:
        matched = self._match(request)
        if isinstance(matched, HttpResponse):
            return matched
        route, params = matched
        body: BaseModel | None = None
        if route.body is not None:
            parsed = _parse_body(route.body, request.body)
            if isinstance(parsed, HttpResponse):
                return parsed
            body = parsed
        headers = {k.lower(): v for k, v in request.headers.items()}
        context = self._context(route.domain, headers.get("x-correlation-id"))
        call = Request(path_params=params, query=request.query, headers=headers, body=body)
        try:
            result = await route.handler(call, context)
        except NotFound as error:
            return problem(404, "Not Found", str(error))
        except (Conflict, ConditionFailed, TransactionCanceled) as error:
            return problem(409, "Conflict", str(error))
        except PermanentError as error:
            return problem(422, "Unprocessable Content", str(error))
        except Exception:
            _log.exception("route %s failed", route.name)
            return problem(
                500,
                "Internal Server Error",
                "the handler failed; see the logs",
                correlation_id=context.correlation_id,
            )
        try:
            response = _respond(route, result, context.correlation_id)
        except ValidationError:
            _log.exception("route %s returned a value its response model refuses", route.name)
            return problem(500, "Internal Server Error", "the handler's answer is invalid")
        if context.outbox:
            try:
                await flush(self._publisher, context.outbox)
            except MessageTooLarge as error:
                return problem(422, "Unprocessable Content", str(error))
            except Exception:
                _log.exception("route %s: publishing its events failed", route.name)
                return problem(
                    503,
                    "Service Unavailable",
                    "the request's events could not be published; retry it",
                    correlation_id=context.correlation_id,
                )
        return response

    def _match(self, request: HttpRequest) -> tuple[HttpRoute, dict[str, str]] | HttpResponse:
        allowed: list[str] = []
        for compiled in self._routes:
            found = compiled.pattern.match(request.path)
            if found is None:
                continue
            if compiled.route.method == request.method.upper():
                return compiled.route, found.groupdict()
            allowed.append(compiled.route.method)
        if allowed:
            response = problem(
                405, "Method Not Allowed", f"{request.method} is not allowed on {request.path}"
            )
            return HttpResponse(
                405, response.body, {**response.headers, "allow": ", ".join(sorted(allowed))}
            )
        return problem(404, "Not Found", f"no route matches {request.method} {request.path}")


def _parse_body(model: type[BaseModel], raw: bytes) -> BaseModel | HttpResponse:
    try:
        return model.model_validate_json(raw or b"null")
    except ValidationError as error:
        errors = [
            {"field": ".".join(str(p) for p in e["loc"]) or "(body)", "message": e["msg"]}
            for e in error.errors(include_url=False)
        ]
        if any(e["type"] == "json_invalid" for e in error.errors()):
            return problem(400, "Bad Request", "request body is not valid JSON", errors=errors)
        return problem(400, "Bad Request", "request body failed validation", errors=errors)


def _respond(route: HttpRoute, result: Any, correlation_id: str) -> HttpResponse:
    headers = {"content-type": "application/json", "x-correlation-id": correlation_id}
    if result is None:
        return HttpResponse(204 if route.status == 200 else route.status, b"", headers)
    if route.response is not None and not isinstance(result, route.response):
        result = route.response.model_validate(result)
    if isinstance(result, BaseModel):
        payload = result.__pydantic_serializer__.to_json(result)
    else:
        payload = orjson.dumps(result)
    return HttpResponse(route.status, payload, headers)
