"""Client spans for AWS SDK calls: one per API call (DynamoDB, SQS, SNS, EventBridge, ...).

Hooked on the client's own botocore event emitter (`before-parameter-build`, which sees the
call's parameters, then `after-call` or `after-call-error`), which both SDKs the adapter uses
emit: aiobotocore in the same task as the call, botocore in the worker thread that inherits
the caller's context. A call made while no
span runs (a long poll, provisioning) opens none: only work that is part of a trace is
traced. See decision 0013 for why this and not OpenTelemetry's botocore instrumentation.
"""

from __future__ import annotations

from typing import Any

from bus.tracing import span_attributes

#: Where the call's span waits between `before-parameter-build` and its end, in botocore's per-call
#: request context.
_SPAN_KEY = "tctf_client_span"


def instrument_client(client: Any, tracer_provider: Any) -> None:
    """Open a client span around every API call `client` makes, on `tracer_provider`."""
    from opentelemetry import trace

    tracer = trace.get_tracer("tctf.aws", tracer_provider=tracer_provider)
    service = client.meta.service_model.service_id
    region = client.meta.region_name

    def before_call(params: Any, model: Any, context: Any, **_: Any) -> None:
        if not trace.get_current_span().get_span_context().is_valid:
            return
        context[_SPAN_KEY] = tracer.start_span(
            f"{service}.{model.name}",
            kind=trace.SpanKind.CLIENT,
            attributes=span_attributes(
                {
                    "rpc.system": "aws-api",
                    "rpc.service": str(service),
                    "rpc.method": model.name,
                    "cloud.region": region,
                    **_resource_names(params),
                }
            ),
        )

    def after_call(http_response: Any, parsed: Any, context: Any, **_: Any) -> None:
        span = context.pop(_SPAN_KEY, None)
        if span is None:
            return
        status = getattr(http_response, "status_code", None)
        metadata = parsed.get("ResponseMetadata", {}) if isinstance(parsed, dict) else {}
        error = parsed.get("Error", {}) if isinstance(parsed, dict) else {}
        span.set_attributes(
            span_attributes(
                {
                    "http.response.status_code": status,
                    "aws.request_id": metadata.get("RequestId"),
                    "error.type": error.get("Code") if status and status >= 400 else None,
                }
            )
        )
        if status is not None and status >= 400:
            span.set_status(trace.Status(trace.StatusCode.ERROR, str(error.get("Code", status))))
        span.end()

    def after_call_error(exception: BaseException, context: Any, **_: Any) -> None:
        span = context.pop(_SPAN_KEY, None)
        if span is None:
            return
        span.set_attributes(span_attributes({"error.type": type(exception).__name__}))
        span.set_status(trace.Status(trace.StatusCode.ERROR, type(exception).__name__))
        span.end()

    events = client.meta.events
    events.register("before-parameter-build", before_call, unique_id="tctf-client-span-before")
    events.register("after-call", after_call, unique_id="tctf-client-span-after")
    events.register("after-call-error", after_call_error, unique_id="tctf-client-span-error")


def _resource_names(params: Any) -> dict[str, str | None]:
    """The table, queue, topic or bus a call addresses, by name (never an item or body)."""
    if not isinstance(params, dict):
        return {}
    names: dict[str, str | None] = {}
    if isinstance(params.get("TableName"), str):
        names["aws.dynamodb.table_names"] = params["TableName"]
    if isinstance(params.get("QueueUrl"), str):
        names["messaging.destination.name"] = params["QueueUrl"].rstrip("/").rsplit("/", 1)[-1]
    if isinstance(params.get("TopicArn"), str):
        names["messaging.destination.name"] = params["TopicArn"].rsplit(":", 1)[-1]
    return names
