"""API Gateway HTTP API (payload format 2.0) requests to the domain's routes, and back.

The request is mapped onto `bus.http.HttpRequest` and answered by `HttpRouter`, the same router
that serves the domain on localhost; bad input is a 4xx problem+json, never a 500.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import unquote

from bus.http import HttpRequest, HttpResponse, HttpRouter, ProblemType, problem


def request_from_http_event(
    event: Mapping[str, Any], correlation_id: Callable[[Mapping[str, str]], str]
) -> HttpRequest | HttpResponse:
    """The request an HTTP API event carries, or a 400 answer if its body cannot be read;
    `correlation_id` names the request in that answer."""
    context = event.get("requestContext") or {}
    method = (context.get("http") or {}).get("method", "GET")
    headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
    cookies = event.get("cookies")
    if cookies:
        headers["cookie"] = "; ".join(cookies)
    raw = event.get("body")
    body = b""
    if raw:
        if event.get("isBase64Encoded"):
            try:
                body = base64.b64decode(raw, validate=True)
            except (binascii.Error, ValueError):
                return problem(
                    400,
                    "Bad Request",
                    "request body is not valid base64",
                    kind=ProblemType.MALFORMED_BODY,
                    correlation_id=correlation_id(headers),
                )
        else:
            body = raw.encode()
    return HttpRequest(
        method=method,
        path=_route_path(event),
        query=dict(event.get("queryStringParameters") or {}),
        headers=headers,
        body=body,
        verified_claims=_jwt_claims(context),
        client=(context.get("http") or {}).get("sourceIp"),
    )


def _jwt_claims(context: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The claims API Gateway's JWT authorizer verified, as it passes them: strings, with
    `roles` (an array claim) as "[a b]" text, which is read back into a list."""
    claims = ((context.get("authorizer") or {}).get("jwt") or {}).get("claims")
    if not isinstance(claims, Mapping):
        return None
    read = dict(claims)
    roles = read.get("roles")
    if isinstance(roles, str):
        read["roles"] = roles.strip("[]").split()
    return read


def http_response(response: HttpResponse) -> dict[str, Any]:
    """The answer in API Gateway's shape; JSON bodies go back as text."""
    try:
        text = response.body.decode()
        encoded = False
    except UnicodeDecodeError:
        text = base64.b64encode(response.body).decode()
        encoded = True
    return {
        "statusCode": response.status,
        "headers": dict(response.headers),
        "body": text,
        "isBase64Encoded": encoded,
    }


async def handle_http_event(router: HttpRouter, event: Mapping[str, Any]) -> dict[str, Any]:
    """Route one HTTP API request and answer it."""
    request = request_from_http_event(event, router.correlation_id)
    if isinstance(request, HttpResponse):
        return http_response(request)
    return http_response(await router.handle(request, internal=_signed_by_iam(event)))


def _signed_by_iam(event: Mapping[str, Any]) -> bool:
    """Whether API Gateway's IAM authorization admitted the request: a SigV4-signed call
    from another domain's function, which alone may reach `INTERNAL` routes."""
    authorizer = (event.get("requestContext") or {}).get("authorizer") or {}
    return isinstance(authorizer, Mapping) and isinstance(authorizer.get("iam"), Mapping)


def _route_path(event: Mapping[str, Any]) -> str:
    """The request path, percent-decoded as an ASGI server decodes `scope["path"]` (so a
    route matches the same on localhost and behind API Gateway), without the stage prefix a
    named (non-`$default`) stage adds."""
    context = event.get("requestContext") or {}
    path = str(event.get("rawPath") or (context.get("http") or {}).get("path") or "/")
    stage = context.get("stage")
    if stage and stage != "$default":
        prefix = f"/{stage}"
        if path == prefix or path.startswith(f"{prefix}/"):
            path = path[len(prefix) :] or "/"
    return unquote(path)
