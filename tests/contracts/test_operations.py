"""Every `Operation` a domain's contracts declare for its callers matches a route of that
domain, as its OpenAPI document describes it: a caller's typed client cannot drift."""

from __future__ import annotations

import domains
from bus.openapi import domain_document, operation_mismatches
from tctf.contracts import contract_operations


def test_every_declared_operation_matches_its_domains_openapi() -> None:
    mismatches = []
    for name in domains.names():
        for operation in contract_operations(name):
            if operation.domain != name:
                mismatches.append(f"{name}'s contracts declare an operation of {operation.domain}")
                continue
            mismatches += operation_mismatches(operation, domain_document(domains.load(name)))
    assert mismatches == []
