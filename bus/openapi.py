"""OpenAPI 3.1 documents of the domains' HTTP routes, built from their pydantic models.

One document per domain (`domain_document`) or one for many (`openapi_document`, what
`GET /openapi.json` serves and `tctf openapi` writes): each route's path parameters, body,
success answer and the problem+json errors `bus.http.HttpRouter` can give it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from bus.client import Operation
from bus.domain import Domain, HttpRoute
from bus.errors import ConfigurationError
from bus.http import (
    CORRELATION_HEADER,
    FORM_CONTENT_TYPE,
    MAX_PATH_PARAM_LENGTH,
    PROBLEM_JSON,
    ProblemType,
)
from bus.schemas import meaning, resolved, self_contained

OPENAPI_VERSION = "3.1.0"
PROBLEM_SCHEMA = "Problem"
_PATH_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
#: The errors the router may answer to any route, and those only a route with a body gets.
_ANY_ROUTE_ERRORS = {
    401: "the caller is not who the request needs (`Unauthorized`)",
    404: "no such resource",
    409: "the request conflicts with the resource's current state",
    422: "the body fails validation (`errors` lists each field), or the request cannot be "
    "processed",
    429: "too many attempts; retry after `Retry-After` seconds",
    500: "the handler failed",
    503: "a dependency is unreachable; retry after `Retry-After` seconds",
}
#: What the gateway answers a route that needs a signed-in caller, before its handler runs.
_SIGNED_IN_ERRORS = {
    401: "no valid bearer token",
    403: "the token lacks the scopes or roles the route needs",
}
#: The bearer-token scheme every signed-in route names.
BEARER_SCHEME = "bearer"
_BODY_ERRORS = {
    400: "the body is not JSON",
    413: "the body is over the size limit",
}


def openapi_document(
    domains: Iterable[Domain], *, title: str = "tctf", version: str = "0.1.0"
) -> dict[str, Any]:
    """One OpenAPI 3.1 document for every route of `domains`, tagged by domain.

    Model schemas are named `<domain>.<Model>`, so two domains' models never collide.
    """
    paths: dict[str, dict[str, Any]] = {}
    schemas: dict[str, Any] = {PROBLEM_SCHEMA: problem_schema()}
    tags = []
    for domain in domains:
        tags.append({"name": domain.name})
        domain_paths, domain_schemas = _domain_parts(domain)
        for path, operations in domain_paths.items():
            served = paths.setdefault(path, {})
            for method in operations.keys() & served.keys():
                raise ConfigurationError(
                    f"{method.upper()} {path} is a route of both {served[method]['tags'][0]} "
                    f"and {domain.name}; a request could reach only one"
                )
            served.update(operations)
        schemas.update(domain_schemas)
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": title, "version": version},
        "tags": tags,
        "paths": paths,
        "components": {
            "schemas": schemas,
            "headers": _headers(),
            "securitySchemes": {
                BEARER_SCHEME: {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
        },
    }


def domain_document(domain: Domain, *, version: str = "0.1.0") -> dict[str, Any]:
    """The OpenAPI 3.1 document of one domain's routes."""
    return openapi_document([domain], title=domain.name, version=version)


def problem_schema() -> dict[str, Any]:
    """The JSON Schema of every error answer: an RFC 9457 problem document."""
    return {
        "type": "object",
        "description": "An RFC 9457 problem; `type` identifies the kind of problem.",
        "required": ["type", "title", "status", "detail"],
        "properties": {
            "type": {"type": "string", "enum": [kind.value for kind in ProblemType]},
            "title": {"type": "string"},
            "status": {"type": "integer", "minimum": 400, "maximum": 599},
            "detail": {"type": "string"},
            "correlation_id": {"type": "string"},
            "errors": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["field", "message"],
                    "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
                },
            },
        },
    }


def route_security(route: HttpRoute) -> list[dict[str, list[str]]] | None:
    """The OpenAPI `security` of a route: the bearer scheme with the route's scopes for a
    signed-in route, None for a public (or internal) one."""
    if not route.access.signed_in or route.access.internal:
        return None
    return [{BEARER_SCHEME: list(route.access.scopes)}]


def operation_mismatches(operation: Operation[Any, Any], document: dict[str, Any]) -> list[str]:
    """How `operation` (a client's view of a route) differs from the route in `document`
    (its domain's OpenAPI): path, method, body, success status and answer must agree."""
    where = f"{operation.domain}: {operation.method} {operation.path}"
    found = document.get("paths", {}).get(operation.path, {}).get(operation.method.lower())
    if found is None:
        return [f"{where} is no route of the document"]
    schemas = document.get("components", {}).get("schemas", {})
    served = found.get("requestBody", {}).get("content", {}).get("application/json", {})
    mismatches = []
    if not _same(operation.body, served.get("schema"), schemas):
        mismatches.append(f"{where}: its body model is not the route's")
    answer = found["responses"].get(str(operation.status))
    if answer is None:
        return [*mismatches, f"{where}: the route does not answer {operation.status}"]
    answered = answer.get("content", {}).get("application/json", {}).get("schema")
    if operation.answer is not None and not _same(operation.answer, answered, schemas):
        mismatches.append(f"{where}: its answer model is not the route's")
    return mismatches


def _same(model: type[BaseModel] | None, schema: Any, schemas: dict[str, Any]) -> bool:
    if model is None or schema is None:
        return model is None and schema is None
    ours = meaning(self_contained(model.model_json_schema()))
    theirs = meaning(resolved(schema, schemas, "#/components/schemas/"))
    return bool(ours == theirs)


def _domain_parts(domain: Domain) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    ref = f"#/components/schemas/{domain.name}.{{model}}"
    keyed: list[tuple[tuple[type[BaseModel], Any], ...]] = []
    for route in domain.http_routes:
        keyed.append(
            tuple(
                (model, mode)
                for model, mode in ((route.body, "validation"), (route.response, "serialization"))
                if model is not None
            )
            + tuple((model, "serialization") for model in route.answers.values())
        )
    models = list(dict.fromkeys(pair for pairs in keyed for pair in pairs))
    refs, definitions = models_json_schema(models, ref_template=ref) if models else ({}, {})
    schemas = {
        f"{domain.name}.{name}": schema for name, schema in definitions.get("$defs", {}).items()
    }
    paths: dict[str, dict[str, Any]] = {}
    for route in domain.http_routes:
        body = refs[(route.body, "validation")] if route.body else None
        answer = refs[(route.response, "serialization")] if route.response else None
        own = {status: refs[(model, "serialization")] for status, model in route.answers.items()}
        operation = _operation(route, body, answer, own)
        paths.setdefault(route.path, {})[route.method.lower()] = operation
    return paths, schemas


def _operation(
    route: HttpRoute,
    body: dict[str, Any] | None,
    answer: dict[str, Any] | None,
    own_answers: dict[int, dict[str, Any]],
) -> dict[str, Any]:
    handler = route.handler
    doc = (handler.__doc__ or "").strip()
    operation: dict[str, Any] = {
        "operationId": route.name,
        "tags": [route.domain],
        "summary": doc.splitlines()[0] if doc else route.name,
    }
    parameters = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": {"type": "string", "minLength": 1, "maxLength": MAX_PATH_PARAM_LENGTH},
        }
        for name in _PATH_PARAM.findall(route.path)
    ]
    if route.query is not None:
        schema = route.query.model_json_schema()
        required = set(schema.get("required", ()))
        parameters.extend(
            {"name": name, "in": "query", "required": name in required, "schema": _present(field)}
            for name, field in schema.get("properties", {}).items()
        )
    if parameters:
        operation["parameters"] = parameters
    if body is not None:
        content = {"application/json": {"schema": body}}
        if route.forms:
            content[FORM_CONTENT_TYPE] = {"schema": body}
        operation["requestBody"] = {"required": True, "content": content}
    operation["responses"] = _responses(route, answer)
    for status, schema in own_answers.items():
        documented = operation["responses"].setdefault(
            str(status), {"description": "the route's own answer", "content": {}}
        )
        documented["content"]["application/json"] = {"schema": schema}
    security = route_security(route)
    if security is not None:
        operation["security"] = security
    return operation


def _present(field: dict[str, Any]) -> dict[str, Any]:
    """A query parameter's schema as it is when sent: an optional one is absent, never null."""
    options = [o for o in field.get("anyOf", ()) if o != {"type": "null"}]
    if len(options) == 1:
        field = {**{k: v for k, v in field.items() if k != "anyOf"}, **options[0]}
    return {k: v for k, v in field.items() if not (k == "default" and v is None)}


def _responses(route: HttpRoute, answer: dict[str, Any] | None) -> dict[str, Any]:
    correlated = {CORRELATION_HEADER: {"$ref": "#/components/headers/CorrelationId"}}
    responses: dict[str, Any] = {}
    if answer is not None:
        responses[str(route.status)] = {
            "description": "success",
            "headers": correlated,
            "content": {"application/json": {"schema": answer}},
        }
    else:  # an undeclared answer: any JSON, or nothing (a handler returning None)
        responses[str(route.status)] = {
            "description": "success",
            "headers": correlated,
            "content": {"application/json": {"schema": {}}},
        }
        if route.status == 200:
            responses["204"] = {"description": "success, no content", "headers": correlated}
    errors = {
        **_ANY_ROUTE_ERRORS,
        **(_BODY_ERRORS if route.body else {}),
        **(_SIGNED_IN_ERRORS if route.access.signed_in else {}),
    }
    for status, description in sorted(errors.items()):
        responses[str(status)] = {
            "description": description,
            "headers": correlated,
            "content": {
                PROBLEM_JSON: {"schema": {"$ref": f"#/components/schemas/{PROBLEM_SCHEMA}"}}
            },
        }
    return responses


def _headers() -> dict[str, Any]:
    return {
        "CorrelationId": {
            "description": "The request's correlation id (the caller's, or a new one)",
            "schema": {"type": "string"},
        }
    }
