"""Calling another domain's HTTP API from a handler, typed by the callee's own contract.

The callee declares an `Operation` in its `contracts.py` (method, path, body and answer
models, the route's status); the suite checks it against the callee's OpenAPI document.
A caller writes `await ctx.client("auth_password").call(CHECK_PASSWORD, body)` and gets
the answer model back. Where the call goes is the runtime's: `RouterClients` calls the
router in process (`tctf run`, tests); on AWS an HTTPS client stands behind the same port.
"""

from __future__ import annotations

import contextvars
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar, cast
from urllib.parse import quote

import orjson
from pydantic import BaseModel, ValidationError

from bus.errors import CallFailed, CallRefused, ConfigurationError

Body = TypeVar("Body", bound=BaseModel | None)
Answer = TypeVar("Answer", bound=BaseModel | None)


@dataclass(frozen=True, slots=True)
class Operation(Generic[Body, Answer]):
    """One route of a domain, as callers see it: declared in that domain's contracts.

    `body` and `answer` are None for a route without a body or without an answer (204).
    """

    domain: str
    method: str
    path: str
    body: type[Body] | None = None
    answer: type[Answer] | None = None
    status: int = 200

    def url_path(self, path_params: Mapping[str, str]) -> str:
        """The path with each `{name}` replaced by its percent-encoded value."""
        try:
            return self.path.format_map({k: quote(v, safe="") for k, v in path_params.items()})
        except KeyError as error:
            raise ConfigurationError(
                f"{self.method} {self.path} needs path parameter {error.args[0]!r}"
            ) from None


@dataclass(frozen=True, slots=True)
class Reply:
    """What came back over the wire: status, body bytes, headers (lower-case names)."""

    status: int
    body: bytes
    headers: Mapping[str, str]


#: Sends one request to a domain: (method, path, query, headers, body) -> reply.
Send = Callable[[str, str, Mapping[str, str], Mapping[str, str], bytes], Awaitable[Reply]]


class Client:
    """Typed calls to one domain's routes over a `Send`."""

    def __init__(self, domain: str, send: Send, *, correlation_id: str | None = None) -> None:
        self.domain = domain
        self._send = send
        #: Sent as `x-correlation-id`, so the callee's log lines join the caller's request.
        self.correlation_id = correlation_id

    async def call(
        self,
        operation: Operation[Body, Answer],
        body: Body | None = None,
        *,
        path_params: Mapping[str, str] | None = None,
        query: Mapping[str, str] | None = None,
    ) -> Answer:
        """Call `operation` and return its answer model (None for a 204).

        A 4xx raises `CallRefused` (the callee's problem document attached), a 5xx or an
        unreachable callee `CallFailed`, which is transient: the caller may retry.
        """
        if operation.domain != self.domain:
            raise ConfigurationError(
                f"{operation.method} {operation.path} belongs to {operation.domain}, "
                f"not {self.domain}: use ctx.client({operation.domain!r})"
            )
        payload = b"" if body is None else body.__pydantic_serializer__.to_json(body)
        headers = {"content-type": "application/json"}
        if self.correlation_id:
            headers["x-correlation-id"] = self.correlation_id
        path = operation.url_path(path_params or {})
        try:
            reply = await self._send(operation.method, path, query or {}, headers, payload)
        except (ConnectionError, TimeoutError, OSError) as error:
            raise CallFailed(f"{self.domain} could not be reached: {error}") from error
        return _answer(operation, reply, self.domain)


def _answer(operation: Operation[Any, Answer], reply: Reply, domain: str) -> Answer:
    where = f"{domain} {operation.method} {operation.path}"
    if reply.status >= 500:
        raise CallFailed(f"{where} answered {reply.status}", status=reply.status)
    if reply.status >= 400:
        problem = _problem(reply.body)
        detail = problem.get("detail", "") if isinstance(problem, dict) else ""
        raise CallRefused(f"{where} refused: {reply.status} {detail}", reply.status, problem)
    if operation.answer is None or reply.status == 204:
        return None  # type: ignore[return-value]
    model = cast("type[BaseModel]", operation.answer)
    try:
        return cast("Answer", model.model_validate_json(reply.body))
    except ValidationError as error:
        raise CallFailed(f"{where} answered a body its contract refuses: {error}") from error


def _problem(body: bytes) -> Any:
    try:
        return orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        return None


class Clients(Protocol):
    """The runtime's way to reach a domain: a `Client` for a domain's name."""

    def __call__(self, domain: str, correlation_id: str | None = None) -> Client: ...


#: The clients of the runtime the current handler or request runs on.
current_clients: contextvars.ContextVar[Clients | None] = contextvars.ContextVar(
    "current_clients", default=None
)
