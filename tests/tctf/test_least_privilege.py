"""Least privilege, proven over the synthesized templates: for every ordered pair of
domains, no role of the one's stack may read or write the other's tables and streams,
receive from, purge or delete from its queues, send to them (but the task queues its
topology says it sends to), invoke, update or reroute its function, pass or assume its
roles, put events on the bus as the other, send e-mail as its SES identity or through its
configuration set, publish to its own topics (its mail notifications), read or change its
secrets, or invoke a route of its API it does not call (`ctx.client`). Every wildcard a
policy holds is one of the few the platform needs.

With the SNS transport the topic is shared and SNS has no condition on what a message says,
so "as the other" is held at the queues: a domain can reach another's queues only through
the topic's subscriptions, whose filters are the other's own.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from bus.topology import Topology
from tctf.config import load_domains
from tctf.stages import UNSTAGED
from tctf.synth import HTTP_API_STAGE, called_operations, stack_name
from tests.iam_policies import ARN, STREAM_LABEL, Principal, Resource, arns, principals
from tests.tctf.synthesized import Templates

APP = "tctf"
#: The address an unstaged synth sends e-mail from.
SENDER = UNSTAGED.mail_from or ""
#: What reads or writes a table's items (on the table and on its indexes).
TABLE_ACTIONS = (
    "dynamodb:GetItem",
    "dynamodb:BatchGetItem",
    "dynamodb:Query",
    "dynamodb:Scan",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:ConditionCheckItem",
    "dynamodb:PartiQLSelect",
    "dynamodb:DeleteTable",
)
STREAM_ACTIONS = ("dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:DescribeStream")
#: What takes a queue's messages away from its owner.
CONSUME_ACTIONS = (
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibility",
    "sqs:PurgeQueue",
    "sqs:SetQueueAttributes",
)

#: What runs, replaces or reroutes a function's code.
FUNCTION_ACTIONS = (
    "lambda:InvokeFunction",
    "lambda:UpdateFunctionCode",
    "lambda:UpdateFunctionConfiguration",
    "lambda:UpdateAlias",
)

#: What reads a secret, or replaces its value.
SECRET_ACTIONS = (
    "secretsmanager:GetSecretValue",
    "secretsmanager:DescribeSecret",
    "secretsmanager:PutSecretValue",
)

#: What sends e-mail as an SES identity, or through a configuration set.
SEND_MAIL_ACTIONS = ("ses:SendEmail", "ses:SendRawEmail", "ses:SendTemplatedEmail")


@pytest.fixture(scope="module")
def topology() -> Topology:
    return Topology.from_domains(load_domains(), app=APP)


def owned(templates: Templates, domain: str) -> list[Resource]:
    stack = stack_name(APP, domain)
    return [r for (s, _), r in arns(templates).items() if s == stack]


def roles(templates: Templates, domain: str) -> list[Principal]:
    return [p for p in principals(templates) if p.stack == stack_name(APP, domain)]


def route_arn(api_id: str, method: str, path: str) -> str:
    """What `execute-api:Invoke` on one route of an HTTP API names."""
    return ARN.format(service="execute-api", resource=f"{api_id}/{HTTP_API_STAGE}/{method}{path}")


def calls(domain: str) -> set[tuple[str, str, str]]:
    """(callee, method, path) of every route `domain`'s code calls."""
    return {(o.domain, o.method, o.path) for o in called_operations(domain)}


def trespasses(templates: Templates, topology: Topology, transport: str) -> list[str]:
    """What each domain's roles may do to another domain's resources, and should not."""
    found = []
    # Read once: resolving every stack's ARNs and policies per pair of domains is quadratic.
    resources, every_role = list(arns(templates).values()), principals(templates)
    stacks = {d: stack_name(APP, d) for d in topology.domains}
    owned_by = {d: [r for r in resources if r.stack == stacks[d]] for d in topology.domains}
    roles_of = {d: [p for p in every_role if p.stack == stacks[d]] for d in topology.domains}
    everyone = [r for d in topology.domains for r in roles_of[d]]
    bus = ARN.format(service="events", resource=f"event-bus/{topology.event_bus}")
    for domain in topology.domains:
        sends_to = set(topology.task_queues_sent_by(domain))
        for other in topology.domains:
            if other == domain:
                continue
            questions: list[tuple[str, str, dict[str, str]]] = []
            for resource in owned_by[other]:
                arn = resource.arn
                if resource.kind == "AWS::DynamoDB::Table":
                    items = (arn, f"{arn}/index/any")
                    questions += [(a, t, {}) for a in TABLE_ACTIONS for t in items]
                    stream = f"{arn}/stream/{STREAM_LABEL}"
                    questions += [(a, stream, {}) for a in STREAM_ACTIONS]
                elif resource.kind == "AWS::SQS::Queue":
                    questions += [(a, arn, {}) for a in CONSUME_ACTIONS]
                    if arn.rpartition(":")[2] not in sends_to:
                        questions.append(("sqs:SendMessage", arn, {}))
                elif resource.kind == "AWS::Lambda::Function":
                    versions = (arn, f"{arn}:any-alias")
                    questions += [(a, f, {}) for a in FUNCTION_ACTIONS for f in versions]
                elif resource.kind == "AWS::IAM::Role":
                    questions += [("iam:PassRole", arn, {}), ("sts:AssumeRole", arn, {})]
                elif resource.kind in ("AWS::SES::EmailIdentity", "AWS::SES::ConfigurationSet"):
                    questions += [(a, arn, {}) for a in SEND_MAIL_ACTIONS]
                elif resource.kind == "AWS::SNS::Topic":
                    questions.append(("sns:Publish", arn, {}))
                elif resource.kind == "AWS::SecretsManager::Secret":
                    questions += [(a, arn, {}) for a in SECRET_ACTIONS]
                elif resource.kind == "AWS::ApiGatewayV2::Api":
                    questions += [
                        ("execute-api:Invoke", route_arn(resource.logical_id, r.method, r.path), {})
                        for r in topology.routes
                        if r.domain == other and (other, r.method, r.path) not in calls(domain)
                    ]
            if transport == "eventbridge":
                questions.append(("events:PutEvents", bus, {"events:source": other}))
            for role in roles_of[domain]:
                found += [
                    f"{domain} ({role.logical_id}) may {action} on {other}'s {arn} {context or ''}"
                    for action, arn, context in questions
                    if role.allows(action, arn, context)
                ]
    assert everyone, "no roles found: the evaluator reads nothing"
    return found


def test_no_domain_may_touch_another_s_tables_queues_function_or_roles(
    sns_app: Templates, eventbridge_app: Templates, topology: Topology
) -> None:
    assert trespasses(sns_app, topology, "sns") == []
    assert trespasses(eventbridge_app, topology, "eventbridge") == []


def test_each_domain_may_do_what_its_topology_needs(
    sns_app: Templates, eventbridge_app: Templates, topology: Topology
) -> None:
    """The evaluator sees the grants there are: without them the test above proves nothing."""
    for domain in topology.domains:
        (function,) = [r for r in roles(sns_app, domain) if r.logical_id.startswith("Function")]
        resources = owned(sns_app, domain)
        for queue in [r for r in resources if r.kind == "AWS::SQS::Queue"]:
            if not queue.arn.endswith("-dlq"):
                assert function.allows("sqs:ReceiveMessage", queue.arn), queue
        for table in [r for r in resources if r.kind == "AWS::DynamoDB::Table"]:
            assert function.allows("dynamodb:PutItem", table.arn), table
            if domain in topology.tables:  # its outbox stream
                stream = f"{table.arn}/stream/{STREAM_LABEL}"
                assert function.allows("dynamodb:GetRecords", stream), table
        for name in topology.task_queues_sent_by(domain):
            assert function.allows("sqs:SendMessage", ARN.format(service="sqs", resource=name))
        topic = ARN.format(service="sns", resource=topology.topic)
        assert function.allows("sns:Publish", topic)
        for secret in (r for r in resources if r.kind == "AWS::SecretsManager::Secret"):
            assert function.allows("secretsmanager:GetSecretValue", secret.arn), secret
            assert not function.allows("secretsmanager:PutSecretValue", secret.arn), secret
        for callee, method, path in calls(domain):
            (api,) = [r for r in owned(sns_app, callee) if r.kind == "AWS::ApiGatewayV2::Api"]
            assert function.allows("execute-api:Invoke", route_arn(api.logical_id, method, path))
        for mail in (r for r in resources if r.kind.startswith("AWS::SES::")):
            assert function.allows("ses:SendEmail", mail.arn, {"ses:FromAddress": SENDER}), mail
            assert not function.allows("ses:SendEmail", mail.arn, {"ses:FromAddress": "x@y.z"})
        (function,) = [
            r for r in roles(eventbridge_app, domain) if r.logical_id.startswith("Function")
        ]
        bus = ARN.format(service="events", resource=f"event-bus/{topology.event_bus}")
        assert function.allows("events:PutEvents", bus, {"events:source": domain})


def test_every_wildcard_is_one_the_platform_needs(sns_app: Templates, topology: Topology) -> None:
    """`*` only for dynamodb:ListStreams (it takes no resource), a domain's own table's
    indexes, the log streams Lambda names in the function's own log group, and the
    connections API Gateway names on the domain's own WebSocket API."""
    for domain in topology.domains:
        own = {r.arn for r in owned(sns_app, domain)}
        log_group = ARN.format(service="logs", resource=f"log-group:/aws/lambda/{APP}-{domain}")
        for role in roles(sns_app, domain):
            assert role.managed_policies == [], role.logical_id
            for statement in role.statements:
                for resource in (
                    statement["Resource"]
                    if isinstance(statement["Resource"], list)
                    else [statement["Resource"]]
                ):
                    if "*" not in resource:
                        continue
                    if resource == "*":
                        assert statement["Action"] == "dynamodb:ListStreams", statement
                    elif resource.endswith("/index/*"):
                        assert resource.removesuffix("/index/*") in own, resource
                    elif resource.endswith("/live/POST/@connections/*"):
                        api = resource.removesuffix("/live/POST/@connections/*")
                        api_id = api.removeprefix(ARN.format(service="execute-api", resource=""))
                        stack = sns_app[stack_name(APP, domain)]["Resources"]
                        assert stack[api_id]["Type"] == "AWS::ApiGatewayV2::Api", resource
                    else:
                        assert resource == f"{log_group}:log-stream:*", resource


def widened(templates: Templates, domain: str, statement: dict[str, Any]) -> Templates:
    """A copy of the templates where `domain`'s function may also do `statement`."""
    changed = copy.deepcopy(templates)
    stack = changed[stack_name(APP, domain)]
    (policy,) = [
        r["Properties"]
        for r in stack["Resources"].values()
        if r["Type"] == "AWS::IAM::Policy"
        and any(ref["Ref"].startswith("FunctionRole") for ref in r["Properties"]["Roles"])
    ]
    policy["PolicyDocument"]["Statement"].append({"Effect": "Allow", **statement})
    return changed


def test_a_widened_policy_is_caught(
    sns_app: Templates, eventbridge_app: Templates, topology: Topology
) -> None:
    first, *others = topology.domains
    with_table = next(d for d in others if d in topology.tables)
    all_tables = {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":dynamodb:*:*:table/*"]]}
    found = trespasses(
        widened(sns_app, first, {"Action": "dynamodb:Get*", "Resource": all_tables}),
        topology,
        "sns",
    )
    assert f"{first} (" in found[0] and f"may dynamodb:GetItem on {with_table}'s" in "".join(found)
    queues = ARN.format(service="sqs", resource=f"{APP}-*")
    found = trespasses(
        widened(sns_app, first, {"Action": "sqs:ReceiveMessage", "Resource": queues}),
        topology,
        "sns",
    )
    assert {f.partition("'s ")[0].rpartition(" ")[2] for f in found} == set(others)
    (mail,) = topology.mail
    sender = next(d for d in topology.domains if d != mail.domain)
    identity = ARN.format(service="ses", resource=f"identity/{SENDER}")
    found = trespasses(
        widened(sns_app, sender, {"Action": "ses:SendEmail", "Resource": identity}),
        topology,
        "sns",
    )
    (trespass,) = found
    assert trespass.startswith(f"{sender} (")
    assert f"may ses:SendEmail on {mail.domain}'s {identity}" in trespass
    anything = ARN.format(service="secretsmanager", resource="secret:*")
    found = trespasses(
        widened(sns_app, first, {"Action": "secretsmanager:GetSecretValue", "Resource": anything}),
        topology,
        "sns",
    )
    owners = {d for d in others if _secrets(d)}
    assert owners and {f.partition("'s ")[0].rpartition(" ")[2] for f in found} == owners
    every_api = ARN.format(service="execute-api", resource="*")
    found = trespasses(
        widened(sns_app, first, {"Action": "execute-api:Invoke", "Resource": every_api}),
        topology,
        "sns",
    )
    assert "may execute-api:Invoke on auth_password's" in "".join(found)
    bus = ARN.format(service="events", resource=f"event-bus/{topology.event_bus}")
    found = trespasses(
        widened(eventbridge_app, first, {"Action": "events:PutEvents", "Resource": bus}),
        topology,
        "eventbridge",
    )
    assert len(found) == len(others)


def _secrets(domain: str) -> tuple[str, ...]:
    (loaded,) = load_domains([domain])
    return loaded.secrets
