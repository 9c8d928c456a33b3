"""What a deployed messaging_consumers and user_message need from `tctf synth`: the SES
sender identity and configuration set, leave to send as that identity only, bounces and
complaints delivered to the domain's function; the issuer's JWK set for `$connect`. And a
stage missing what they need refused with what to set."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from bus import ConfigurationError
from domains.messaging_consumers.app import domain as messaging_consumers
from domains.user_message.app import domain as user_message
from tctf.stages import UNSTAGED, parse_deploy_config
from tctf.synth import FunctionSettings, build_app, stack_name
from tests.tctf.synthesized import LAYER, Templates

MAIL_STACK = stack_name("tctf", "messaging_consumers")
SENDER = UNSTAGED.mail_from


def template(app: Templates, stack: str) -> Template:
    return Template.from_json(app[stack])


def ses_arn(resource: str) -> dict[str, Any]:
    return {
        "Fn::Join": [
            "",
            [
                "arn:",
                {"Ref": "AWS::Partition"},
                ":ses:",
                {"Ref": "AWS::Region"},
                ":",
                {"Ref": "AWS::AccountId"},
                f":{resource}",
            ],
        ]
    }


def test_the_mail_domain_gets_its_identity_and_configuration_set(sns_app: Templates) -> None:
    mail = template(sns_app, MAIL_STACK)
    mail.has_resource_properties("AWS::SES::ConfigurationSet", {"Name": "tctf-messaging_consumers"})
    mail.has_resource_properties(
        "AWS::SES::EmailIdentity",
        {
            "EmailIdentity": SENDER,
            "ConfigurationSetAttributes": {"ConfigurationSetName": Match.any_value()},
        },
    )
    mail.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Environment": {
                "Variables": Match.object_like(
                    {
                        "TCTF_MAIL_FROM": SENDER,
                        "TCTF_SES_CONFIGURATION_SET": "tctf-messaging_consumers",
                    }
                )
            }
        },
    )


def test_only_the_mail_domain_may_send_and_only_as_its_sender(sns_app: Templates) -> None:
    mail = template(sns_app, MAIL_STACK)
    mail.has_resource_properties(
        "AWS::IAM::Policy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        {
                            "Action": "ses:SendEmail",
                            "Effect": "Allow",
                            "Condition": {"StringEquals": {"ses:FromAddress": SENDER}},
                            "Resource": [
                                ses_arn(f"identity/{SENDER}"),
                                ses_arn("configuration-set/tctf-messaging_consumers"),
                            ],
                        }
                    ]
                )
            }
        },
    )
    for name, other in sns_app.items():
        if name != MAIL_STACK:
            assert "ses:" not in str(other), name
            assert "AWS::SES::" not in str(other), name


def test_bounces_and_complaints_reach_the_function_through_its_own_topic(
    sns_app: Templates,
) -> None:
    mail = template(sns_app, MAIL_STACK)
    (topic,) = mail.find_resources(
        "AWS::SNS::Topic", {"Properties": {"TopicName": "tctf-messaging_consumers-mail-events"}}
    )
    mail.has_resource_properties(
        "AWS::SES::ConfigurationSetEventDestination",
        {
            "EventDestination": {
                "Enabled": True,
                "MatchingEventTypes": ["bounce", "complaint"],
                "SnsDestination": {"TopicARN": {"Ref": topic}},
            }
        },
    )
    # Only SES, sending through this domain's configuration set, may publish there.
    mail.has_resource_properties(
        "AWS::SNS::TopicPolicy",
        {
            "Topics": [{"Ref": topic}],
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Action": "sns:Publish",
                                "Effect": "Allow",
                                "Principal": {"Service": "ses.amazonaws.com"},
                                "Condition": Match.object_like(
                                    {
                                        "ArnEquals": {
                                            "aws:SourceArn": ses_arn(
                                                "configuration-set/tctf-messaging_consumers"
                                            )
                                        }
                                    }
                                ),
                            }
                        )
                    ]
                )
            },
        },
    )
    (live,) = mail.find_resources("AWS::Lambda::Alias")
    (function,) = mail.find_resources("AWS::Lambda::Function")
    mail.has_resource_properties(
        "AWS::SNS::Subscription",
        {
            "Protocol": "lambda",
            "TopicArn": {"Ref": topic},
            "Endpoint": {
                "Fn::Sub": ["${Function}:live", {"Function": {"Fn::GetAtt": [function, "Arn"]}}]
            },
        },
    )
    # Nothing lost: what SNS cannot deliver, and what the function keeps failing, waits.
    (dlq,) = mail.find_resources(
        "AWS::SQS::Queue",
        {"Properties": {"QueueName": "tctf-messaging_consumers-mail-events-dlq"}},
    )
    mail.has_resource_properties(
        "AWS::SNS::Subscription",
        {
            "TopicArn": {"Ref": topic},
            "RedrivePolicy": {"deadLetterTargetArn": {"Fn::GetAtt": [dlq, "Arn"]}},
        },
    )
    mail.has_resource_properties(
        "AWS::Lambda::EventInvokeConfig",
        {
            "DestinationConfig": {"OnFailure": {"Destination": {"Fn::GetAtt": [dlq, "Arn"]}}},
            "MaximumRetryAttempts": 2,
        },
    )
    mail.has_resource_properties(
        "AWS::Lambda::Permission",
        {
            "Action": "lambda:InvokeFunction",
            "FunctionName": {"Ref": live},
            "Principal": "sns.amazonaws.com",
            "SourceArn": {"Ref": topic},
        },
    )


def stage_template(domain: Any, tmp_path: Path, stage: dict[str, Any]) -> dict[str, Any]:
    config = parse_deploy_config({"stages": {"qa": stage}})
    app = build_app(
        [domain],
        {domain.name: tmp_path},
        settings=FunctionSettings(layers=(LAYER,)),
        stage="qa",
        config=config,
    )
    stack = stack_name("tctf-qa", domain.name)
    result: dict[str, Any] = app.synth().get_stack_by_name(stack).template
    return result


def test_a_stage_sends_as_its_configured_sender_and_identity(tmp_path: Path) -> None:
    mail = Template.from_json(
        stage_template(
            messaging_consumers,
            tmp_path,
            {"mail_from": "hello@mail.example.org", "mail_identity": "mail.example.org"},
        )
    )
    mail.has_resource_properties("AWS::SES::EmailIdentity", {"EmailIdentity": "mail.example.org"})
    mail.has_resource_properties(
        "AWS::IAM::Policy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Action": "ses:SendEmail",
                                "Condition": {
                                    "StringEquals": {"ses:FromAddress": "hello@mail.example.org"}
                                },
                            }
                        )
                    ]
                )
            }
        },
    )


def test_a_stage_without_a_sender_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"stage 'qa'.*messaging_consumers.*mail_from"):
        stage_template(messaging_consumers, tmp_path, {})


def test_the_websocket_function_reads_the_keys_of_the_stage_s_issuer(tmp_path: Path) -> None:
    live = Template.from_json(
        stage_template(user_message, tmp_path, {"token_issuer": "https://auth.example.org/"})
    )
    live.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Environment": {
                "Variables": Match.object_like(
                    {
                        "TCTF_TOKEN_ISSUER": "https://auth.example.org/",
                        "TCTF_TOKEN_JWKS_URL": "https://auth.example.org/auth/jwks.json",
                    }
                )
            }
        },
    )
    explicit = Template.from_json(
        stage_template(
            user_message,
            tmp_path,
            {"token_issuer": "urn:x", "token_jwks_url": "https://keys.example.org/jwks.json"},
        )
    )
    explicit.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Environment": {
                "Variables": Match.object_like(
                    {"TCTF_TOKEN_JWKS_URL": "https://keys.example.org/jwks.json"}
                )
            }
        },
    )


@pytest.mark.parametrize("stage", [{}, {"token_issuer": "urn:tctf:auth"}])
def test_a_stage_with_a_websocket_and_no_issuer_url_is_refused(
    tmp_path: Path, stage: dict[str, Any]
) -> None:
    with pytest.raises(ConfigurationError, match=r"stage 'qa'.*user_message.*token_issuer"):
        stage_template(user_message, tmp_path, stage)
