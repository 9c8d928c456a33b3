"""Batch calls retry exactly the failed entries, and give up with a clear error."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from adapters.aws.batches import EntryFailure, put_in_batches
from adapters.aws.errors import PublishFailed
from adapters.aws.session import AwsSettings

QUICK = AwsSettings(backoff=0.001, max_backoff=0.01, retry_deadline=0.5)
Batch = Sequence[tuple[str, str]]


class Service:
    """An AWS batch API stand-in: refuses chosen entries a number of times, records calls."""

    def __init__(self, refuse: dict[str, int], sender_fault: bool = False) -> None:
        self.refuse = refuse
        self.sender_fault = sender_fault
        self.calls: list[list[str]] = []
        self.accepted: list[str] = []

    async def __call__(self, batch: Batch) -> list[EntryFailure]:
        self.calls.append([entry for _, entry in batch])
        failures = []
        for batch_id, entry in batch:
            if self.refuse.get(entry, 0) > 0:
                self.refuse[entry] -= 1
                failures.append(
                    EntryFailure(batch_id, "Throttling", "slow down", self.sender_fault)
                )
            else:
                self.accepted.append(entry)
        return failures


def entries(count: int) -> list[tuple[str, str]]:
    return [(f"event {n}", f"e{n}") for n in range(count)]


async def test_entries_go_ten_to_a_call() -> None:
    service = Service({})
    await put_in_batches("Publish", entries(23), service, QUICK)
    assert [len(c) for c in service.calls] == [10, 10, 3]
    assert service.accepted == [f"e{n}" for n in range(23)]


async def test_a_call_carries_no_more_bytes_than_the_batch_limit() -> None:
    service = Service({})
    big = [(f"event {n}", "x" * 100_000) for n in range(11)]  # 1.1 MB in all
    await put_in_batches("Publish", big, service, QUICK, size=len, max_batch_bytes=256 * 1024)
    assert [len(c) for c in service.calls] == [2, 2, 2, 2, 2, 1]
    assert len(service.accepted) == 11


async def test_only_failed_entries_are_sent_again() -> None:
    service = Service({"e3": 2, "e7": 1})
    await put_in_batches("Publish", entries(10), service, QUICK)
    assert service.calls[1:] == [["e3", "e7"], ["e3"]]
    assert sorted(service.accepted) == sorted(f"e{n}" for n in range(10))


async def test_an_entry_still_failing_at_the_deadline_raises_naming_it() -> None:
    service = Service({"e4": 10_000})
    with pytest.raises(PublishFailed) as raised:
        await put_in_batches("SNS PublishBatch", entries(6), service, QUICK)
    assert raised.value.failures == {"event 4": "Throttling: slow down"}
    assert "SNS PublishBatch failed for 1 entry" in str(raised.value)
    assert raised.value.attempts > 1
    assert not raised.value.sender_fault, "throttling is retried by the caller later"


async def test_an_entry_refused_by_the_senders_fault_is_not_retried() -> None:
    service = Service({"e1": 1}, sender_fault=True)
    with pytest.raises(PublishFailed) as raised:
        await put_in_batches("Publish", entries(3), service, QUICK)
    assert len(service.calls) == 1
    assert raised.value.sender_fault, "callers park what the sender's fault refused"


async def test_an_unreachable_endpoint_is_retried_until_it_answers() -> None:
    outages = 3
    service = Service({})

    async def flaky(batch: Batch) -> list[EntryFailure]:
        nonlocal outages
        if outages:
            outages -= 1
            raise EndpointConnectionError(endpoint_url="http://127.0.0.1:9")
        return await service(batch)

    await put_in_batches("Publish", entries(2), flaky, QUICK)
    assert service.accepted == ["e0", "e1"]


async def test_a_request_aws_rejects_is_raised_at_once() -> None:
    calls = 0

    async def invalid(batch: Batch) -> list[EntryFailure]:
        nonlocal calls
        calls += 1
        raise ClientError({"Error": {"Code": "InvalidParameter", "Message": "no"}}, "Publish")

    with pytest.raises(ClientError):
        await put_in_batches("Publish", entries(2), invalid, QUICK)
    assert calls == 1
