"""`ctx.metrics` and its EMF documents: counters, measurements, units, resolution, the
`service` dimension, the platform's per-handler metrics, and the format's limits (100
metrics per document, 100 values per metric), every document checked against the spec."""

from __future__ import annotations

from typing import Any

import pytest

from bus.clock import timestamp
from bus.dispatch import Outcome
from bus.emf import EmfWriter, documents
from bus.envelope import Envelope
from bus.errors import ConfigurationError
from bus.metrics import Metrics, record_outcome
from tests.emf import check_emf

NOW = 1_767_225_600.0


def _flush(metrics: Metrics, namespace: str = "shop") -> list[dict[str, Any]]:
    written: list[bytes] = []
    docs = EmfWriter(namespace, written.append, now=lambda: NOW).flush(metrics)
    assert b"".join(written).count(b"\n") == len(docs)
    return [check_emf(doc) for doc in docs]


def test_counters_add_up_and_measurements_keep_every_value_under_the_service_dimension() -> None:
    metrics = Metrics("users")
    metrics.add("UsersSignedUp")
    metrics.add("UsersSignedUp", 2)
    metrics.record("Latency", 12.5, "Milliseconds")
    metrics.record("Latency", 7, "Milliseconds")
    (doc,) = _flush(metrics)
    assert doc == {
        "_aws": {
            "Timestamp": int(NOW * 1000),
            "CloudWatchMetrics": [
                {
                    "Namespace": "shop",
                    "Dimensions": [["service"]],
                    "Metrics": [
                        {"Name": "UsersSignedUp", "Unit": "Count"},
                        {"Name": "Latency", "Unit": "Milliseconds"},
                    ],
                }
            ],
        },
        "service": "users",
        "UsersSignedUp": 3,
        "Latency": [12.5, 7],
    }
    assert _flush(metrics) == [], "a flush forgets what it wrote"


def test_high_resolution_is_stated_and_extra_dimensions_make_their_own_document() -> None:
    metrics = Metrics("messaging")
    metrics.add("Bounces", high_resolution=True)
    metrics.add("Sent", dimensions={"template": "welcome"})
    by_dimensions = {
        tuple(doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0]): doc for doc in _flush(metrics)
    }
    assert set(by_dimensions) == {("service",), ("service", "template")}
    plain = by_dimensions[("service",)]["_aws"]["CloudWatchMetrics"][0]["Metrics"]
    assert plain == [{"Name": "Bounces", "Unit": "Count", "StorageResolution": 1}]
    assert by_dimensions[("service", "template")]["template"] == "welcome"


def test_more_than_100_metrics_or_values_split_into_more_documents() -> None:
    metrics = Metrics("users")
    for number in range(250):
        metrics.add(f"Metric{number}")
    for number in range(230):
        metrics.record("Latency", number, "Milliseconds")
    docs = _flush(metrics)
    names = [[m["Name"] for m in doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]] for doc in docs]
    assert all(len(n) <= 100 for n in names)
    assert sorted(name for n in names for name in n if name != "Latency") == sorted(
        f"Metric{number}" for number in range(250)
    )
    latencies: list[Any] = []
    for doc in docs:
        value = doc.get("Latency")
        if value is not None:
            latencies.extend(value if isinstance(value, list) else [value])
    assert latencies == list(range(230))


@pytest.mark.parametrize(
    ("call", "complaint"),
    [
        (lambda m: m.add("Sent", unit="Pieces"), "unit 'Pieces'"),
        (lambda m: m.add("", 1), "metric name ''"),
        (lambda m: m.add("Sent", float("nan")), "not a finite number"),
        (lambda m: m.add("service"), "name of one of its dimensions"),
        (lambda m: (m.add("Sent"), m.record("Sent", 1, "Seconds")), "one name keeps one unit"),
    ],
)
def test_what_cloudwatch_would_refuse_is_refused_when_recorded(call, complaint) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigurationError, match=complaint):
        call(Metrics("users"))


def test_the_check_catches_what_the_specification_forbids() -> None:
    metrics = Metrics("users")
    for number in range(101):
        metrics.add(f"Metric{number}")
    (doc, rest) = documents("shop", metrics.drain(), 0)
    doc["_aws"]["CloudWatchMetrics"][0]["Metrics"].extend(
        rest["_aws"]["CloudWatchMetrics"][0]["Metrics"]
    )
    with pytest.raises(AssertionError, match="too long"):
        check_emf(doc)
    missing = {**rest}
    del missing["Metric100"]
    with pytest.raises(AssertionError, match="Metric100"):
        check_emf(missing)


def _outcome(status: str, **fields: Any) -> Outcome:
    envelope = Envelope(
        id="0190a000-0000-7000-8000-000000000001",
        source="users",
        type="USER_CREATED",
        time=timestamp(NOW - 2.5),
        dataversion=1,
        correlationid="c1",
        data={},
    )
    return Outcome("messaging", "r1", status, "messaging.welcome", envelope, **fields)  # type: ignore[arg-type]


def test_each_delivery_counts_by_handler_with_its_duration_and_the_record_age() -> None:
    metrics = Metrics("messaging")
    record_outcome(metrics, _outcome("handled", duration_ms=4.0), NOW)
    record_outcome(metrics, _outcome("failed", duration_ms=1.0, sent_at=NOW - 0.5), NOW)
    record_outcome(metrics, _outcome("parked", duration_ms=2.0), NOW)
    record_outcome(metrics, _outcome("filtered"), NOW)
    (doc,) = _flush(metrics)
    assert doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["service", "handler"]]
    assert (doc["service"], doc["handler"]) == ("messaging", "messaging.welcome")
    assert (doc["Processed"], doc["Failed"], doc["Parked"]) == (1, 1, 1)
    assert doc["Duration"] == [4.0, 1.0, 2.0]
    assert doc["RecordAge"] == [2500.0, 500.0, 2500.0]  # SQS's SentTimestamp when it has one
