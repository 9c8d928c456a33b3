"""Operating what `tctf synth` deploys: alarms, dashboards, canary releases, the authorizer.

Everything here is derived from the `Topology` and the deployment configuration
(`tctf.stages`), so a new domain's stack gets its alarms and dashboard without a line
naming it. Resources are addressed by the names the topology gives them (queues, DLQs,
the function), so no construct is passed between stacks.

- `release`: the function published as a version behind the `live` alias, which every
  event source and the HTTP integration invoke; CodeDeploy shifts `live` to a new version
  as configured and rolls back when one of the domain's release alarms fires.
- `DomainWatch`: the domain's alarms and its dashboard.
- `platform_dashboard`, `alarm_topic`: the shared stack's dashboard and the stage's topic.
- `business_metrics`: the metric names a domain's code records (`ctx.metrics.add("X")`),
  read from its source, so no list of them is kept by hand.
"""

from __future__ import annotations

import ast
import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from bus.metrics import HANDLER, SERVICE
from bus.topology import Topology
from tctf.stages import DomainOperations, Stage

if TYPE_CHECKING:
    import aws_cdk as cdk
    from aws_cdk import aws_cloudwatch as cloudwatch
    from aws_cdk import aws_lambda as lambda_

#: The alias every caller of a domain's function invokes.
LIVE = "live"
#: The platform's own per-handler counters (`bus.metrics.record_outcome`).
HANDLER_OUTCOMES = ("Processed", "Failed", "Parked", "Skipped")
#: A dashboard's graphs cover this many seconds per point.
DASHBOARD_PERIOD_S = 300


@dataclass(frozen=True, slots=True)
class BusinessMetric:
    """A metric a domain's handlers record: counted (`add`) or measured (`record`)."""

    name: str
    kind: Literal["add", "record"]

    @property
    def statistic(self) -> str:
        return "Sum" if self.kind == "add" else "p99"


def business_metrics(domain: str) -> tuple[BusinessMetric, ...]:
    """Each metric name the package `domains.<domain>` passes as a literal to
    `<...>.metrics.add(...)` or `.record(...)`, in name order. A name computed at run time
    cannot be found here, so it has no graph: docs/observability.md asks for literals."""
    spec = importlib.util.find_spec(f"domains.{domain}")
    if spec is None:
        return ()
    roots = [Path(p) for p in (spec.submodule_search_locations or ())]
    if not roots and spec.origin:
        roots = [Path(spec.origin)]
    found: dict[str, BusinessMetric] = {}
    for root in roots:
        files = sorted(root.rglob("*.py")) if root.is_dir() else [root]
        for path in files:
            for metric in metrics_recorded_in(path.read_text(), str(path)):
                found.setdefault(metric.name, metric)
    return tuple(sorted(found.values(), key=lambda m: m.name))


def metrics_recorded_in(source: str, filename: str = "<source>") -> list[BusinessMetric]:
    """The metrics one module's code records under a literal name."""
    calls = []
    for node in ast.walk(ast.parse(source, filename=filename)):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        method, target = node.func.attr, node.func.value
        if method not in ("add", "record") or not node.args:
            continue
        if not (isinstance(target, ast.Attribute) and target.attr == "metrics"):
            continue
        name = node.args[0]
        if isinstance(name, ast.Constant) and isinstance(name.value, str):
            calls.append(BusinessMetric(name.value, "add" if method == "add" else "record"))
    return calls


# -- releases ----------------------------------------------------------------------------


def release(
    stack: cdk.Stack, function: lambda_.Function, operations: DomainOperations, stage: Stage
) -> lambda_.Alias:
    """The `live` alias on the function's current version, with the provisioned
    concurrency the domain is configured with when the stage provisions any."""
    from aws_cdk import aws_lambda as lambda_

    provisioned = operations.provisioned_concurrency if stage.provisioned_concurrency else 0
    return lambda_.Alias(
        stack,
        "Live",
        alias_name=LIVE,
        version=function.current_version,
        provisioned_concurrent_executions=provisioned or None,
        description="what every event source and the HTTP API invoke",
    )


def deployment_group(
    stack: cdk.Stack,
    name: str,
    live: lambda_.Alias,
    alarms: Sequence[cloudwatch.IAlarm],
    deployment: str,
) -> Any:
    """CodeDeploy (application and group `name`) shifting `live` to each new version as
    `CodeDeployDefault.Lambda<deployment>` does, and rolling back when any of `alarms`
    fires, the deployment fails or is stopped.

    Its role may move `live` of this function and read these alarms, nothing else: CDK would
    attach AWSCodeDeployRoleForLambdaLimited, which lets it re-alias every function in the
    account, so the group gets the role without policy updates."""
    from aws_cdk import aws_codedeploy as codedeploy
    from aws_cdk import aws_iam as iam

    role = iam.Role(
        stack,
        "ReleaseRole",
        assumed_by=iam.ServicePrincipal("codedeploy.amazonaws.com"),
        description=f"CodeDeploy shifting {name}'s live alias",
    )
    role.add_to_policy(
        iam.PolicyStatement(
            actions=[
                "lambda:GetAlias",
                "lambda:UpdateAlias",
                "lambda:GetProvisionedConcurrencyConfig",
            ],
            resources=[live.function_arn],
        )
    )
    if alarms:
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["cloudwatch:DescribeAlarms"],
                resources=[alarm.alarm_arn for alarm in alarms],
            )
        )
    return codedeploy.LambdaDeploymentGroup(
        stack,
        "Release",
        role=role.without_policy_updates(),
        application=codedeploy.LambdaApplication(
            stack, "ReleaseApplication", application_name=name
        ),
        deployment_group_name=name,
        alias=live,
        deployment_config=codedeploy.LambdaDeploymentConfig.from_lambda_deployment_config_name(
            stack, "ReleaseConfig", f"CodeDeployDefault.Lambda{deployment}"
        ),
        alarms=list(alarms),
        auto_rollback=codedeploy.AutoRollbackConfig(
            failed_deployment=True, stopped_deployment=True, deployment_in_alarm=True
        ),
    )


def jwt_authorizer(issuer: str, audience: str) -> Any:
    """API Gateway's JWT authorizer: the bearer token's signature (by the issuer's
    published keys), `iss`, `aud` and expiry, checked before the function is invoked."""
    from aws_cdk import aws_apigatewayv2_authorizers as authorizers

    return authorizers.HttpJwtAuthorizer(
        "Jwt",
        issuer,
        jwt_audience=[audience],
        authorizer_name="jwt",
        identity_source=["$request.header.Authorization"],
    )


# -- alarms and dashboards ---------------------------------------------------------------


def alarm_topic_name(app: str) -> str:
    """The stage's alarm topic: every domain's alarms notify it."""
    return f"{app}-alarms"


def alarm_topic(stack: cdk.Stack, app: str, stage: Stage) -> None:
    """The stage's alarm topic in the shared stack, with its e-mail subscribers."""
    import aws_cdk as cdk
    from aws_cdk import aws_sns as sns
    from aws_cdk import aws_sns_subscriptions as subscriptions

    topic = sns.Topic(stack, "AlarmTopic", topic_name=alarm_topic_name(app), enforce_ssl=True)
    for address in stage.alarm_emails:
        topic.add_subscription(subscriptions.EmailSubscription(address))
    cdk.CfnOutput(stack, "AlarmTopicArn", value=topic.topic_arn)


class DomainWatch:
    """One domain's alarms and dashboard, in its stack."""

    def __init__(
        self,
        stack: cdk.Stack,
        topology: Topology,
        domain: str,
        operations: DomainOperations,
        stage: Stage,
        timeout_s: int,
    ) -> None:
        self.stack = stack
        self.topology = topology
        self.domain = domain
        self.thresholds = operations.alarms
        self.stage = stage
        self.timeout_s = timeout_s
        self.prefix = f"{topology.app}-{domain}"
        self.alarms: list[cloudwatch.Alarm] = []
        #: The alarms a release rolls back on: the new code's health, not the backlog.
        self.release_alarms: list[cloudwatch.Alarm] = []

    def build(self, live: lambda_.Alias, api: Any | None) -> None:
        queues = [q for q in self.topology.queues if q.domain == self.domain]
        for spec in queues:
            age = self.thresholds.oldest_message_age_s or max(
                60.0, spec.visibility_timeout * spec.max_receive_count
            )
            self._alarm(
                f"{spec.name}-oldest-message",
                _sqs(spec.name, "ApproximateAgeOfOldestMessage", "Maximum"),
                age,
                f"a message on {spec.name} has waited over {age:g} s",
            )
        for dlq in self.dead_letter_queues:
            self._alarm(
                f"{dlq}-depth",
                _sqs(dlq, "ApproximateNumberOfMessagesVisible", "Maximum"),
                0,
                f"{dlq} holds dead letters: `tctf dlq` shows why, and redrives them",
                periods=1,
            )
        self._function_alarms(live)
        if api is not None:
            self._http_alarms(api)
        if self.domain in self.topology.tables:
            self._alarm(
                "outbox-iterator-age",
                live.metric("IteratorAge", statistic="Maximum"),
                self.thresholds.iterator_age_s * 1000,
                "the outbox relay is behind its table's stream",
            )
        self._dashboard(live, api)

    @property
    def dead_letter_queues(self) -> list[str]:
        """Every DLQ of the domain: its queues' (events, tasks, subscriptions, rules and
        schedules dead-letter there too), its outbox's and its mail notifications'."""
        names = [q.dlq for q in self.topology.queues if q.domain == self.domain]
        outbox = self.topology.outbox_dlqs.get(self.domain)
        mail = [m.dlq for m in self.topology.mail if m.domain == self.domain]
        return [*names, *([outbox] if outbox else []), *mail]

    def _function_alarms(self, live: lambda_.Alias) -> None:
        import aws_cdk as cdk

        period = cdk.Duration.seconds(self.thresholds.period_s)
        errors = self._alarm(
            "function-errors",
            live.metric_errors(period=period, statistic="Sum"),
            self.thresholds.function_errors - 1,
            "the function failed (a crash or a timeout, not a handler's retry)",
        )
        throttles = self._alarm(
            "function-throttles",
            live.metric_throttles(period=period, statistic="Sum"),
            self.thresholds.throttles - 1,
            "invocations of the function were throttled",
        )
        p99 = self.timeout_s * 1000 * self.thresholds.duration_p99_percent_of_timeout / 100
        duration = self._alarm(
            "function-duration-p99",
            live.metric_duration(period=period, statistic="p99"),
            p99,
            f"the function's p99 duration is over {p99:g} ms",
        )
        self.release_alarms += [errors, throttles, duration]

    def _http_alarms(self, api: Any) -> None:
        import aws_cdk as cdk
        from aws_cdk import aws_cloudwatch as cloudwatch

        period = cdk.Duration.seconds(self.thresholds.period_s)
        rate = cloudwatch.MathExpression(
            expression="IF(requests > 0, 100 * errors / requests, 0)",
            using_metrics={
                "errors": api.metric_server_error(period=period, statistic="Sum"),
                "requests": api.metric_count(period=period, statistic="Sum"),
            },
            period=period,
            label="5xx, % of requests",
        )
        server_errors = self._alarm(
            "http-5xx-rate",
            rate,
            self.thresholds.http_5xx_percent,
            f"over {self.thresholds.http_5xx_percent:g}% of HTTP requests answered 5xx",
        )
        latency = self._alarm(
            "http-latency-p99",
            api.metric_latency(period=period, statistic="p99"),
            self.thresholds.http_latency_p99_ms,
            f"the HTTP API's p99 latency is over {self.thresholds.http_latency_p99_ms:g} ms",
        )
        self.release_alarms += [server_errors, latency]

    def _alarm(
        self,
        name: str,
        metric: cloudwatch.IMetric,
        threshold: float,
        description: str,
        periods: int | None = None,
    ) -> cloudwatch.Alarm:
        """An alarm firing when `metric` exceeds `threshold`; no data is no trouble."""
        from aws_cdk import aws_cloudwatch as cloudwatch
        from aws_cdk import aws_cloudwatch_actions as actions
        from aws_cdk import aws_sns as sns

        full_name = name if name.startswith(self.prefix) else f"{self.prefix}-{name}"
        evaluation = periods or self.thresholds.evaluation_periods
        alarm = cloudwatch.Alarm(
            self.stack,
            _construct_id(full_name.removeprefix(self.prefix)) + "Alarm",
            alarm_name=full_name,
            alarm_description=f"{self.domain}: {description}",
            metric=metric,
            threshold=threshold,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=evaluation,
            datapoints_to_alarm=min(self.thresholds.datapoints_to_alarm, evaluation),
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        if self.stage.alarm_actions:
            topic = self.stack.node.try_find_child("AlarmTopic") or sns.Topic.from_topic_arn(
                self.stack, "AlarmTopic", _arn("sns", alarm_topic_name(self.topology.app))
            )
            alarm.add_alarm_action(actions.SnsAction(topic))  # type: ignore[arg-type]
            alarm.add_ok_action(actions.SnsAction(topic))  # type: ignore[arg-type]
        self.alarms.append(alarm)
        return alarm

    def _dashboard(self, live: lambda_.Alias, api: Any | None) -> None:
        import aws_cdk as cdk
        from aws_cdk import aws_cloudwatch as cloudwatch

        period = cdk.Duration.seconds(DASHBOARD_PERIOD_S)
        namespace = self.topology.app
        rows: list[list[cloudwatch.IWidget]] = []
        business = business_metrics(self.domain)
        if business:
            rows.append(
                [
                    _graph(
                        "Business metrics",
                        [
                            cloudwatch.Metric(
                                namespace=namespace,
                                metric_name=m.name,
                                dimensions_map={SERVICE: self.domain},
                                statistic=m.statistic,
                                period=period,
                            )
                            for m in business
                        ],
                        width=24,
                    )
                ]
            )
        handlers = sorted(
            {s.handler for s in self.topology.subscriptions if s.domain == self.domain}
        )
        if handlers:
            rows.append(
                [
                    _graph(
                        f"Handlers: {outcome}",
                        [
                            cloudwatch.Metric(
                                namespace=namespace,
                                metric_name=outcome,
                                dimensions_map={SERVICE: self.domain, HANDLER: handler},
                                statistic="Sum",
                                period=period,
                                label=handler,
                            )
                            for handler in handlers
                        ],
                    )
                    for outcome in HANDLER_OUTCOMES
                ]
            )
        queues = [q.name for q in self.topology.queues if q.domain == self.domain]
        rows.append(
            [
                _graph(
                    "Queue depth",
                    [_queue_line(q, "ApproximateNumberOfMessagesVisible") for q in queues],
                ),
                _graph(
                    "Oldest message, s",
                    [_queue_line(q, "ApproximateAgeOfOldestMessage") for q in queues],
                ),
                _graph(
                    "Dead letters",
                    [
                        _queue_line(q, "ApproximateNumberOfMessagesVisible")
                        for q in self.dead_letter_queues
                    ],
                ),
                _graph(
                    "Function",
                    [
                        live.metric_invocations(period=period),
                        live.metric_errors(period=period),
                        live.metric_throttles(period=period),
                    ],
                    right=[live.metric_duration(period=period, statistic="p99")],
                ),
            ]
        )
        if api is not None:
            rows.append(
                [
                    _graph(
                        "HTTP",
                        [
                            api.metric_count(period=period),
                            api.metric_client_error(period=period),
                            api.metric_server_error(period=period),
                        ],
                        right=[api.metric_latency(period=period, statistic="p99")],
                        width=12,
                    )
                ]
            )
        rows.append(
            [cloudwatch.AlarmStatusWidget(title="Alarms", alarms=list(self.alarms), width=24)]
        )
        cloudwatch.Dashboard(self.stack, "Dashboard", dashboard_name=self.prefix, widgets=rows)


def platform_dashboard(stack: cdk.Stack, topology: Topology) -> None:
    """Every domain side by side: handler outcomes, dead letters, queue ages, functions."""
    import aws_cdk as cdk
    from aws_cdk import aws_cloudwatch as cloudwatch

    period = cdk.Duration.seconds(DASHBOARD_PERIOD_S)
    app = topology.app

    def outcome(name: str) -> list[cloudwatch.IMetric]:
        return [
            cloudwatch.MathExpression(
                expression=(
                    f'SUM(SEARCH(\'{{{app},{SERVICE},{HANDLER}}} MetricName="{name}" '
                    f"{SERVICE}=\"{domain}\"', 'Sum', {DASHBOARD_PERIOD_S}))"
                ),
                label=domain,
                period=period,
            )
            for domain in topology.domains
        ]

    def function(metric: str, statistic: str) -> list[cloudwatch.IMetric]:
        return [
            cloudwatch.Metric(
                namespace="AWS/Lambda",
                metric_name=metric,
                dimensions_map={
                    "FunctionName": f"{app}-{domain}",
                    "Resource": f"{app}-{domain}:{LIVE}",
                },
                statistic=statistic,
                period=period,
                label=domain,
            )
            for domain in topology.domains
        ]

    dlqs = [q.dlq for q in topology.queues] + list(topology.outbox_dlqs.values())
    dlqs += [m.dlq for m in topology.mail]
    rows: list[list[cloudwatch.IWidget]] = [
        [_graph(f"Handlers: {name}", outcome(name)) for name in HANDLER_OUTCOMES],
        [
            _graph(
                "Dead letters",
                [_queue_line(q, "ApproximateNumberOfMessagesVisible") for q in dlqs],
            ),
            _graph(
                "Oldest message, s",
                [_queue_line(q.name, "ApproximateAgeOfOldestMessage") for q in topology.queues],
            ),
            _graph("Function errors", function("Errors", "Sum")),
            _graph("Function p99 duration, ms", function("Duration", "p99")),
        ],
    ]
    cloudwatch.Dashboard(stack, "Dashboard", dashboard_name=f"{app}-platform", widgets=rows)


def _graph(
    title: str,
    left: Sequence[cloudwatch.IMetric],
    right: Sequence[cloudwatch.IMetric] = (),
    width: int = 6,
) -> cloudwatch.GraphWidget:
    from aws_cdk import aws_cloudwatch as cloudwatch

    return cloudwatch.GraphWidget(
        title=title, left=list(left), right=list(right) or None, width=width, height=6
    )


def _sqs(queue: str, metric: str, statistic: str) -> cloudwatch.Metric:
    """A queue's metric; unlabelled, as an alarm takes it (a label turns an alarm's metric
    into a metric-math query), so a graph labels it `_queue_line`."""
    import aws_cdk as cdk
    from aws_cdk import aws_cloudwatch as cloudwatch

    return cloudwatch.Metric(
        namespace="AWS/SQS",
        metric_name=metric,
        dimensions_map={"QueueName": queue},
        statistic=statistic,
        period=cdk.Duration.minutes(1),
    )


def _queue_line(queue: str, metric: str) -> cloudwatch.Metric:
    return _sqs(queue, metric, "Maximum").with_(label=queue)


def _construct_id(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("-") if part)


def _arn(service: str, resource: str) -> str:
    import aws_cdk as cdk

    return f"arn:{cdk.Aws.PARTITION}:{service}:{cdk.Aws.REGION}:{cdk.Aws.ACCOUNT_ID}:{resource}"
