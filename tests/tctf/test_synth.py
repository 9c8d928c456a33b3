"""`tctf synth`: the CDK app's templates hold what the topology says, as `tctf up` makes it."""

from __future__ import annotations

import contextlib
import json
import math
import os
import shlex
import shutil
import subprocess
import sys
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from adapters.aws.provision import DLQ_RETENTION_SECONDS, TARGET_RETRY_POLICY, rule_name
from adapters.lambda_.boot import build
from bus import Context, Domain, DomainSettings, Event, Request, Task
from bus.routing import compile_event_pattern
from bus.secrets import variable as secret_variable
from bus.topology import Topology
from tctf.config import load_domains
from tctf.synth import (
    HANDLER,
    OUTBOX_STREAM_FILTER,
    OUTBOX_SWEEP_MINUTES,
    STREAM_BATCH_SIZE,
    FunctionSettings,
    function_timeout,
    main,
    stack_name,
)
from tests.fixtures import AWS
from tests.tctf.synthesized import LAYER, Templates, lint_findings

PSEUDO = {"AWS::Partition": "aws", "AWS::Region": "us-east-1", "AWS::AccountId": "123456789012"}
STREAM_SAMPLE = AWS / "aws-lambda-go/events/testdata/dynamodb-event.json"


class Pinged(Event):
    type = "PINGED"


class Probed(Event):
    type = "PROBED"
    host: str
    region: str


@pytest.fixture(scope="module")
def topology() -> Topology:
    return Topology.from_domains(load_domains(), app="tctf")


MAIL_STACK = stack_name("tctf", "messaging_consumers")


def resources(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    """Logical id -> properties of every resource of `kind`."""
    return {
        logical: resource.get("Properties", {})
        for logical, resource in template["Resources"].items()
        if resource["Type"] == kind
    }


def resolve(value: Any, parameters: dict[str, str] | None = None) -> Any:
    """A value with `Fn::Join` and pseudo-parameter `Ref`s worked out, as CloudFormation
    would in account 123456789012, us-east-1; `parameters` gives the template's own."""
    known = {**PSEUDO, **(parameters or {})}
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(str(resolve(part, parameters)) for part in parts)
    if isinstance(value, dict) and set(value) == {"Ref"} and value["Ref"] in known:
        return known[value["Ref"]]
    if isinstance(value, list):
        return [resolve(item, parameters) for item in value]
    return value


def ssm_parameters(template: dict[str, Any]) -> dict[str, str]:
    """The values CloudFormation would read from SSM for the template's parameters: another
    domain's API URL or id, as that domain's stack writes them."""
    found = {}
    for logical, parameter in template.get("Parameters", {}).items():
        name = str(parameter.get("Default", ""))
        if name.endswith("/api-url"):
            found[logical] = "https://api0123.execute-api.us-east-1.amazonaws.com"
        elif name.endswith("/api-id"):
            found[logical] = "api0123"
    return found


def invokes_live(function_name: Any, template: dict[str, Any]) -> bool:
    """Whether an event source mapping's `FunctionName` is the function's `live` alias
    (`<function>:live`, the function's name cut from the alias's ARN)."""
    ((alias_id, _),) = resources(template, "AWS::Lambda::Alias").items()
    name, qualifier = function_name["Fn::Join"][1]
    return qualifier == ":live" and {"Ref": alias_id} in name["Fn::Select"][1]["Fn::Split"]


def queue_ids(template: dict[str, Any]) -> dict[str, str]:
    """Queue name -> logical id."""
    return {
        p["QueueName"]: logical for logical, p in resources(template, "AWS::SQS::Queue").items()
    }


def test_the_shared_stack_holds_the_topic_or_the_bus_and_every_domain_depends_on_it(
    sns_app: Templates, eventbridge_app: Templates, topology: Topology
) -> None:
    (topic,) = resources(sns_app["tctf-shared"], "AWS::SNS::Topic").values()
    assert topic["TopicName"] == topology.topic
    (bus,) = resources(eventbridge_app["tctf-shared"], "AWS::Events::EventBus").values()
    assert bus["Name"] == topology.event_bus
    assert set(sns_app) == {"tctf-shared", *(stack_name("tctf", d) for d in topology.domains)}


def test_every_domain_stack_deploys_after_the_shared_one_and_after_no_other(
    tmp_path: Path,
) -> None:
    out = tmp_path / "cdk.out"
    assert main(["-o", str(out), "--no-deps", "--layer", LAYER, "--domain", "users"]) == 0
    artifacts = json.loads((out / "manifest.json").read_text())["artifacts"]

    stacks = [d for d in artifacts["tctf-users"]["dependencies"] if not d.endswith(".assets")]
    assert stacks == ["tctf-shared"]
    assert MAIL_STACK not in artifacts


def test_packages_without_their_dependencies_need_a_layer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["-o", str(tmp_path), "--no-deps"]) == 2
    assert "name the layer that holds the third-party distributions" in capsys.readouterr().err
    assert main(["-o", str(tmp_path), "--no-deps", "--layer", LAYER, "--app", "No_Good"]) == 2
    assert "app name 'No_Good'" in capsys.readouterr().err
    assert main(["-o", str(tmp_path), "--no-deps", "--layer", LAYER, "--memory-mb", "64"]) == 2
    assert "memory_mb is 128 to 10240" in capsys.readouterr().err


def test_every_queue_has_its_dlq_redrive_and_visibility_as_the_topology_says(
    sns_app: Templates, topology: Topology
) -> None:
    for spec in topology.queues:
        template = sns_app[stack_name("tctf", spec.domain)]
        queues = resources(template, "AWS::SQS::Queue")
        ids = queue_ids(template)
        queue, dlq = queues[ids[spec.name]], queues[ids[spec.dlq]]
        assert queue["VisibilityTimeout"] == math.ceil(spec.visibility_timeout)
        assert queue["RedrivePolicy"] == {
            "deadLetterTargetArn": {"Fn::GetAtt": [ids[spec.dlq], "Arn"]},
            "maxReceiveCount": spec.max_receive_count,
        }
        assert dlq["MessageRetentionPeriod"] == DLQ_RETENTION_SECONDS
    for domain, name in topology.outbox_dlqs.items():
        assert name in queue_ids(sns_app[stack_name("tctf", domain)])


def test_sns_subscriptions_carry_the_filter_policies_and_dlqs_tctf_up_sets(
    sns_app: Templates, topology: Topology
) -> None:
    events = [q for q in topology.queues if q.purpose == "events"]
    assert events
    for spec in events:
        template = sns_app[stack_name("tctf", spec.domain)]
        ids = queue_ids(template)
        (subscription,) = [
            s
            for s in resources(template, "AWS::SNS::Subscription").values()
            if s["Endpoint"] == {"Fn::GetAtt": [ids[spec.name], "Arn"]}
        ]
        policy, scope = topology.filter_policy(spec.name)
        assert resolve(subscription["TopicArn"]) == "arn:aws:sns:us-east-1:123456789012:tctf-events"
        assert subscription["Protocol"] == "sqs"
        assert subscription["RawMessageDelivery"] is True
        assert (subscription["FilterPolicy"], subscription["FilterPolicyScope"]) == (policy, scope)
        assert subscription["RedrivePolicy"] == {
            "deadLetterTargetArn": {"Fn::GetAtt": [ids[spec.dlq], "Arn"]}
        }
        topic = "arn:aws:sns:us-east-1:123456789012:tctf-events"
        _assert_may_send(template, ids[spec.name], "sns.amazonaws.com", topic)
        _assert_may_send(template, ids[spec.dlq], "sns.amazonaws.com", topic)


def test_eventbridge_rules_carry_the_patterns_dlqs_and_retries_tctf_up_sets(
    eventbridge_app: Templates, topology: Topology
) -> None:
    for spec in (q for q in topology.queues if q.purpose == "events"):
        template = eventbridge_app[stack_name("tctf", spec.domain)]
        ids = queue_ids(template)
        ((rule_id, rule),) = [
            (logical, r)
            for logical, r in resources(template, "AWS::Events::Rule").items()
            if r["Name"] == rule_name(spec.name)
        ]
        assert rule["EventBusName"] == topology.event_bus
        assert rule["EventPattern"] == topology.event_pattern(spec.name)
        (target,) = rule["Targets"]
        assert target["Arn"] == {"Fn::GetAtt": [ids[spec.name], "Arn"]}
        assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [ids[spec.dlq], "Arn"]}}
        assert target["RetryPolicy"] == TARGET_RETRY_POLICY
        rule_arn = {"Fn::GetAtt": [rule_id, "Arn"]}
        _assert_may_send(template, ids[spec.name], "events.amazonaws.com", rule_arn)
        _assert_may_send(template, ids[spec.dlq], "events.amazonaws.com", rule_arn)
    # No queue is subscribed to a topic: the only subscription left is SES's notifications'.
    subscriptions = resources(eventbridge_app[MAIL_STACK], "AWS::SNS::Subscription").values()
    assert [s["Protocol"] for s in subscriptions] == ["lambda"]


def test_each_function_is_fed_by_its_queues_and_reports_only_the_failed_records(
    sns_app: Templates, topology: Topology
) -> None:
    for domain in topology.domains:
        template = sns_app[stack_name("tctf", domain)]
        ((_, function),) = resources(template, "AWS::Lambda::Function").items()
        assert function["Handler"] == HANDLER
        assert function["Runtime"] == "python3.11"
        assert function["Layers"] == [LAYER]
        mappings = {
            m["EventSourceArn"]["Fn::GetAtt"][0]: m
            for m in resources(template, "AWS::Lambda::EventSourceMapping").values()
        }
        ids = queue_ids(template)
        specs = [q for q in topology.queues if q.domain == domain]
        for spec in specs:
            mapping = mappings[ids[spec.name]]
            assert invokes_live(mapping["FunctionName"], template)
            assert mapping["BatchSize"] == spec.batch_size
            assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
            assert mapping["ScalingConfig"] == {"MaximumConcurrency": max(spec.concurrency, 2)}
            # The event source mapping refuses a function that outlives the queue's visibility.
            assert function["Timeout"] <= spec.visibility_timeout


def test_a_stateful_domain_has_its_table_and_its_stream_feeds_only_new_outbox_items(
    sns_app: Templates, topology: Topology
) -> None:
    spec = topology.tables["users"]
    template = sns_app["tctf-users"]
    ((table_id, table),) = resources(template, "AWS::DynamoDB::Table").items()
    assert table["TableName"] == spec.name
    assert table["KeySchema"] == [
        {"AttributeName": "PK", "KeyType": "HASH"},
        {"AttributeName": "SK", "KeyType": "RANGE"},
    ]
    assert table["StreamSpecification"] == {"StreamViewType": "NEW_IMAGE"}
    assert table["TimeToLiveSpecification"] == {
        "AttributeName": spec.ttl_attribute,
        "Enabled": True,
    }
    indexes = {i["IndexName"]: i for i in table["GlobalSecondaryIndexes"]}
    assert {index.name for index in spec.indexes} == set(indexes)
    assert indexes["outbox"]["Projection"] == {"ProjectionType": "KEYS_ONLY"}
    (stream,) = [
        m
        for m in resources(template, "AWS::Lambda::EventSourceMapping").values()
        if m["EventSourceArn"] == {"Fn::GetAtt": [table_id, "StreamArn"]}
    ]
    assert stream["StartingPosition"] == "TRIM_HORIZON"
    assert stream["BatchSize"] == STREAM_BATCH_SIZE
    assert stream["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    (criterion,) = stream["FilterCriteria"]["Filters"]
    assert json.loads(criterion["Pattern"]) == OUTBOX_STREAM_FILTER
    # What the stream could not relay before its records expired, a schedule sweeps.
    assert invokes_live(stream["FunctionName"], template)
    (sweep,) = [
        r for r in resources(template, "AWS::Events::Rule").values() if "ScheduleExpression" in r
    ]
    assert sweep["ScheduleExpression"] == f"rate({OUTBOX_SWEEP_MINUTES} minutes)"
    ((alias_id, _),) = resources(template, "AWS::Lambda::Alias").items()
    assert [t["Arn"] for t in sweep["Targets"]] == [{"Ref": alias_id}]
    assert any(
        p["Principal"] == "events.amazonaws.com"
        for p in resources(template, "AWS::Lambda::Permission").values()
    )


def test_an_index_a_domain_declares_is_created_with_its_table(sns_app: Templates) -> None:
    ((_, table),) = resources(sns_app["tctf-social"], "AWS::DynamoDB::Table").items()
    indexes = {i["IndexName"]: i for i in table["GlobalSecondaryIndexes"]}
    assert indexes["inverted"]["KeySchema"] == [
        {"AttributeName": "SK", "KeyType": "HASH"},
        {"AttributeName": "PK", "KeyType": "RANGE"},
    ]
    assert indexes["inverted"]["Projection"] == {"ProjectionType": "KEYS_ONLY"}


def test_a_stateless_consuming_domain_has_a_ttl_table_and_may_do_no_more_than_its_work(
    tmp_path: Path, greeter: Domain
) -> None:
    from tctf.synth import build_app

    code = tmp_path / "code"
    code.mkdir()
    cdk_app = build_app([greeter], {"greeter": code}, outdir=str(tmp_path / "out"))
    template = cdk_app.synth().get_stack_by_name("tctf-greeter").template
    spec = Topology.from_domains([greeter], app="tctf").idempotency_tables["greeter"]
    ((records, table),) = resources(template, "AWS::DynamoDB::Table").items()

    assert table["TableName"] == spec.name == "tctf-greeter-idempotency"
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert "StreamSpecification" not in table  # no outbox: nothing to relay
    schedules = [
        r for r in resources(template, "AWS::Events::Rule").values() if "ScheduleExpression" in r
    ]
    assert not schedules  # no table of its own: no outbox to sweep
    assert not resources(template, "AWS::ApiGatewayV2::Api")  # no routes: no API

    allowed = partial(_allowed, template)
    assert allowed("sns:Publish") == ["arn:aws:sns:us-east-1:123456789012:tctf-events"]
    queue = "arn:aws:sqs:us-east-1:123456789012:"
    (sendable,) = allowed("sqs:SendMessage")
    # The task queues it declares it sends to, and its own DLQs, by name: nothing else.
    assert sorted(sendable) == [
        f"{queue}tctf-greeter-events-dlq",
        f"{queue}tctf-greeter-tasks",
        f"{queue}tctf-greeter-tasks-dlq",
    ]
    # Its one table is its idempotency records' (docs/decisions/0010), and nothing else.
    assert allowed("dynamodb:PutItem") == [[{"Fn::GetAtt": [records, "Arn"]}]]


def _allowed(template: dict[str, Any], action: str) -> list[Any]:
    policies = resources(template, "AWS::IAM::Policy").values()
    statements = [s for p in policies for s in p["PolicyDocument"]["Statement"]]
    return [
        resolve(s["Resource"])
        for s in statements
        if action in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
    ]


def _stream_record(event_name: str, pk: str, sk: str) -> dict[str, Any]:
    record: dict[str, Any] = json.loads(STREAM_SAMPLE.read_text())["Records"][0]
    record["eventName"] = event_name
    record["dynamodb"]["Keys"] = {"PK": {"S": pk}, "SK": {"S": sk}}
    return record


def test_the_stream_filter_lets_through_exactly_what_the_relay_publishes() -> None:
    """Lambda filters with EventBridge's pattern syntax; our matcher is held to AWS's own."""
    matches = compile_event_pattern(OUTBOX_STREAM_FILTER).match

    assert matches(_stream_record("INSERT", "OUTBOX#user-1", "EVENT#00000000000000000001"))
    assert not matches(_stream_record("REMOVE", "OUTBOX#user-1", "EVENT#00000000000000000001"))
    assert not matches(_stream_record("INSERT", "OUTBOX#user-1", "HEAD"))
    assert not matches(_stream_record("INSERT", "USER#1", "PROFILE"))
    assert not matches(_stream_record("MODIFY", "OUTBOX#user-1", "EVENT#00000000000000000001"))


def test_the_function_environment_is_one_the_lambda_boots_with(
    sns_app: Templates,
    eventbridge_app: Templates,
    topology: Topology,
    moto_endpoint: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Booted on its secrets, provisioned as the stack generates them."""
    import boto3

    secretsmanager = boto3.client(
        "secretsmanager", endpoint_url=moto_endpoint, region_name="us-east-1"
    )
    for templates in (sns_app, eventbridge_app):
        for domain in topology.domains:
            template = templates[stack_name("tctf", domain)]
            (function,) = resources(template, "AWS::Lambda::Function").values()
            parameters = ssm_parameters(template)
            variables = {
                k: resolve(v, parameters) for k, v in function["Environment"]["Variables"].items()
            }
            for name, secret in json.loads(variables.get("TCTF_SECRETS", "{}")).items():
                monkeypatch.setenv(secret_variable(name), "[]")  # the boot's, restored after
                with contextlib.suppress(secretsmanager.exceptions.ResourceExistsException):
                    secretsmanager.create_secret(Name=secret, SecretString="s" * 64)
            env = {
                **variables,
                # Only secrets are read at init; nothing is published or received.
                "AWS_ENDPOINT_URL": moto_endpoint,
                "AWS_DEFAULT_REGION": "us-east-1",
                "AWS_ACCESS_KEY_ID": "x",
                "AWS_SECRET_ACCESS_KEY": "x",
            }
            app = build(env)  # raises ConfigurationError on a topic or bus it does not own
            app.close()
            assert variables["TCTF_DOMAIN"] == domain


def test_a_domain_with_routes_gets_an_http_api_to_its_function(
    sns_app: Templates, topology: Topology
) -> None:
    template = sns_app["tctf-users"]
    routes = {r["RouteKey"] for r in resources(template, "AWS::ApiGatewayV2::Route").values()}
    # $default: the function's router answers unknown paths and methods with problem+json.
    expected = {f"{r.method} {r.path}" for r in topology.routes if r.domain == "users"}
    assert routes == {*expected, "$default"}
    (integration,) = resources(template, "AWS::ApiGatewayV2::Integration").values()
    assert integration["IntegrationType"] == "AWS_PROXY"
    assert integration["PayloadFormatVersion"] == "2.0"
    ((alias_id, _),) = resources(template, "AWS::Lambda::Alias").items()
    assert integration["IntegrationUri"] == {"Ref": alias_id}  # `live`, as releases move it
    # One permission for the API, not one per route (the resource policy's 20 KB limit).
    (permission,) = [
        p
        for p in resources(template, "AWS::Lambda::Permission").values()
        if p["Principal"] == "apigateway.amazonaws.com"
    ]
    assert permission["FunctionName"] == {"Ref": alias_id}
    assert resolve(permission["SourceArn"]).endswith("/*/*")


def test_a_function_serving_http_only_gets_api_gateways_timeout() -> None:
    web = Domain("web")

    @web.get("/ping")
    async def ping(request: Request[None], ctx: Context) -> dict[str, str]:
        return {"pong": "yes"}

    worker = Domain("worker", DomainSettings(visibility_timeout=120))

    @worker.on(Pinged)
    async def note(event: Pinged, ctx: Context) -> None: ...

    topology = Topology.from_domains([web, worker])
    assert function_timeout(topology, "web") == 29
    assert function_timeout(topology, "worker") == 120


def test_the_function_may_publish_send_tasks_and_dead_letter_but_no_more(
    sns_app: Templates, eventbridge_app: Templates
) -> None:
    """A stateful domain's grants (a stateless one's: the greeter test above)."""
    allowed = _allowed
    queue = "arn:aws:sqs:us-east-1:123456789012:"
    assert allowed(eventbridge_app["tctf-users"], "events:PutEvents") == [
        "arn:aws:events:us-east-1:123456789012:event-bus/tctf-bus"
    ]
    users = sns_app["tctf-users"]
    assert allowed(users, "sns:Publish") == ["arn:aws:sns:us-east-1:123456789012:tctf-events"]
    # The relay deletes what it published; parked outbox items go to the outbox DLQ.
    assert allowed(users, "dynamodb:DeleteItem")
    outbox_dlq = queue_ids(users)["tctf-users-outbox-dlq"]
    assert {"Fn::GetAtt": [outbox_dlq, "Arn"]} in allowed(users, "sqs:SendMessage")
    # users sends no task: no task queue is granted to it, messaging_consumers' least of all.
    granted = [str(resolve(r)) for rs in allowed(users, "sqs:SendMessage") for r in _listed(rs)]
    assert not [arn for arn in granted if arn.endswith("-tasks")], granted
    mail = sns_app[MAIL_STACK]
    mail_granted = [str(resolve(r)) for rs in allowed(mail, "sqs:SendMessage") for r in _listed(rs)]
    assert [arn for arn in mail_granted if arn.endswith("-tasks")] == [
        f"{queue}tctf-messaging_consumers-tasks"
    ]


def _listed(resources: Any) -> list[Any]:
    return resources if isinstance(resources, list) else [resources]


def test_a_domain_is_granted_exactly_the_task_queues_it_declares(tmp_path: Path) -> None:
    from tctf.synth import build_app

    class Ship(Task):
        type = "SHIP"
        domain = "warehouse"

    class Bill(Task):
        type = "BILL"
        domain = "billing"

    shop = Domain("shop", sends=[Ship])
    warehouse = Domain("warehouse")
    billing = Domain("billing")

    @warehouse.task(Ship)
    async def ship(task: Ship, ctx: Context) -> None: ...

    @billing.task(Bill)
    async def bill(task: Bill, ctx: Context) -> None: ...

    code = tmp_path / "code"
    code.mkdir()
    domains = [shop, warehouse, billing]
    cdk_app = build_app(domains, {d.name: code for d in domains}, outdir=str(tmp_path / "out"))
    assembly = cdk_app.synth()
    template = assembly.get_stack_by_name("tctf-shop").template
    statements = [
        s
        for policy in resources(template, "AWS::IAM::Policy").values()
        for s in policy["PolicyDocument"]["Statement"]
    ]
    (send,) = [s for s in statements if "sqs:SendMessage" in s["Action"]]
    assert resolve(send["Resource"]) == "arn:aws:sqs:us-east-1:123456789012:tctf-warehouse-tasks"


def test_every_queue_and_the_topic_refuse_requests_without_tls(sns_app: Templates) -> None:
    insecure = {"Bool": {"aws:SecureTransport": "false"}}

    def denied(policies: dict[str, dict[str, Any]], key: str) -> set[str]:
        refused: set[str] = set()
        for policy in policies.values():
            for statement in policy["PolicyDocument"]["Statement"]:
                if statement["Effect"] == "Deny" and statement.get("Condition") == insecure:
                    assert statement["Principal"] in ("*", {"AWS": "*"})
                    assert statement["Action"] in ("sqs:*", "sns:Publish"), statement
                    refused |= {ref["Ref"] for ref in policy[key]}
        return refused

    for name, template in sns_app.items():
        queues = set(resources(template, "AWS::SQS::Queue"))
        assert denied(resources(template, "AWS::SQS::QueuePolicy"), "Queues") == queues, name
    shared = sns_app["tctf-shared"]
    topics = set(resources(shared, "AWS::SNS::Topic"))
    assert topics and denied(resources(shared, "AWS::SNS::TopicPolicy"), "Topics") == topics


def _assert_may_send(template: dict[str, Any], queue_id: str, service: str, source: Any) -> None:
    """The queue's policy lets `service` send to it from `source` (an ARN) only."""
    for policy in resources(template, "AWS::SQS::QueuePolicy").values():
        if {"Ref": queue_id} not in policy["Queues"]:
            continue
        for statement in policy["PolicyDocument"]["Statement"]:
            if statement["Principal"] == {"Service": service} and statement["Action"] == (
                "sqs:SendMessage"
            ):
                assert resolve(statement["Condition"]["ArnEquals"]["aws:SourceArn"]) == source
                return
    raise AssertionError(f"no policy lets {service} send to {queue_id}")


def test_the_templates_pass_cloudformation_s_own_linter(
    sns_app: Templates, eventbridge_app: Templates
) -> None:
    """cfn-lint checks every property against CloudFormation's resource specification."""
    regions = ["us-east-1", "eu-west-1"]
    broken = {"Resources": {"Q": {"Type": "AWS::SQS::Queue", "Properties": {"Delay": 1}}}}
    assert lint_findings({"broken": broken}, regions)  # the linter does look
    for templates in (sns_app, eventbridge_app):
        assert lint_findings(templates, regions) == {}


def test_a_content_filter_reaches_the_subscription_as_a_message_body_policy(
    tmp_path: Path,
) -> None:
    from cfnlint.api import ManualArgs, lint

    from tctf.synth import build_app

    audit = Domain("audit")

    @audit.on(Probed, where={"$or": [{"host": [{"prefix": "db-"}]}, {"region": ["eu-west-1"]}]})
    async def note(event: Probed, ctx: Context) -> None: ...

    topology = Topology.from_domains([audit], app="tctf")
    app = build_app([audit], {"audit": tmp_path}, settings=FunctionSettings(layers=(LAYER,)))
    template = app.synth().get_stack_by_name("tctf-audit").template

    (subscription,) = resources(template, "AWS::SNS::Subscription").values()
    policy, scope = topology.filter_policy("tctf-audit-events")
    assert scope == "MessageBody"
    assert subscription["FilterPolicy"] == policy
    assert subscription["FilterPolicyScope"] == "MessageBody"
    config = ManualArgs(regions=["us-east-1"], ignore_checks=["W3005"])
    assert [str(m) for m in lint(json.dumps(template), config=config)] == []


def _without_jsii_silencing() -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("JSII_SILENCE")}
    return {**environment, "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1"}


def test_synth_prints_no_node_version_banner_as_raw_bytes(tmp_path: Path) -> None:
    argv = ["synth", "-o", str(tmp_path / "cdk.out"), "--no-deps", "--layer", LAYER]
    done = subprocess.run(
        [sys.executable, "-m", "tctf.cli", *argv, "--domain", "users"],
        capture_output=True,
        text=True,
        env=_without_jsii_silencing(),
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "b'!!" not in done.stderr and "!!!!" not in done.stderr


def test_cdk_json_runs_the_app_with_this_python_and_no_virtualenv_on_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    argv = ["--cdk-json", "--no-deps", "--layer", LAYER, "--domain", "users"]
    assert main([*argv, "--transport", "eventbridge"]) == 0
    assert capsys.readouterr().out.strip() == "cdk.json"
    app = json.loads((tmp_path / "cdk.json").read_text())["app"]
    assert shlex.split(app)[:3] == [sys.executable, "-m", "tctf.synth"]
    node = shutil.which("node")
    assert node is not None, "the CDK needs Node.js"
    # As the CDK CLI runs it: through a shell, naming the output directory.
    environment = {"PATH": f"{Path(node).parent}:/usr/bin:/bin", "HOME": str(tmp_path)}
    environment["CDK_OUTDIR"] = str(tmp_path / "cdk.out")
    done = subprocess.run(
        app, shell=True, cwd=tmp_path, env=environment, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    template = json.loads((tmp_path / "cdk.out" / "tctf-shared.template.json").read_text())
    assert "AWS::Events::EventBus" in {r["Type"] for r in template["Resources"].values()}
    assert (tmp_path / "cdk.out" / "tctf-users.template.json").is_file()


def test_cdk_json_already_there_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "cdk.json").write_text('{"app": "mine", "context": {}}')
    assert main(["--cdk-json"]) == 2
    assert 'cdk.json exists: set its "app" to' in capsys.readouterr().err
    assert (tmp_path / "cdk.json").read_text() == '{"app": "mine", "context": {}}'


def test_a_schedule_is_an_eventbridge_scheduler_schedule_sending_its_task_envelope(
    sns_app: Templates,
) -> None:
    from bus.envelope import Envelope
    from domains.billing.contracts import RenewSubscriptions

    billing = sns_app["tctf-billing"]
    schedules = {p["Name"]: p for p in resources(billing, "AWS::Scheduler::Schedule").values()}
    assert sorted(schedules) == ["tctf-billing-dunning", "tctf-billing-renewals"]
    renewals = schedules["tctf-billing-renewals"]
    assert renewals["ScheduleExpression"] == "cron(0 0 * * ? *)"
    assert renewals["ScheduleExpressionTimezone"] == "UTC"
    assert renewals["FlexibleTimeWindow"] == {"Mode": "OFF"}
    target = renewals["Target"]
    tasks, dlq = (
        queue_ids(billing)["tctf-billing-tasks"],
        queue_ids(billing)["tctf-billing-tasks-dlq"],
    )
    assert target["Arn"] == {"Fn::GetAtt": [tasks, "Arn"]}
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [dlq, "Arn"]}}
    # At each firing the scheduler fills in its execution id and time: then it is the
    # envelope the task queue's consumer reads.
    body = (
        target["Input"]
        .replace("<aws.scheduler.execution-id>", "8f3c2a1e-0b7d-4c55-9f2e-1d2c3b4a5e6f")
        .replace("<aws.scheduler.scheduled-time>", "2026-02-01T00:00:00Z")
    )
    envelope = Envelope.decode(body)
    assert (envelope.type, envelope.source, envelope.time) == (
        "RENEW_SUBSCRIPTIONS",
        "aws.scheduler",
        "2026-02-01T00:00:00Z",
    )
    assert RenewSubscriptions.model_validate(envelope.data) == RenewSubscriptions()
    # The role it acts with is the scheduler's alone, and may send to that queue and DLQ.
    role_id = target["RoleArn"]["Fn::GetAtt"][0]
    role = resources(billing, "AWS::IAM::Role")[role_id]
    [trust] = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    policies = [
        p
        for p in resources(billing, "AWS::IAM::Policy").values()
        if p["Roles"] == [{"Ref": role_id}]
    ]
    granted = [
        (s["Action"], s["Resource"]) for p in policies for s in p["PolicyDocument"]["Statement"]
    ]
    assert sorted(str(r) for _, r in granted) == sorted(
        str({"Fn::GetAtt": [q, "Arn"]}) for q in (tasks, dlq)
    )
    assert all("sqs:SendMessage" in a for a, _ in granted)
