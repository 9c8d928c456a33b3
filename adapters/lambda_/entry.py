"""The Lambda handler, `adapters.lambda_.entry.handler`, for the domain named by TCTF_DOMAIN.

The function is built when this module is imported, in Lambda's init phase; every
invocation after that reuses it, with its event loop and AWS clients.
"""

from __future__ import annotations

import os
from typing import Any

from adapters.lambda_.app import LambdaApp
from adapters.lambda_.boot import build

_app: LambdaApp | None = build(os.environ) if os.environ.get("TCTF_DOMAIN") else None


def handler(event: Any, context: Any) -> dict[str, Any] | None:
    """Lambda's entry point: SQS, SNS, EventBridge, HTTP API v2 and DynamoDB Streams events."""
    global _app
    if _app is None:
        _app = build(os.environ)  # raises a ConfigurationError naming what is missing
    return _app(event, context)
