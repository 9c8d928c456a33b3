"""What a deployed messaging_consumers and user_message need from `tctf synth`: the SES
sender identity and configuration set, leave to send as that identity only, bounces and
complaints delivered to the domain's function; the issuer's JWK set for `$connect`. What
sign-in needs: the APIs auth_core calls and leave to call their internal routes, the
secrets auth_core, auth_mfa, auth_oauth and communication derive their keys from (and
billing's, which the operator fills), the app's URL. And a stage missing
what they need refused with what to set."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from bus import ConfigurationError
from domains.messaging_consumers.app import domain as messaging_consumers
from domains.user_message.app import domain as user_message
from tctf.stages import UNSTAGED, parse_deploy_config
from tctf.synth import FunctionSettings, build_app, stack_name
from tests.tctf.synthesized import LAYER, MANIFEST, Templates

MAIL_STACK = stack_name("tctf", "messaging_consumers")
SENDER = UNSTAGED.mail_from
APP_URL = "https://app.example.org"
#: The secret each domain declares, the one its keys or checks come from.
DECLARED_SECRETS = {
    "auth_core": "signing",
    "auth_mfa": "sealing",
    "auth_oauth": "signing",
    "communication": "unsubscribe",
    "billing": "webhook",
}
SECRET = "AWS::SecretsManager::Secret"


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
    config = parse_deploy_config({"stages": {"qa": {"app_url": APP_URL, **stage}}})
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


def parameter_read(template: dict[str, Any], logical: str) -> str:
    """The SSM parameter name a template parameter is read from at deploy time."""
    parameter = template["Parameters"][logical]
    assert parameter["Type"] == "AWS::SSM::Parameter::Value<String>"
    return str(parameter["Default"])


def test_sign_in_reaches_the_apis_it_calls_and_only_their_internal_routes_by_iam(
    sns_app: Templates, sns_assembly: Path
) -> None:
    core = sns_app[stack_name("tctf", "auth_core")]
    (function,) = [
        r["Properties"] for r in core["Resources"].values() if r["Type"] == "AWS::Lambda::Function"
    ]
    joined = function["Environment"]["Variables"]["TCTF_DOMAIN_URLS"]["Fn::Join"][1]
    read = {parameter_read(core, part["Ref"]) for part in joined if isinstance(part, dict)}
    assert read == {"/tctf/auth_mfa/api-url", "/tctf/auth_password/api-url"}
    for callee in ("auth_password", "auth_mfa"):
        stack = Template.from_json(sns_app[stack_name("tctf", callee)])
        stack.has_resource_properties("AWS::SSM::Parameter", {"Name": f"/tctf/{callee}/api-url"})
        stack.has_resource_properties("AWS::SSM::Parameter", {"Name": f"/tctf/{callee}/api-id"})
        stack.has_resource_properties(
            "AWS::ApiGatewayV2::Route",
            {"RouteKey": Match.string_like_regexp("/internal/"), "AuthorizationType": "AWS_IAM"},
        )
    manifest = json.loads((sns_assembly / MANIFEST).read_text())["artifacts"]
    after = manifest[stack_name("tctf", "auth_core")]["dependencies"]
    assert {stack_name("tctf", "auth_password"), stack_name("tctf", "auth_mfa")} <= set(after)


def test_only_the_domains_declaring_secrets_get_one_generated_and_read_at_init(
    sns_app: Templates,
) -> None:
    holders = {
        stack: [r["Properties"] for r in t["Resources"].values() if r["Type"] == SECRET]
        for stack, t in sns_app.items()
    }
    assert {stack for stack, found in holders.items() if found} == {
        stack_name("tctf", domain) for domain in DECLARED_SECRETS
    }
    for domain, secret in DECLARED_SECRETS.items():
        name = f"tctf-{domain}-{secret}"
        (properties,) = holders[stack_name("tctf", domain)]
        assert properties["Name"] == name
        assert properties["GenerateSecretString"] == {
            "ExcludePunctuation": True,
            "PasswordLength": 64,
        }
        Template.from_json(sns_app[stack_name("tctf", domain)]).has_resource_properties(
            "AWS::Lambda::Function",
            {
                "Environment": {
                    "Variables": Match.object_like({"TCTF_SECRETS": json.dumps({secret: name})})
                }
            },
        )


def test_a_stage_s_app_url_reaches_the_functions_and_a_stage_without_one_is_refused(
    tmp_path: Path,
) -> None:
    from domains.auth_password.app import domain as auth_password

    Template.from_json(
        stage_template(auth_password, tmp_path, {"app_url": "https://id.example.org"})
    ).has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Environment": {
                "Variables": Match.object_like({"TCTF_APP_URL": "https://id.example.org"})
            }
        },
    )
    config = parse_deploy_config({"stages": {"qa": {"mail_from": "a@example.org"}}})
    with pytest.raises(ConfigurationError, match=r"stage 'qa'.*no `app_url`.*links"):
        build_app(
            [auth_password],
            {"auth_password": tmp_path},
            settings=FunctionSettings(layers=(LAYER,)),
            stage="qa",
            config=config,
        )


def test_a_stage_s_oauth_provider_issues_tokens_as_the_stage_s_app_url(tmp_path: Path) -> None:
    """auth_oauth's issuer is the app's URL (`issuer_from`): without it, a deployed provider
    would name `tctf run`'s address in every token and discovery document."""
    from domains.auth_oauth.app import domain as auth_oauth
    from domains.auth_oauth.app import issuer_from

    template = stage_template(auth_oauth, tmp_path, {})
    (function,) = [
        r["Properties"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::Lambda::Function" and "TCTF_SECRETS" in str(r["Properties"])
    ]
    variables = function["Environment"]["Variables"]
    assert issuer_from({**variables, "AWS_LAMBDA_FUNCTION_NAME": "f"}) == APP_URL
