"""`tctf synth --stage`: alarms, dashboards, canary releases, provisioned concurrency, stages
and the JWT authorizer, on the real domain set, as the deployment configuration says."""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bus import Context, Domain, Event, Request
from bus.topology import Topology
from tctf.config import load_domains
from tctf.operate import LIVE, BusinessMetric, business_metrics, metrics_recorded_in
from tctf.stages import DeployConfig, load_deploy_config, parse_deploy_config
from tctf.synth import (
    FunctionSettings,
    build_app,
    function_timeout,
    main,
    stack_name,
    token_claims,
)
from tests.tctf.synthesized import lint_findings
from tests.tctf.test_synth import invokes_live

LAYER = "arn:aws:lambda:us-east-1:123456789012:layer:tctf-deps:1"
STAGES = ("dev", "staging", "prod")
#: What a release rolls back on: the new code's health, not a backlog or old dead letters.
RELEASE_ALARMS = (
    "-function-errors",
    "-function-throttles",
    "-function-duration-p99",
    "-http-5xx-rate",
    "-http-latency-p99",
)

Templates = dict[str, dict[str, Any]]


class Pinged(Event):
    type = "PINGED"


@pytest.fixture(scope="module")
def staged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Templates]]:
    """Every stage synthesized once, as `tctf synth --stage` writes it."""
    apps: dict[str, Templates] = {}
    for stage in STAGES:
        out = tmp_path_factory.mktemp(stage)
        assert main(["-o", str(out), "--stage", stage, "--no-deps", "--layer", LAYER]) == 0
        apps[stage] = {
            path.name.removesuffix(".template.json"): json.loads(path.read_text())
            for path in out.glob("*.template.json")
        }
    yield apps


@pytest.fixture(scope="module")
def config() -> DeployConfig:
    return load_deploy_config()


def topology_of(stage: str) -> Topology:
    return Topology.from_domains(load_domains(), app=f"tctf-{stage}")


def resources(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {
        logical: resource.get("Properties", {})
        for logical, resource in template["Resources"].items()
        if resource["Type"] == kind
    }


def alarms(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Alarm name -> properties."""
    return {p["AlarmName"]: p for p in resources(template, "AWS::CloudWatch::Alarm").values()}


def dimension(alarm: dict[str, Any], name: str) -> Any:
    (value,) = [d["Value"] for d in alarm["Dimensions"] if d["Name"] == name]
    return value


def assertions(template: dict[str, Any]) -> Any:
    from aws_cdk.assertions import Template

    return Template.from_json(template)


def dashboard_body(template: dict[str, Any]) -> str:
    """The dashboard's JSON with the region reference left out."""
    (dashboard,) = resources(template, "AWS::CloudWatch::Dashboard").values()
    parts = dashboard["DashboardBody"]["Fn::Join"][1]
    return "".join(p if isinstance(p, str) else "REGION" for p in parts)


def test_every_dlq_of_every_domain_alarms_on_its_first_dead_letter(
    staged: dict[str, Templates],
) -> None:
    from aws_cdk.assertions import Match

    topology = topology_of("prod")
    for domain in topology.domains:
        template = staged["prod"][stack_name(topology.app, domain)]
        dlqs = [q.dlq for q in topology.queues if q.domain == domain]
        dlqs += [topology.outbox_dlqs[domain]] if domain in topology.outbox_dlqs else []
        dlqs += [m.dlq for m in topology.mail if m.domain == domain]
        for dlq in dlqs:
            assertions(template).has_resource_properties(
                "AWS::CloudWatch::Alarm",
                {
                    "AlarmName": f"{dlq}-depth",
                    "Namespace": "AWS/SQS",
                    "MetricName": "ApproximateNumberOfMessagesVisible",
                    "Dimensions": [{"Name": "QueueName", "Value": dlq}],
                    "Threshold": 0,
                    "ComparisonOperator": "GreaterThanThreshold",
                    "EvaluationPeriods": 1,
                    "AlarmActions": Match.any_value(),
                },
            )


def test_queues_functions_apis_and_streams_alarm_at_thresholds_derived_from_the_domain(
    staged: dict[str, Templates],
) -> None:
    topology = topology_of("prod")
    for domain in topology.domains:
        template = staged["prod"][stack_name(topology.app, domain)]
        found = alarms(template)
        prefix = f"{topology.app}-{domain}"
        function = {"Ref": _only(template, "AWS::Lambda::Function")}
        for spec in (q for q in topology.queues if q.domain == domain):
            age = found[f"{spec.name}-oldest-message"]
            assert age["MetricName"] == "ApproximateAgeOfOldestMessage"
            assert dimension(age, "QueueName") == spec.name
            # A record failing every delivery reaches this age before its DLQ takes it.
            assert age["Threshold"] == max(60, spec.visibility_timeout * spec.max_receive_count)
        for metric in ("Errors", "Throttles"):
            alarm = found[f"{prefix}-function-{metric.lower()}"]
            assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/Lambda", metric)
            assert dimension(alarm, "Resource") == {"Fn::Join": ["", [function, f":{LIVE}"]]}
            assert alarm["Threshold"] == 0
        duration = found[f"{prefix}-function-duration-p99"]
        assert duration["ExtendedStatistic"] == "p99"
        assert duration["Threshold"] == function_timeout(topology, domain) * 1000 * 0.8
        has_routes = any(r.domain == domain for r in topology.routes)
        assert (f"{prefix}-http-5xx-rate" in found) is has_routes
        assert (f"{prefix}-http-latency-p99" in found) is has_routes
        iterator = found.get(f"{prefix}-outbox-iterator-age")
        assert (iterator is not None) is (domain in topology.tables)
        if iterator is not None:
            assert iterator["MetricName"] == "IteratorAge"
            assert iterator["Threshold"] == 60_000
    users = alarms(staged["prod"][stack_name(topology.app, "users")])
    (rate,) = [m for m in users["tctf-prod-users-http-5xx-rate"]["Metrics"] if "Expression" in m]
    assert rate["Expression"] == "IF(requests > 0, 100 * errors / requests, 0)"
    assert users["tctf-prod-users-http-5xx-rate"]["Threshold"] == 1


def test_thresholds_and_traffic_shifts_come_from_the_configuration(tmp_path: Path) -> None:
    audit = Domain("audit")

    @audit.on(Pinged)
    async def note(event: Pinged, ctx: Context) -> None: ...

    config = parse_deploy_config(
        {
            "stages": {"qa": {"alarm_actions": False, "app_url": "https://app.example.com"}},
            "defaults": {"alarms": {"oldest_message_age_s": 42, "function_errors": 5}},
            "domains": {"audit": {"deployment": "Linear10PercentEvery1Minute"}},
        }
    )
    app = build_app(
        [audit],
        {"audit": tmp_path},
        settings=FunctionSettings(layers=(LAYER,)),
        stage="qa",
        config=config,
    )
    template = app.synth().get_stack_by_name("tctf-qa-audit").template
    found = alarms(template)
    assert found["tctf-qa-audit-events-oldest-message"]["Threshold"] == 42
    # The domain's own table keeps the defaults it does not override.
    assert found["tctf-qa-audit-function-errors"]["Threshold"] == 4
    assert all("AlarmActions" not in a for a in found.values())
    (group,) = resources(template, "AWS::CodeDeploy::DeploymentGroup").values()
    assert group["DeploymentConfigName"] == "CodeDeployDefault.LambdaLinear10PercentEvery1Minute"


def test_a_wrong_configuration_is_refused_with_what_is_wrong(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "deploy.toml"
    bad.write_text('[domains.billing]\ndeployment = "Canary99Percent"\nwarm = 3\n')
    assert main(["-o", str(tmp_path), "--no-deps", "--layer", LAYER, "--config", str(bad)]) == 2
    error = capsys.readouterr().err
    assert "domains.billing.deployment" in error and "domains.billing.warm" in error
    assert main(["-o", str(tmp_path), "--no-deps", "--layer", LAYER, "--stage", "qa"]) == 2
    assert "no stage 'qa'" in capsys.readouterr().err


def test_each_stage_alarms_into_its_own_topic_dev_only_shows_them(
    staged: dict[str, Templates],
) -> None:
    for stage in STAGES:
        app = f"tctf-{stage}"
        shared = staged[stage][f"{app}-shared"]
        topics = [p["TopicName"] for p in resources(shared, "AWS::SNS::Topic").values()]
        notify = stage != "dev"
        assert (f"{app}-alarms" in topics) is notify
        for name, template in staged[stage].items():
            for alarm in alarms(template).values():
                actions = alarm.get("AlarmActions", [])
                assert bool(actions) is notify, (name, alarm["AlarmName"])
                for action in actions:
                    assert action["Fn::Join"][1][-1] == f":{app}-alarms"


def test_a_domain_dashboard_graphs_its_business_metrics_handlers_queues_and_dlqs(
    staged: dict[str, Templates],
) -> None:
    topology = topology_of("staging")
    assert [m.name for m in business_metrics("users")] == ["UsersSignedUp"]
    for domain in topology.domains:
        template = staged["staging"][stack_name(topology.app, domain)]
        assertions(template).has_resource_properties(
            "AWS::CloudWatch::Dashboard", {"DashboardName": f"{topology.app}-{domain}"}
        )
        widgets = json.loads(dashboard_body(template))["widgets"]
        metrics = [m for w in widgets for m in w["properties"].get("metrics", [])]
        for metric in business_metrics(domain):
            assert [topology.app, metric.name, "service", domain] in [m[:4] for m in metrics]
        for sub in (s for s in topology.subscriptions if s.domain == domain):
            for outcome in ("Processed", "Failed", "Parked", "Skipped"):
                key = [topology.app, outcome, "handler", sub.handler, "service", domain]
                assert key in [m[:6] for m in metrics], (domain, sub.handler, outcome)
        queues = {m[3] for m in metrics if m[0] == "AWS/SQS"}
        assert {q.name for q in topology.queues if q.domain == domain} <= queues
        assert {q.dlq for q in topology.queues if q.domain == domain} <= queues
        (status,) = [w for w in widgets if w["type"] == "alarm"]
        assert len(status["properties"]["alarms"]) == len(alarms(template))


def test_business_metrics_are_the_literal_names_the_code_records() -> None:
    source = """
async def handle(event, ctx):
    ctx.metrics.add("OrdersPlaced")
    ctx.metrics.record("BasketValue", 12.5, "None")
    ctx.metrics.add(f"Orders{event.kind}")  # computed: no graph can name it
    basket.add("NotAMetric")
    self.metrics.add("OrdersPlaced", 2)
"""
    found = sorted(metrics_recorded_in(source), key=lambda m: m.name)
    assert found == [
        BusinessMetric("BasketValue", "record"),
        BusinessMetric("OrdersPlaced", "add"),
        BusinessMetric("OrdersPlaced", "add"),
    ]
    assert [m.statistic for m in found] == ["p99", "Sum", "Sum"]
    assert business_metrics("no_such_domain") == ()


async def test_what_a_domain_records_at_run_time_is_what_its_dashboard_graphs() -> None:
    from tests.domains.identity import identity

    async with identity() as idp:
        answer = await idp.call("POST", "/users", {"email": "ada@example.com", "name": "Ada"})
        await idp.h.settle()
        series = idp.h.runtime.dispatchers["users"].metrics.drain()
    assert answer.status == 201
    # The handler's own metrics carry only the domain's dimension; the platform's, a handler.
    recorded = {s.name for s in series if dict(s.dimensions).keys() == {"service"}}
    assert recorded == {m.name for m in business_metrics("users")} == {"UsersSignedUp"}


def test_the_platform_dashboard_shows_every_domain(staged: dict[str, Templates]) -> None:
    topology = topology_of("prod")
    body = dashboard_body(staged["prod"]["tctf-prod-shared"])
    for domain in topology.domains:
        assert f'service=\\"{domain}\\"' in body
        assert f"tctf-prod-{domain}:live" in body
    for spec in topology.queues:
        assert f'"{spec.dlq}"' in body


def test_every_function_is_released_behind_live_by_codedeploy_rolling_back_on_alarms(
    staged: dict[str, Templates], config: DeployConfig
) -> None:
    from aws_cdk.assertions import Match

    for stage in STAGES:
        topology = topology_of(stage)
        for domain in topology.domains:
            template = staged[stage][stack_name(topology.app, domain)]
            ((alias_id, alias),) = resources(template, "AWS::Lambda::Alias").items()
            assert alias["Name"] == LIVE
            assert "Fn::GetAtt" in alias["FunctionVersion"]  # the published version
            for mapping in resources(template, "AWS::Lambda::EventSourceMapping").values():
                assert invokes_live(mapping["FunctionName"], template)
            for integration in resources(template, "AWS::ApiGatewayV2::Integration").values():
                uri = integration["IntegrationUri"]
                # HTTP APIs name the alias; a WebSocket API's Lambda URI holds it.
                assert uri == {"Ref": alias_id} or {"Ref": alias_id} in uri["Fn::Join"][1]
            deployment = config.stage(stage).deployment or config.operations(domain).deployment
            release = {name for name in alarms(template) if name.endswith(RELEASE_ALARMS)}
            group = assertions(template)
            group.has_resource_properties(
                "AWS::CodeDeploy::DeploymentGroup",
                {
                    "DeploymentConfigName": f"CodeDeployDefault.Lambda{deployment}",
                    "AutoRollbackConfiguration": {
                        "Enabled": True,
                        "Events": Match.array_with(["DEPLOYMENT_STOP_ON_ALARM"]),
                    },
                    "AlarmConfiguration": {"Enabled": True, "Alarms": Match.any_value()},
                },
            )
            (props,) = resources(template, "AWS::CodeDeploy::DeploymentGroup").values()
            ids = {
                p["AlarmName"]: k for k, p in resources(template, "AWS::CloudWatch::Alarm").items()
            }
            rolled_back_on = {a["Name"]["Ref"] for a in props["AlarmConfiguration"]["Alarms"]}
            assert rolled_back_on == {ids[n] for n in release}, (stage, domain)
            assert template["Resources"][alias_id]["UpdatePolicy"]["CodeDeployLambdaAliasUpdate"]
            (application,) = resources(template, "AWS::CodeDeploy::Application").values()
            assert application["ApplicationName"] == props["DeploymentGroupName"]
            assert props["DeploymentGroupName"] == f"{topology.app}-{domain}"


def test_billing_releases_as_configured_and_the_rest_as_the_default(
    staged: dict[str, Templates],
) -> None:
    for domain, shift in (
        ("billing", "Canary10Percent10Minutes"),
        ("users", "Canary10Percent5Minutes"),
    ):
        (group,) = resources(
            staged["prod"][f"tctf-prod-{domain}"], "AWS::CodeDeploy::DeploymentGroup"
        ).values()
        assert group["DeploymentConfigName"] == f"CodeDeployDefault.Lambda{shift}"
    (dev,) = resources(
        staged["dev"]["tctf-dev-billing"], "AWS::CodeDeploy::DeploymentGroup"
    ).values()
    assert dev["DeploymentConfigName"] == "CodeDeployDefault.LambdaAllAtOnce"


def test_provisioned_concurrency_is_configured_per_domain_and_given_in_prod_only(
    staged: dict[str, Templates], config: DeployConfig
) -> None:
    warm = {d for d, ops in config.domains.items() if ops.provisioned_concurrency}
    assert {"auth_core", "billing"} <= warm
    for stage in STAGES:
        topology = topology_of(stage)
        for domain in topology.domains:
            template = staged[stage][stack_name(topology.app, domain)]
            (alias,) = resources(template, "AWS::Lambda::Alias").values()
            given = alias.get("ProvisionedConcurrencyConfig")
            if stage == "prod" and domain in warm:
                wanted = config.operations(domain).provisioned_concurrency
                assert given == {"ProvisionedConcurrentExecutions": wanted}
            else:
                assert given is None, (stage, domain)


def test_stages_differ_in_names_retention_removal_and_recovery(
    staged: dict[str, Templates], config: DeployConfig
) -> None:
    for stage in STAGES:
        settings = config.stage(stage)
        topology = topology_of(stage)
        assert set(staged[stage]) == {
            f"tctf-{stage}-shared",
            *(stack_name(topology.app, d) for d in topology.domains),
        }
        deletion = "Retain" if settings.retain_data else "Delete"
        for domain in topology.domains:
            template = staged[stage][stack_name(topology.app, domain)]
            assertions(template).has_resource(
                "AWS::Logs::LogGroup",
                {
                    "Properties": {
                        "LogGroupName": f"/aws/lambda/tctf-{stage}-{domain}",
                        "RetentionInDays": settings.log_retention_days,
                    },
                    "DeletionPolicy": deletion,
                },
            )
            assertions(template).has_resource_properties(
                "AWS::Lambda::Function",
                {
                    "FunctionName": f"tctf-{stage}-{domain}",
                    "LoggingConfig": {"LogGroup": {"Ref": _only(template, "AWS::Logs::LogGroup")}},
                },
            )
            if domain in topology.tables:
                assertions(template).has_resource(
                    "AWS::DynamoDB::Table",
                    {
                        "Properties": {
                            "TableName": topology.tables[domain].name,
                            "PointInTimeRecoverySpecification": {
                                "PointInTimeRecoveryEnabled": settings.point_in_time_recovery
                            },
                        },
                        "DeletionPolicy": deletion,
                    },
                )
    assert config.stage("dev").log_retention_days < config.stage("prod").log_retention_days
    assert not config.stage("dev").retain_data and config.stage("prod").retain_data


def _only(template: dict[str, Any], kind: str) -> str:
    (logical,) = resources(template, kind)
    return logical


def test_signed_in_routes_are_behind_a_jwt_authorizer_with_the_stage_s_issuer(
    staged: dict[str, Templates], config: DeployConfig
) -> None:
    topology = topology_of("prod")
    issuer, audience = token_claims(topology, config.stage("prod"))
    assert issuer == config.stage("prod").token_issuer
    protected_domains = {r.domain for r in topology.routes if r.signed_in and not r.internal}
    assert protected_domains
    for domain in {r.domain for r in topology.routes}:
        template = staged["prod"][stack_name(topology.app, domain)]
        authorizers = resources(template, "AWS::ApiGatewayV2::Authorizer")
        if domain not in protected_domains:
            # Public and INTERNAL routes only (messaging_consumers): no JWT authorizer.
            assert authorizers == {}, domain
            authorizer_id = None
        else:
            ((authorizer_id, authorizer),) = authorizers.items()
            assert authorizer["AuthorizerType"] == "JWT"
            assert authorizer["JwtConfiguration"] == {"Issuer": issuer, "Audience": [audience]}
        routes = {
            p["RouteKey"]: p for p in resources(template, "AWS::ApiGatewayV2::Route").values()
        }
        for route in (r for r in topology.routes if r.domain == domain):
            declared = routes[f"{route.method} {route.path}"]
            if route.internal:
                assert declared["AuthorizationType"] == "AWS_IAM", route
                assert "AuthorizerId" not in declared
            elif route.signed_in:
                assert declared["AuthorizationType"] == "JWT", route
                assert declared["AuthorizerId"] == {"Ref": authorizer_id}
            else:
                assert declared.get("AuthorizationType", "NONE") == "NONE", route
                assert "AuthorizerId" not in declared


def test_a_stage_s_issuer_reaches_the_authorizer_and_the_function_that_signs(
    tmp_path: Path,
) -> None:
    from bus.access import SIGNED_IN

    shop = Domain("shop")

    @shop.get("/orders", access=SIGNED_IN)
    async def orders(request: Request[None], ctx: Context) -> dict[str, str]:
        return {}

    config = parse_deploy_config(
        {
            "stages": {
                "prod": {
                    "app_url": "https://app.example.com",
                    "token_issuer": "https://auth.example.com",
                    "token_audience": "https://api.example.com",
                }
            }
        }
    )
    app = build_app(
        [shop],
        {"shop": tmp_path},
        settings=FunctionSettings(layers=(LAYER,)),
        stage="prod",
        config=config,
    )
    template = app.synth().get_stack_by_name("tctf-prod-shop").template
    (authorizer,) = resources(template, "AWS::ApiGatewayV2::Authorizer").values()
    assert authorizer["JwtConfiguration"] == {
        "Issuer": "https://auth.example.com",
        "Audience": ["https://api.example.com"],
    }
    (function,) = resources(template, "AWS::Lambda::Function").values()
    variables = function["Environment"]["Variables"]
    assert variables["TCTF_TOKEN_ISSUER"] == "https://auth.example.com"
    assert variables["TCTF_TOKEN_AUDIENCE"] == "https://api.example.com"


def test_every_template_of_every_stage_passes_cloudformation_s_linter(
    staged: dict[str, Templates],
) -> None:
    every_template = {name: t for stage in STAGES for name, t in staged[stage].items()}
    assert len(every_template) == sum(len(staged[stage]) for stage in STAGES)  # names differ
    assert lint_findings(every_template, ["us-east-1"]) == {}


def test_cdk_json_keeps_the_stage_and_the_configuration_it_was_written_with(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "deploy.toml"
    config.write_text("[stages.qa]\nalarm_actions = false\n")
    argv = ["--cdk-json", "--no-deps", "--layer", LAYER, "--stage", "qa", "--config", "deploy.toml"]
    assert main(argv) == 0
    app = shlex.split(json.loads((tmp_path / "cdk.json").read_text())["app"])
    assert app[app.index("--stage") + 1] == "qa"
    # Resolved: the CDK CLI may run the app from another directory.
    assert app[app.index("--config") + 1] == str(config.resolve())
