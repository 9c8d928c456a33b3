"""cdk-nag's AwsSolutions rules on every stack `tctf synth` builds, and the findings the
platform accepts, each with its reason (docs/deploy.md lists them too).

`check(app)` adds the rule pack as an Aspect and the accepted findings as suppressions on
every stack; `findings(assembly)` lists what the rules still report once synthesized, and
`tctf synth` fails on any (status 2, each finding named).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import aws_cdk as cdk
    from aws_cdk import cx_api

#: The rule pack's prefix in the messages it attaches to constructs.
RULES = "AwsSolutions-"


@dataclass(frozen=True, slots=True)
class Accepted:
    """A finding the platform accepts on every stack, and why."""

    rule: str
    reason: str
    #: Only these findings of the rule (cdk-nag's `appliesTo`: literal or `{"regex": ...}`).
    applies_to: tuple[Any, ...] = ()


ACCEPTED = (
    Accepted(
        "AwsSolutions-L1",
        "Functions run python3.11: `tctf package` compiles their bytecode and resolves the "
        "locked wheels for that runtime; moving runtimes is a change of the lock, not of a stack.",
    ),
    Accepted(
        "AwsSolutions-SQS3",
        "The outbox DLQ is a dead-letter queue the outbox relay writes itself (records it "
        "cannot publish), not the target of a redrive policy, which is what the rule looks for.",
    ),
    Accepted(
        "AwsSolutions-APIG4",
        "Every route reaches the function, whose router checks the access the route declares "
        "(adapters/http/authorizer.py) as `tctf run` does; public routes (sign-in, JWKS, "
        "webhooks) are public by design.",
    ),
    Accepted(
        "AwsSolutions-APIG1",
        "Every request, $default included, reaches the function, which logs each one with its "
        "correlation id and outcome (docs/observability.md); a stage access log would repeat it.",
    ),
    Accepted(
        "AwsSolutions-DDB3",
        "Only on idempotency tables: records expire within a day (their TTL) and rebuild "
        "themselves, so point-in-time recovery would restore nothing of value. Domain tables "
        "have it.",
    ),
    Accepted(
        "AwsSolutions-SMG4",
        "A domain's secret is random text its keys are derived from; a new value is put by "
        "hand (`aws secretsmanager put-secret-value`), and the previous one keeps verifying "
        "and opening what it made (AWSPREVIOUS, read at init), as docs/deploy.md's "
        "'Secrets' describes: a rotation function would add nothing but a schedule.",
    ),
    Accepted(
        "AwsSolutions-IAM5",
        "The function reads its own table's indexes (`<table>/index/*`) and its own stream "
        "(`dynamodb:ListStreams` takes no resource, hence `*`), and writes the log streams "
        "Lambda names at run time in its own log group (`log-stream:*`), and posts to the "
        "connections API Gateway names at run time on its own WebSocket API "
        "(`<api>/live/POST/@connections/*`); "
        "tests/tctf/test_least_privilege.py holds every wildcard to these.",
        applies_to=(
            "Resource::*",
            {
                "regex": "/^Resource::arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:"
                "log-group:\\/aws\\/lambda\\/[a-z0-9_-]+:log-stream:\\*$/g"
            },
            {"regex": "/^Resource::<(Table|IdempotencyTable)[0-9A-F]{8}\\.Arn>\\/index\\/\\*$/g"},
            {
                "regex": "/^Resource::arn:<AWS::Partition>:execute-api:<AWS::Region>:"
                "<AWS::AccountId>:<WebSocketApi>\\/live\\/POST\\/@connections\\/\\*$/g"
            },
        ),
    ),
)


def check(app: cdk.App) -> None:
    """Run the AwsSolutions rules over every construct of `app` when it synthesizes, the
    accepted findings suppressed with their reasons on each of its stacks."""
    import aws_cdk as cdk
    from cdk_nag import AwsSolutionsChecks, NagPackSuppression, NagSuppressions

    cdk.Aspects.of(app).add(AwsSolutionsChecks())
    suppressions = [
        NagPackSuppression(id=a.rule, reason=a.reason, applies_to=list(a.applies_to) or None)
        for a in ACCEPTED
    ]
    for child in app.node.children:
        if isinstance(child, cdk.Stack):
            NagSuppressions.add_stack_suppressions(child, suppressions)


def findings(assembly: cx_api.CloudAssembly) -> list[str]:
    """Every AwsSolutions error or warning left in the assembly: `path: rule: message`."""
    found: list[str] = []
    for stack in assembly.stacks:
        for message in stack.messages:
            data = str(message.entry.data)
            if str(message.level.value).lower() in ("error", "warning") and data.startswith(RULES):
                found.append(f"{message.id}: {data.splitlines()[0]}")
    return found
