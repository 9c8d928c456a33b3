"""A property-based run over `GET /openapi.json` of every domain, through the in-process app:
malformed and valid input alike get no 5xx and no answer that breaks its own document."""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from adapters.http.asgi import HttpApp
from tctf.config import load_domains
from tctf.platform import Platform

#: Every domain under `domains/`, so a domain added later is covered without a change here.
_platform = Platform(load_domains(), seed=13)
_app = HttpApp(_platform.router, lifespan=_platform.running)
schema = schemathesis.openapi.from_asgi("/openapi.json", _app)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@schema.parametrize()
@settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_answers_within_its_document(case: schemathesis.Case[Any]) -> None:
    case.call_and_validate(checks=CHECKS)
