"""IAM policies of synthesized templates, evaluated: who may do what to which resource.

Each principal's identity policies are read from the template (`AWS::IAM::Policy` attached
to a role, a role's inline policies), their CloudFormation references resolved to the ARNs
of the resources they name, as CloudFormation would in account 123456789012, us-east-1,
partition aws. `allows` follows IAM's evaluation for identity policies: an explicit Deny
wins, then any Allow whose actions and resources match (`*` and `?` wildcards, actions
case-insensitively). A statement's Condition is taken as met unless it restricts the
`context` the question names: an over-approximation, so "not allowed" is a proof.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

PSEUDO = {
    "AWS::Partition": "aws",
    "AWS::Region": "us-east-1",
    "AWS::AccountId": "123456789012",
    "AWS::URLSuffix": "amazonaws.com",
}
ARN = "arn:aws:{service}:us-east-1:123456789012:{resource}"
#: A stream's label is a time CloudFormation learns at creation: any fixed one serves.
STREAM_LABEL = "2026-01-01T00:00:00.000"


class Unresolvable(AssertionError):
    """A reference the evaluator does not know how to resolve: teach it, do not guess."""


@dataclass(frozen=True, slots=True)
class Resource:
    """A resource of a template, by the ARN its policies would name."""

    stack: str
    logical_id: str
    kind: str
    arn: str


@dataclass(slots=True)
class Principal:
    """A role of a stack and the statements of its identity policies (references resolved)."""

    stack: str
    logical_id: str
    statements: list[dict[str, Any]] = field(default_factory=list)
    managed_policies: list[str] = field(default_factory=list)

    def allows(self, action: str, resource: str, context: Mapping[str, str] | None = None) -> bool:
        """Whether IAM would let this principal do `action` to `resource`."""
        given = context or {}
        matching = [s for s in self.statements if _applies(s, action, resource, given)]
        if any(s["Effect"] == "Deny" for s in matching):
            return False
        return any(s["Effect"] == "Allow" for s in matching)


def arns(templates: Mapping[str, Mapping[str, Any]]) -> dict[tuple[str, str], Resource]:
    """(stack, logical id) -> the resource, for the kinds policies here name."""
    found: dict[tuple[str, str], Resource] = {}
    for stack, template in templates.items():
        for logical, resource in template.get("Resources", {}).items():
            arn = _arn_of(resource["Type"], resource.get("Properties", {}), logical)
            if arn is not None:
                found[stack, logical] = Resource(stack, logical, resource["Type"], arn)
    _parameter_values(templates, found)
    for stack, template in templates.items():
        for logical, resource in template.get("Resources", {}).items():
            if resource["Type"] == "AWS::Lambda::Alias":
                properties = resource["Properties"]
                function = found[stack, properties["FunctionName"]["Ref"]]
                arn = f"{function.arn}:{properties['Name']}"
                found[stack, logical] = Resource(stack, logical, resource["Type"], arn)
    return found


def _parameter_values(
    templates: Mapping[str, Mapping[str, Any]], found: dict[tuple[str, str], Resource]
) -> None:
    """A template parameter read from SSM at deploy time (`AWS::SSM::Parameter::Value`)
    stands for the value the stack writing that parameter gives it: another domain's API id,
    say. Recorded as a resource of kind `AWS::SSM::Parameter::Value`, its `arn` the value."""
    written = {
        resource["Properties"]["Name"]: (stack, resource["Properties"]["Value"])
        for stack, template in templates.items()
        for resource in template.get("Resources", {}).values()
        if resource["Type"] == "AWS::SSM::Parameter"
    }
    for stack, template in templates.items():
        for logical, parameter in template.get("Parameters", {}).items():
            if not str(parameter.get("Type", "")).startswith("AWS::SSM::Parameter::Value"):
                continue
            writer = written.get(parameter.get("Default"))
            if writer is None:
                continue  # not a stack's (CDK's bootstrap version): a policy naming it fails
            value = resolve(writer[1], writer[0], found)
            found[stack, logical] = Resource(stack, logical, "AWS::SSM::Parameter::Value", value)


def _arn_of(kind: str, properties: Mapping[str, Any], logical: str) -> str | None:
    name = {
        "AWS::SQS::Queue": ("sqs", "QueueName", "{}"),
        "AWS::DynamoDB::Table": ("dynamodb", "TableName", "table/{}"),
        "AWS::SNS::Topic": ("sns", "TopicName", "{}"),
        "AWS::Events::EventBus": ("events", "Name", "event-bus/{}"),
        "AWS::Lambda::Function": ("lambda", "FunctionName", "function:{}"),
        "AWS::CloudWatch::Alarm": ("cloudwatch", "AlarmName", "alarm:{}"),
        "AWS::SES::EmailIdentity": ("ses", "EmailIdentity", "identity/{}"),
        "AWS::SES::ConfigurationSet": ("ses", "Name", "configuration-set/{}"),
        # Secrets Manager adds six random characters to a secret's name in its ARN.
        "AWS::SecretsManager::Secret": ("secretsmanager", "Name", "secret:{}-AbCdEf"),
    }.get(kind)
    if kind == "AWS::ApiGatewayV2::Api":
        return f"arn:aws:apigateway:us-east-1::/apis/{logical}"
    if kind == "AWS::IAM::Role":
        return f"arn:aws:iam::123456789012:role/{logical}"
    if name is None:
        return None
    service, key, resource = name
    return ARN.format(service=service, resource=resource.format(properties.get(key, logical)))


def principals(templates: Mapping[str, Mapping[str, Any]]) -> list[Principal]:
    """Every role of every stack with its identity policies' statements."""
    known = arns(templates)
    roles: dict[tuple[str, str], Principal] = {}
    for stack, template in templates.items():
        for logical, resource in template.get("Resources", {}).items():
            if resource["Type"] != "AWS::IAM::Role":
                continue
            properties = resource.get("Properties", {})
            role = roles[stack, logical] = Principal(stack, logical)
            role.managed_policies = [
                str(resolve(p, stack, known)) for p in properties.get("ManagedPolicyArns", [])
            ]
            for policy in properties.get("Policies", []):
                role.statements += _statements(policy["PolicyDocument"], stack, known)
    for stack, template in templates.items():
        for resource in template.get("Resources", {}).values():
            if resource["Type"] != "AWS::IAM::Policy":
                continue
            properties = resource["Properties"]
            for ref in properties.get("Roles", []):
                attached = roles.get((stack, ref["Ref"])) if isinstance(ref, dict) else None
                if attached is None:
                    raise Unresolvable(f"{stack}: policy attached to {ref!r}, not a role here")
                attached.statements += _statements(properties["PolicyDocument"], stack, known)
    return list(roles.values())


def _statements(
    document: Mapping[str, Any], stack: str, known: Mapping[tuple[str, str], Resource]
) -> list[dict[str, Any]]:
    statements = document["Statement"]
    return [
        {
            key: resolve(value, stack, known) if key in ("Resource", "NotResource") else value
            for key, value in statement.items()
        }
        for statement in (statements if isinstance(statements, list) else [statements])
    ]


def resolve(value: Any, stack: str, known: Mapping[tuple[str, str], Resource]) -> Any:
    """`value` with `Fn::Join`, `Fn::GetAtt` and `Ref`s worked out; an unknown one raises."""
    if isinstance(value, list):
        return [resolve(item, stack, known) for item in value]
    if not isinstance(value, dict):
        return value
    if "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(str(resolve(part, stack, known)) for part in parts)
    if set(value) == {"Ref"}:
        if value["Ref"] in PSEUDO:
            return PSEUDO[value["Ref"]]
        target = known.get((stack, value["Ref"]))
        if target is not None and target.kind == "AWS::ApiGatewayV2::Api":
            return target.logical_id  # an API's Ref is its id: the logical id stands for it
        if target is not None and target.kind in (
            "AWS::SNS::Topic",
            "AWS::Events::EventBus",
            "AWS::Lambda::Alias",
            "AWS::SecretsManager::Secret",
            "AWS::SSM::Parameter::Value",
        ):
            return target.arn
        raise Unresolvable(f"{stack}: Ref {value['Ref']} names no resource an ARN stands for")
    if "Fn::GetAtt" in value:
        logical, attribute = value["Fn::GetAtt"]
        target = known.get((stack, logical))
        if target is None:
            raise Unresolvable(f"{stack}: GetAtt of unknown {logical}")
        if attribute == "Arn":
            return target.arn
        if attribute == "ApiEndpoint" and target.kind == "AWS::ApiGatewayV2::Api":
            return f"https://{target.logical_id}.execute-api.us-east-1.amazonaws.com"
        if attribute == "StreamArn" and target.kind == "AWS::DynamoDB::Table":
            return f"{target.arn}/stream/{STREAM_LABEL}"
        raise Unresolvable(f"{stack}: GetAtt {logical}.{attribute}")
    raise Unresolvable(f"{stack}: {value!r}")


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


@cache
def _wildcard(pattern: str) -> re.Pattern[str]:
    """`pattern`'s `*` and `?` as a regular expression, compiled once: a proof asks
    thousands of questions of the same few patterns."""
    return re.compile(fnmatch.translate(pattern))


def _matches(patterns: Iterable[str], value: str, *, ignore_case: bool = False) -> bool:
    if ignore_case:
        value = value.lower()
    return any(
        _wildcard(p.lower() if ignore_case else p).fullmatch(value) is not None for p in patterns
    )


def _applies(
    statement: Mapping[str, Any], action: str, resource: str, context: Mapping[str, str]
) -> bool:
    if "Action" in statement:
        acts = _matches(_listed(statement["Action"]), action, ignore_case=True)
    else:
        acts = not _matches(_listed(statement["NotAction"]), action, ignore_case=True)
    if "Resource" in statement:
        on = _matches(map(str, _listed(statement["Resource"])), resource)
    else:
        on = not _matches(map(str, _listed(statement["NotResource"])), resource)
    return acts and on and _condition_met(statement.get("Condition", {}), context)


def _condition_met(condition: Mapping[str, Mapping[str, Any]], context: Mapping[str, str]) -> bool:
    """Only string equality on keys the question gives is evaluated; any other condition is
    taken as met (allowing more, never less)."""
    for operator, tests in condition.items():
        for key, expected in tests.items():
            if key not in context:
                continue
            if operator != "StringEquals":
                raise Unresolvable(f"condition {operator} on {key}: teach the evaluator")
            if context[key] not in _listed(expected):
                return False
    return True
