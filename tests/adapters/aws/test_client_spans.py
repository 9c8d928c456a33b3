"""Client spans for SDK calls, on both SDKs the adapter uses: one per call made inside a
trace, named by service and operation, with the resource's name and the call's outcome."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from adapters.aws.session import AwsClients, AwsSettings, Sdk


@pytest.mark.parametrize("sdk", ["aiobotocore", "botocore"])
async def test_a_call_inside_a_trace_is_a_client_span_and_one_outside_is_not(
    moto_endpoint: str, sdk: Sdk
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    settings = AwsSettings(endpoint_url=moto_endpoint, sdk=sdk, tracer_provider=provider)
    async with AwsClients(settings, "sqs") as clients:
        url = (await clients.sqs.create_queue(QueueName=f"spans-{sdk}"))["QueueUrl"]
        with tracer.start_as_current_span("handler") as handler:
            await clients.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])
            with pytest.raises(Exception, match=r"NonExistentQueue|does not exist"):
                await clients.sqs.get_queue_url(QueueName="no-such-queue")
    found, missing, _ = exporter.get_finished_spans()
    assert found.name == "SQS.GetQueueAttributes" and found.kind is SpanKind.CLIENT
    assert found.parent is not None and found.parent.span_id == handler.get_span_context().span_id
    assert found.attributes is not None
    assert found.attributes["messaging.destination.name"] == f"spans-{sdk}"
    assert found.attributes["http.response.status_code"] == 200
    assert missing.name == "SQS.GetQueueUrl"
    assert missing.status.status_code is StatusCode.ERROR
