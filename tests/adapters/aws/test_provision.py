"""Provisioning creates what the topology describes; running it again changes nothing."""

from __future__ import annotations

import json
from typing import Any

import pytest

from adapters.aws.errors import NotProvisioned
from adapters.aws.provision import discover, provision, rule_name
from adapters.aws.session import AwsClients, AwsSettings
from bus import Domain, Storage
from bus.topology import Topology
from tests.adapters.aws.test_transports import shop

QUEUE_ATTRIBUTES = ["VisibilityTimeout", "RedrivePolicy", "Policy", "MessageRetentionPeriod"]


async def snapshot(clients: AwsClients, topology: Topology) -> dict[str, Any]:
    """Every resource under the app's names, with the attributes provisioning sets."""
    queues: dict[str, Any] = {}
    listed = await clients.sqs.list_queues(QueueNamePrefix=topology.app)
    for url in sorted(listed.get("QueueUrls", [])):
        attributes = await clients.sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=QUEUE_ATTRIBUTES
        )
        queues[url.rsplit("/", 1)[-1]] = attributes["Attributes"]
    topics = [
        t["TopicArn"]
        for t in (await clients.sns.list_topics())["Topics"]
        if t["TopicArn"].endswith(f":{topology.topic}")
    ]
    subscriptions: dict[str, Any] = {}
    for topic in topics:
        listed = await clients.sns.list_subscriptions_by_topic(TopicArn=topic)
        for sub in listed["Subscriptions"]:
            found = await clients.sns.get_subscription_attributes(
                SubscriptionArn=sub["SubscriptionArn"]
            )
            attributes = found["Attributes"]
            subscriptions[sub["Endpoint"].rsplit(":", 1)[-1]] = {
                name: attributes.get(name)
                for name in (
                    "RawMessageDelivery",
                    "FilterPolicy",
                    "FilterPolicyScope",
                    "RedrivePolicy",
                )
            }
    rules: dict[str, Any] = {}
    found_rules = await clients.events.list_rules(EventBusName=topology.event_bus)
    for rule in found_rules["Rules"]:
        targets = await clients.events.list_targets_by_rule(
            Rule=rule["Name"], EventBusName=topology.event_bus
        )
        rules[rule["Name"]] = {
            "pattern": json.loads(rule["EventPattern"]),
            "targets": sorted(t["Arn"] for t in targets["Targets"]),
            "dead_letters": sorted(
                (t.get("DeadLetterConfig", {}).get("Arn"), json.dumps(t.get("RetryPolicy")))
                for t in targets["Targets"]
            ),
        }
    return {"queues": queues, "topics": topics, "subscriptions": subscriptions, "rules": rules}


async def test_provisioning_twice_leaves_the_same_resources(
    settings: AwsSettings, app: str
) -> None:
    domains, _ = shop()
    topology = Topology.from_domains(domains, app=app)
    async with AwsClients(settings, "sqs", "sns", "events") as clients:
        first = await provision(topology, clients, "sns")
        await provision(topology, clients, "eventbridge")
        once = await snapshot(clients, topology)
        again = await provision(topology, clients, "sns")
        await provision(topology, clients, "eventbridge")
        twice = await snapshot(clients, topology)
    assert again == first
    assert twice == once
    # queues and DLQs of billing (events, tasks), vip and audit
    assert len(once["queues"]) == 8 and len(once["topics"]) == 1
    assert set(once["subscriptions"]) == {q.name for q in topology.queues if q.purpose == "events"}
    assert set(once["rules"]) == {
        rule_name(q.name) for q in topology.queues if q.purpose == "events"
    }


async def test_queues_subscriptions_and_rules_follow_the_topology(
    settings: AwsSettings, app: str
) -> None:
    domains, _ = shop()
    topology = Topology.from_domains(domains, app=app)
    async with AwsClients(settings, "sqs", "sns", "events") as clients:
        resources = await provision(topology, clients, "sns")
        await provision(topology, clients, "eventbridge")
        state = await snapshot(clients, topology)
    billing = next(q for q in topology.queues if q.domain == "billing" and q.purpose == "events")
    attributes = state["queues"][billing.name]
    assert attributes["VisibilityTimeout"] == "1"
    assert json.loads(attributes["RedrivePolicy"]) == {
        "deadLetterTargetArn": resources.queue_arns[billing.dlq],
        "maxReceiveCount": billing.max_receive_count,
    }
    statements = json.loads(attributes["Policy"])["Statement"]
    assert {(s["Principal"]["Service"], s["Action"]) for s in statements} == {
        ("sns.amazonaws.com", "sqs:SendMessage"),
        ("events.amazonaws.com", "sqs:SendMessage"),
    }
    policy, scope = topology.filter_policy(billing.name)
    assert scope == "MessageBody" and "$or" in policy
    assert state["subscriptions"][billing.name] == {
        "RawMessageDelivery": "true",
        "FilterPolicy": json.dumps(policy, sort_keys=True),
        "FilterPolicyScope": "MessageBody",
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": resources.queue_arns[billing.dlq]}),
    }
    audit = next(q for q in topology.queues if q.domain == "audit")
    assert state["subscriptions"][audit.name]["FilterPolicyScope"] == "MessageAttributes"
    assert state["rules"][rule_name(billing.name)] == {
        "pattern": topology.event_pattern(billing.name),
        "targets": [resources.queue_arns[billing.name]],
        "dead_letters": [
            (
                resources.queue_arns[billing.dlq],
                json.dumps({"MaximumRetryAttempts": 185, "MaximumEventAgeInSeconds": 86400}),
            )
        ],
    }
    dlq = state["queues"][billing.dlq]
    assert dlq["MessageRetentionPeriod"] == str(14 * 24 * 3600)
    # What the topic or the rule cannot deliver to the queue, it may send to the DLQ.
    dlq_statements = json.loads(dlq["Policy"])["Statement"]
    assert {(s["Principal"]["Service"], s["Action"], s["Resource"]) for s in dlq_statements} == {
        ("sns.amazonaws.com", "sqs:SendMessage", resources.queue_arns[billing.dlq]),
        ("events.amazonaws.com", "sqs:SendMessage", resources.queue_arns[billing.dlq]),
    }
    tasks = next(q for q in topology.queues if q.domain == "billing" and q.purpose == "tasks")
    assert "Policy" not in state["queues"][tasks.dlq]


async def test_a_domain_with_a_table_and_no_queues_gets_its_outbox_dlq(
    settings: AwsSettings, app: str
) -> None:
    accounts = Domain("accounts", storage=Storage())
    topology = Topology.from_domains([accounts], app=app)
    assert topology.queues == () and topology.outbox_dlqs == {
        "accounts": f"{app}-accounts-outbox-dlq"
    }
    async with AwsClients(settings, "sqs", "sns", "events") as clients:
        made = await provision(topology, clients, "sns")
        await provision(topology, clients, "eventbridge")
        again = await provision(topology, clients, "sns")
        state = await snapshot(clients, topology)
        assert await discover(topology, clients, "sns") == made
    assert again == made
    assert set(state["queues"]) == {f"{app}-accounts-outbox-dlq"}
    assert state["queues"][f"{app}-accounts-outbox-dlq"]["MessageRetentionPeriod"] == str(
        14 * 24 * 3600
    )


async def test_discovery_finds_what_provisioning_made_and_refuses_what_is_missing(
    settings: AwsSettings, app: str
) -> None:
    domains, _ = shop()
    topology = Topology.from_domains(domains, app=app)
    async with AwsClients(settings, "sqs", "sns", "events") as clients:
        with pytest.raises(NotProvisioned, match="tctf up"):
            await discover(topology, clients, "sns")
        made = await provision(topology, clients, "sns")
        assert await discover(topology, clients, "sns") == made
