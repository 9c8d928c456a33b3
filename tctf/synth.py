"""`tctf synth`: the AWS CDK app that deploys the platform, built from the `Topology`.

One shared stack holds the SNS topic (or the EventBridge bus); one stack per domain holds
what that domain owns: its queues and DLQs with their redrive policies, the subscriptions
(or rules) that fill its events queue, its table with the outbox stream and the outbox DLQ,
its Lambda function (the package `tctf package` builds), the event source mappings that
feed it — every queue with ReportBatchItemFailures, the table's stream filtered to new
outbox items — and its HTTP API when it has routes. Names, queue attributes, filter
policies, patterns and retry settings are those `tctf up` provisions (`adapters.aws.
provision`), so a deployed platform and a locally provisioned one are the same shape.

Domain stacks address the shared topic or bus by name and depend on the shared stack, so
no stack exports values to another, and a domain deploys alone.

    tctf synth -o cdk.out                # then: npx cdk deploy --app cdk.out --all
    tctf synth --cdk-json                # writes cdk.json, whose app runs this module

The AWS CDK (`aws-cdk-lib`, which runs on Node.js through jsii) is imported only here, and
only when a stack is built: `--help` needs neither it nor the AWS SDK.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from bus import ConfigurationError, Domain
from bus.mail import MAIL_FROM_VARIABLE
from bus.topology import MailSpec, QueueSpec, ScheduleSpec, Topology
from tctf.errors import NagError, TctfError, UsageError
from tctf.nag import check as check_best_practices
from tctf.nag import findings as best_practice_findings
from tctf.stages import UNSTAGED, DeployConfig, Stage, load_deploy_config

if TYPE_CHECKING:
    import aws_cdk as cdk
    from aws_cdk import aws_iam as iam
    from aws_cdk import aws_lambda as lambda_
    from aws_cdk import aws_sqs as sqs

    from bus.client import Operation
    from bus.storage.spec import TableSpec

Transport = Literal["sns", "eventbridge"]

#: The function's handler setting: the Lambda adapter's entry point.
HANDLER = "adapters.lambda_.entry.handler"
#: Lambda's maximum timeout, seconds.
MAX_FUNCTION_TIMEOUT = 900
#: A function without queues (HTTP only) gets API Gateway's own limit, seconds.
HTTP_FUNCTION_TIMEOUT = 29
#: The least maximum concurrency a Lambda SQS event source mapping allows.
MIN_CONCURRENCY = 2
#: What an app's name may be: it prefixes every queue, topic, bus, table and function.
APP_NAME = re.compile(r"[a-z][a-z0-9-]{0,19}")
#: How often a stateful domain's function sweeps its outbox for events the stream path did
#: not relay (adapters.lambda_: a Scheduled Event; TCTF_OUTBOX_SWEEP_AGE_S says how old).
OUTBOX_SWEEP_MINUTES = 5
#: EventBridge Scheduler context attributes, replaced at each firing in a target's input.
SCHEDULER_EXECUTION_ID = "<aws.scheduler.execution-id>"
SCHEDULER_SCHEDULED_TIME = "<aws.scheduler.scheduled-time>"
#: Attempts and seconds EventBridge Scheduler keeps trying to reach the queue before the
#: firing goes to the queue's DLQ.
SCHEDULE_RETRY_ATTEMPTS = 10
SCHEDULE_MAX_EVENT_AGE = 3600
#: Records per batch from the table's stream to the outbox relay.
STREAM_BATCH_SIZE = 100
#: Only new outbox events reach the relay: writes of other items, and the relay's own
#: deletes, are filtered out by the event source mapping instead of invoking the function.
OUTBOX_STREAM_FILTER = {
    "eventName": ["INSERT"],
    "dynamodb": {
        "Keys": {
            "PK": {"S": [{"prefix": "OUTBOX#"}]},
            "SK": {"S": [{"prefix": "EVENT#"}]},
        }
    },
}

#: The function's settings of its mail: the sender (`MAIL_FROM_VARIABLE`, bus/mail.py) and
#: the configuration set (adapters/aws/ses.py).
CONFIGURATION_SET_VARIABLE = "TCTF_SES_CONFIGURATION_SET"
#: Where a `$connect` token's keys are read (adapters/lambda_/settings.py).
JWKS_URL_VARIABLE = "TCTF_TOKEN_JWKS_URL"
#: The domain's secrets by name (adapters/lambda_/settings.py), read once at init.
SECRETS_VARIABLE = "TCTF_SECRETS"
#: The APIs of the domains a function calls (`ctx.client`; adapters/aws/domain_api.py).
DOMAIN_URLS_VARIABLE = "TCTF_DOMAIN_URLS"
#: The app's public URL, which links in e-mails open (domains/auth_password).
APP_URL_VARIABLE = "TCTF_APP_URL"
#: Characters of random text Secrets Manager generates for a domain's secret: letters and
#: digits only, about 380 bits; the domain derives its keys from it (HKDF).
SECRET_LENGTH = 64
#: An HTTP API's only stage, as it appears in the ARNs `execute-api:Invoke` is granted on.
HTTP_API_STAGE = "$default"

#: jsii's notices about the Node.js version it runs on: its Python host prints each as a dozen
#: lines of raw bytes (`b'!!...'`), so they are silenced; docs/deploy.md says which Node.js.
JSII_NODE_NOTICES = tuple(
    f"JSII_SILENCE_WARNING_{kind}_NODE_VERSION"
    for kind in ("END_OF_LIFE", "DEPRECATED", "UNTESTED")
)


@dataclass(frozen=True, slots=True)
class FunctionSettings:
    """What every domain's function is given, beyond what the topology says."""

    #: Memory, MB; it also sets the CPU Lambda gives (1769 MB is one full vCPU).
    memory_mb: int = 1024
    #: The Lambda runtime; the package's bytecode is compiled for it (`tctf.packaging`).
    runtime: str = "python3.11"
    #: Architecture; the package's wheels are x86_64 ones.
    architecture: Literal["x86_64"] = "x86_64"
    #: Layer version ARNs given to every function: with packages of first-party code only,
    #: the layer that holds the third-party distributions.
    layers: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not 128 <= self.memory_mb <= 10_240:
            raise ConfigurationError(
                f"memory_mb is 128 to 10240 (Lambda's range), got {self.memory_mb}"
            )


def function_timeout(topology: Topology, domain: str) -> int:
    """Seconds the domain's function may run: no longer than the shortest visibility
    timeout of the queues it consumes (a longer one is refused by the event source mapping,
    and the record would reappear while still being handled)."""
    timeouts = [q.visibility_timeout for q in topology.queues if q.domain == domain]
    if not timeouts:
        return HTTP_FUNCTION_TIMEOUT
    seconds = min(math.floor(min(timeouts)), MAX_FUNCTION_TIMEOUT)
    if seconds < 1:
        raise ConfigurationError(
            f"domain {domain}: a visibility timeout under 1 s leaves its function no time"
        )
    return seconds


def function_environment(topology: Topology, domain: str, transport: Transport) -> dict[str, str]:
    """The function's environment (see docs/lambda.md), the topic or bus as an ARN in the
    stack's own partition, region and account."""
    environment = {"TCTF_DOMAIN": domain, "TCTF_APP": topology.app, "TCTF_TRANSPORT": transport}
    if transport == "sns":
        environment["TCTF_TOPIC_ARN"] = _arn("sns", topology.topic)
    else:
        environment["TCTF_EVENT_BUS"] = _arn("events", f"event-bus/{topology.event_bus}")
    return environment


def build_app(
    domains: Sequence[Domain],
    packages: Mapping[str, Path],
    *,
    transport: Transport = "sns",
    app: str = "tctf",
    settings: FunctionSettings | None = None,
    outdir: str | None = None,
    stage: str | None = None,
    config: DeployConfig | None = None,
) -> cdk.App:
    """The CDK app: `<app>-shared` and one `<app>-<domain>` stack per domain.

    `packages` maps each domain to its function's code: the zip (or folder) `tctf package`
    built. A `stage` (one of `config`'s) names everything `<app>-<stage>-...` and deploys
    as that stage is configured. Nothing is synthesized until `app.synth()`.
    """
    silence_jsii_node_notices()
    import aws_cdk as cdk

    from tctf import operate

    settings = settings or FunctionSettings()
    config = config or DeployConfig()
    stage_settings = config.stage(stage)
    if stage is not None:
        app = f"{app}-{stage}"
    if not APP_NAME.fullmatch(app):
        raise ConfigurationError(
            f"app name {app!r}: 1 to 20 lowercase letters, digits and dashes, starting with a "
            "letter (it prefixes every resource name, whose lengths AWS limits)"
        )
    topology = Topology.from_domains(domains, app=app)
    check_stage(topology, stage, stage_settings)
    missing = [d for d in topology.domains if d not in packages]
    if missing:
        raise ConfigurationError(f"no package for domain(s) {', '.join(missing)}")
    cdk_app = cdk.App(outdir=outdir) if outdir else cdk.App()
    shared = _shared_stack(cdk_app, topology, transport)
    if stage_settings.alarm_actions:
        operate.alarm_topic(shared, app, stage_settings)
    operate.platform_dashboard(shared, topology)
    declared = {d.name: d for d in domains}
    stacks: dict[str, cdk.Stack] = {}
    for domain in topology.domains:
        stack = stacks[domain] = cdk.Stack(
            cdk_app,
            stack_name(app, domain),
            description=f"{app}: domain {domain} (queues, table, function)",
        )
        stack.add_stack_dependency(shared)
        DomainResources(
            stack,
            topology,
            domain,
            transport,
            packages[domain],
            settings,
            stage_settings,
            config,
            secrets=declared[domain].secrets,
            calls=called_operations(domain),
        ).build()
    for domain in topology.domains:
        # A caller reads the callee's API from the parameters the callee's stack writes:
        # deployed together, the callee goes first.
        for callee in sorted({o.domain for o in called_operations(domain)} & set(stacks)):
            stacks[domain].add_stack_dependency(stacks[callee])
    check_best_practices(cdk_app)
    return cdk_app


def stack_name(app: str, domain: str) -> str:
    """A domain's stack: CloudFormation stack names allow dashes, not a domain's `_`."""
    return f"{app}-{domain.replace('_', '-')}"


def silence_jsii_node_notices() -> None:
    """Add the Node.js jsii will run on to `JSII_NODE_NOTICES` (each a list of major
    versions), before jsii starts; a Node.js that cannot be found is left to jsii to report."""
    node = shutil.which(os.environ.get("JSII_NODE", "node"))
    if node is None:
        return
    version = subprocess.run([node, "--version"], capture_output=True, text=True).stdout
    major = version.strip().removeprefix("v").partition(".")[0]
    for name in JSII_NODE_NOTICES:
        os.environ[name] = ",".join(v for v in (os.environ.get(name), major) if v)


def _shared_stack(cdk_app: cdk.App, topology: Topology, transport: Transport) -> cdk.Stack:
    import aws_cdk as cdk
    from aws_cdk import aws_events as events
    from aws_cdk import aws_sns as sns

    stack = cdk.Stack(
        cdk_app, f"{topology.app}-shared", description=f"{topology.app}: the event topic or bus"
    )
    if transport == "sns":
        topic = sns.Topic(stack, "Topic", topic_name=topology.topic, enforce_ssl=True)
        cdk.CfnOutput(stack, "TopicArn", value=topic.topic_arn)
    else:
        bus = events.EventBus(stack, "Bus", event_bus_name=topology.event_bus)
        cdk.CfnOutput(stack, "EventBusArn", value=bus.event_bus_arn)
    return stack


class DomainResources:
    """One domain's resources in its stack."""

    def __init__(
        self,
        stack: cdk.Stack,
        topology: Topology,
        domain: str,
        transport: Transport,
        code: Path,
        settings: FunctionSettings,
        stage: Stage = UNSTAGED,
        config: DeployConfig | None = None,
        *,
        secrets: Sequence[str] = (),
        calls: Sequence[Operation[Any, Any]] = (),
    ) -> None:
        self.stack = stack
        self.topology = topology
        self.domain = domain
        self.transport = transport
        self.code = code
        self.settings = settings
        self.stage = stage
        self.operations = (config or DeployConfig()).operations(domain)
        self.queues: dict[str, sqs.Queue] = {}
        #: The secrets the domain declares (`Domain(secrets=...)`).
        self.secrets = tuple(secrets)
        #: Other domains' operations the domain's code calls (`ctx.client`).
        self.calls = tuple(calls)

    def build(self) -> None:
        from tctf import operate

        specs = [q for q in self.topology.queues if q.domain == self.domain]
        for spec in specs:
            self.queues[spec.name] = self._queue(spec)
        function = self._function()
        # Every caller invokes `live`, which a release moves from version to version.
        live = operate.release(self.stack, function, self.operations, self.stage)
        for spec in specs:
            self._feed(spec, live)
        table = self.topology.tables.get(self.domain)
        if table is not None:
            self._table(table, function, live)
        records = self.topology.idempotency_tables.get(self.domain)
        if records is not None:
            self._idempotency_table(records, function)
        self._grants(function)
        self._secrets(function)
        self._clients(function)
        for mail in (m for m in self.topology.mail if m.domain == self.domain):
            self._mail(mail, function, live)
        schedules = [s for s in self.topology.schedules if s.domain == self.domain]
        if schedules:
            self._schedules(schedules)
        routes = [r for r in self.topology.routes if r.domain == self.domain]
        api = self._http_api(live, routes) if routes else None
        if api is not None:
            self._publish_api(api)
        watch = operate.DomainWatch(
            self.stack,
            self.topology,
            self.domain,
            self.operations,
            self.stage,
            function_timeout(self.topology, self.domain),
        )
        watch.build(live, api)
        operate.deployment_group(
            self.stack,
            f"{self.topology.app}-{self.domain}",
            live,
            watch.release_alarms,
            self.stage.deployment or self.operations.deployment,
        )
        for websocket in (w for w in self.topology.websockets if w.domain == self.domain):
            from tctf.synth_websockets import websocket_api

            websocket_api(self.stack, websocket, function, live)
            jwks_url = self.stage.jwks_url(self._token_policy().jwks_path)
            if jwks_url is not None:
                function.add_environment(JWKS_URL_VARIABLE, jwks_url)

    def _token_policy(self) -> Any:
        from bus.access import TokenPolicy

        return self.topology.token_policy or TokenPolicy.for_app(self.topology.app)

    # -- secrets and calls to other domains --------------------------------------------------

    def _secrets(self, function: lambda_.Function) -> None:
        """Each secret the domain declares: random text Secrets Manager generates once for
        the stage (`<app>-<domain>-<name>`), readable by this function only, which reads it
        at init (`TCTF_SECRETS`). Changing it (`put-secret-value`) keeps the old value as
        AWSPREVIOUS, which the domain still accepts: docs/deploy.md, "Secrets"."""
        from aws_cdk import aws_secretsmanager as secretsmanager

        names = {}
        for secret in self.secrets:
            name = names[secret] = f"{self.topology.app}-{self.domain}-{secret}"
            provisioned = secretsmanager.Secret(
                self.stack,
                "Secret" + "".join(part.capitalize() for part in secret.split("-")),
                secret_name=name,
                description=f"domain {self.domain}'s {secret} secret (docs/deploy.md)",
                generate_secret_string=secretsmanager.SecretStringGenerator(
                    password_length=SECRET_LENGTH, exclude_punctuation=True
                ),
                removal_policy=self._removal_policy(),
            )
            provisioned.grant_read(function)
        if names:
            function.add_environment(SECRETS_VARIABLE, json.dumps(names, sort_keys=True))

    def _clients(self, function: lambda_.Function) -> None:
        """The base URL of each domain this one calls, read at deploy time from the callee
        stack's parameter, and leave to invoke exactly the routes it calls, which API
        Gateway authorizes by IAM when they are internal."""
        from aws_cdk import aws_iam as iam
        from aws_cdk import aws_ssm as ssm

        if not self.calls:
            return
        urls: dict[str, str] = {}
        routes: list[str] = []
        for operation in sorted(self.calls, key=lambda o: (o.domain, o.path, o.method)):
            callee = operation.domain
            if callee not in urls:
                urls[callee] = ssm.StringParameter.value_for_string_parameter(
                    self.stack, api_parameter(self.topology.app, callee, "url")
                )
            api_id = ssm.StringParameter.value_for_string_parameter(
                self.stack, api_parameter(self.topology.app, callee, "id")
            )
            path = re.sub(r"\{[^}]+\}", "*", operation.path)
            routes.append(
                _arn("execute-api", f"{api_id}/{HTTP_API_STAGE}/{operation.method}{path}")
            )
        function.add_environment(DOMAIN_URLS_VARIABLE, json.dumps(urls, sort_keys=True))
        function.add_to_role_policy(
            iam.PolicyStatement(actions=["execute-api:Invoke"], resources=routes)
        )

    def _publish_api(self, api: Any) -> None:
        """The API's URL and id where the stacks of its callers read them (SSM parameters
        named by app and domain): stacks export nothing to each other."""
        from aws_cdk import aws_ssm as ssm

        published: tuple[tuple[Literal["url", "id"], str, str], ...] = (
            ("url", api.api_endpoint, "ApiUrlParameter"),
            ("id", api.api_id, "ApiIdParameter"),
        )
        for what, value, construct in published:
            ssm.StringParameter(
                self.stack,
                construct,
                parameter_name=api_parameter(self.topology.app, self.domain, what),
                string_value=value,
                description=f"the HTTP API {what} of domain {self.domain}, for its callers",
            )

    # -- e-mail -----------------------------------------------------------------------------

    def _mail(self, spec: MailSpec, function: lambda_.Function, live: lambda_.Alias) -> None:
        """The stage's sender identity, the domain's configuration set publishing bounces and
        complaints to its own topic, which invokes `live`; and leave to send as that identity
        through that configuration set, from the stage's sender address only."""
        import aws_cdk as cdk
        from aws_cdk import aws_iam as iam
        from aws_cdk import aws_lambda_destinations as destinations
        from aws_cdk import aws_ses as ses
        from aws_cdk import aws_sns as sns

        sender, identity = self.stage.mail_from, self.stage.sender_identity()
        assert sender is not None and identity is not None  # check_stage saw to it
        configuration_set = ses.ConfigurationSet(
            self.stack, "MailConfigurationSet", configuration_set_name=spec.configuration_set
        )
        ses.EmailIdentity(
            self.stack,
            "MailIdentity",
            identity=(
                ses.Identity.email(identity) if "@" in identity else ses.Identity.domain(identity)
            ),
            configuration_set=configuration_set,
        )
        topic = sns.Topic(
            self.stack, "MailEvents", topic_name=spec.notifications_topic, enforce_ssl=True
        )
        configuration_set_arn = _arn("ses", f"configuration-set/{spec.configuration_set}")
        topic.add_to_resource_policy(
            iam.PolicyStatement(
                actions=["sns:Publish"],
                principals=[iam.ServicePrincipal("ses.amazonaws.com")],
                resources=[topic.topic_arn],
                conditions={
                    "StringEquals": {"aws:SourceAccount": cdk.Aws.ACCOUNT_ID},
                    "ArnEquals": {"aws:SourceArn": configuration_set_arn},
                },
            )
        )
        configuration_set.add_event_destination(
            "Notifications",
            configuration_set_event_destination_name="bounces-and-complaints",
            destination=ses.EventDestination.sns_topic(topic),
            events=[ses.EmailSendingEvent.BOUNCE, ses.EmailSendingEvent.COMPLAINT],
        )
        if spec.notifications_route is not None:
            # What SNS cannot deliver, and what the function fails after Lambda's retries,
            # waits in the DLQ with the request and the error, not lost.
            dlq = self._dead_letter_queue(spec.dlq)
            dlq.add_to_resource_policy(
                _send_from("sns.amazonaws.com", topic.topic_arn, dlq.queue_arn)
            )
            live.configure_async_invoke(
                on_failure=destinations.SqsDestination(dlq), retry_attempts=2
            )
            # The alias's ARN spelled out: a reference to the alias itself is taken by
            # CloudFormation's validation for a function missing.
            subscription = sns.Subscription(
                self.stack,
                "MailEventsSubscription",
                topic=topic,
                protocol=sns.SubscriptionProtocol.LAMBDA,
                endpoint=cdk.Fn.sub(
                    f"${{Function}}:{live.alias_name}", {"Function": function.function_arn}
                ),
                dead_letter_queue=dlq,
            )
            subscription.node.add_dependency(live)
            live.add_permission(
                "MailEventsInvoke",
                principal=iam.ServicePrincipal("sns.amazonaws.com"),
                source_arn=topic.topic_arn,
            )
        function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["ses:SendEmail"],
                resources=[_arn("ses", f"identity/{identity}"), configuration_set_arn],
                conditions={"StringEquals": {"ses:FromAddress": sender}},
            )
        )
        function.add_environment(MAIL_FROM_VARIABLE, sender)
        function.add_environment(CONFIGURATION_SET_VARIABLE, spec.configuration_set)

    # -- queues -----------------------------------------------------------------------------

    def _queue(self, spec: QueueSpec) -> sqs.Queue:
        import aws_cdk as cdk
        from aws_cdk import aws_sqs as sqs

        dlq = self._dead_letter_queue(spec.dlq)
        queue = sqs.Queue(
            self.stack,
            _construct_id(spec.name),
            queue_name=spec.name,
            # SQS counts visibility in whole seconds; rounding up never shortens a handler's.
            visibility_timeout=cdk.Duration.seconds(math.ceil(spec.visibility_timeout)),
            dead_letter_queue=sqs.DeadLetterQueue(
                queue=dlq, max_receive_count=spec.max_receive_count
            ),
            enforce_ssl=True,
        )
        if spec.purpose == "events":
            self._fill(spec, queue, dlq)
        return queue

    def _dead_letter_queue(self, name: str) -> sqs.Queue:
        import aws_cdk as cdk
        from aws_cdk import aws_sqs as sqs

        from adapters.aws.provision import DLQ_RETENTION_SECONDS

        return sqs.Queue(
            self.stack,
            _construct_id(name),
            queue_name=name,
            retention_period=cdk.Duration.seconds(DLQ_RETENTION_SECONDS),
            enforce_ssl=True,
        )

    def _fill(self, spec: QueueSpec, queue: sqs.Queue, dlq: sqs.Queue) -> None:
        """What fills an events queue: a filtered, raw subscription to the topic or a rule on
        the bus; what it cannot deliver goes to the queue's DLQ."""
        if self.transport == "sns":
            source_arn = _arn("sns", self.topology.topic)
            service = "sns.amazonaws.com"
            self._subscribe(spec, queue, dlq, source_arn)
        else:
            source_arn = self._rule(spec, queue, dlq)
            service = "events.amazonaws.com"
        for target in (queue, dlq):
            target.add_to_resource_policy(_send_from(service, source_arn, target.queue_arn))

    def _subscribe(self, spec: QueueSpec, queue: sqs.Queue, dlq: sqs.Queue, topic: str) -> None:
        from aws_cdk import aws_sns as sns

        policy, scope = self.topology.filter_policy(spec.name)
        sns.CfnSubscription(
            self.stack,
            f"{_construct_id(spec.name)}Subscription",
            topic_arn=topic,
            protocol="sqs",
            endpoint=queue.queue_arn,
            raw_message_delivery=True,
            filter_policy_scope=scope,
            filter_policy=policy,
            redrive_policy={"deadLetterTargetArn": dlq.queue_arn},
        )

    def _rule(self, spec: QueueSpec, queue: sqs.Queue, dlq: sqs.Queue) -> str:
        from aws_cdk import aws_events as events

        from adapters.aws.provision import TARGET_RETRY_POLICY, rule_name

        rule = events.CfnRule(
            self.stack,
            f"{_construct_id(spec.name)}Rule",
            name=rule_name(spec.name),
            event_bus_name=self.topology.event_bus,
            event_pattern=self.topology.event_pattern(spec.name),
            state="ENABLED",
            description=f"events for domain {spec.domain}",
            targets=[
                events.CfnRule.TargetProperty(
                    id="queue",
                    arn=queue.queue_arn,
                    dead_letter_config=events.CfnRule.DeadLetterConfigProperty(arn=dlq.queue_arn),
                    retry_policy=events.CfnRule.RetryPolicyProperty(
                        maximum_retry_attempts=TARGET_RETRY_POLICY["MaximumRetryAttempts"],
                        maximum_event_age_in_seconds=TARGET_RETRY_POLICY[
                            "MaximumEventAgeInSeconds"
                        ],
                    ),
                )
            ],
        )
        return str(rule.attr_arn)

    # -- the function -----------------------------------------------------------------------

    def _function(self) -> lambda_.Function:
        import aws_cdk as cdk
        from aws_cdk import aws_lambda as lambda_
        from aws_cdk import aws_logs as logs

        settings = self.settings
        name = f"{self.topology.app}-{self.domain}"
        log_group = logs.LogGroup(
            self.stack,
            "Logs",
            log_group_name=f"/aws/lambda/{name}",
            removal_policy=self._removal_policy(),
        )
        # The stage's days as a number: jsii's `RetentionDays` is an enum of names.
        log_group.node.default_child.add_property_override(  # type: ignore[union-attr]
            "RetentionInDays", self.stage.log_retention_days
        )
        environment = function_environment(self.topology, self.domain, self.transport)
        environment.update(token_environment(self.stage))
        if self.stage.app_url:
            environment[APP_URL_VARIABLE] = self.stage.app_url
        function = lambda_.Function(
            self.stack,
            "Function",
            function_name=name,
            log_group=log_group,
            description=f"{self.topology.app}: domain {self.domain}",
            runtime=lambda_.Runtime(settings.runtime, lambda_.RuntimeFamily.PYTHON),
            architecture=lambda_.Architecture.X86_64,
            handler=HANDLER,
            code=lambda_.Code.from_asset(str(self.code)),
            role=self._function_role(name),
            memory_size=settings.memory_mb,
            timeout=cdk.Duration.seconds(function_timeout(self.topology, self.domain)),
            environment=environment,
            layers=[
                lambda_.LayerVersion.from_layer_version_arn(self.stack, f"Layer{n}", arn)
                for n, arn in enumerate(settings.layers)
            ],
        )
        cdk.CfnOutput(self.stack, "FunctionName", value=function.function_name)
        return function

    def _removal_policy(self) -> cdk.RemovalPolicy:
        """What deleting the stack does to data: kept in stages that say so."""
        import aws_cdk as cdk

        return cdk.RemovalPolicy.RETAIN if self.stage.retain_data else cdk.RemovalPolicy.DESTROY

    def _function_role(self, function_name: str) -> iam.Role:
        """The function's role, writing to its own log group only: AWS's managed
        AWSLambdaBasicExecutionRole would let it write into every function's logs."""
        from aws_cdk import aws_iam as iam

        role = iam.Role(
            self.stack,
            "FunctionRole",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"domain {self.domain}'s function",
        )
        log_group = f"log-group:/aws/lambda/{function_name}"
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogGroup"], resources=[_arn("logs", log_group)]
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[_arn("logs", f"{log_group}:log-stream:*")],
            )
        )
        return role

    def _feed(self, spec: QueueSpec, function: lambda_.IFunction) -> None:
        """The queue's event source mapping: its batch size and concurrency, and only the
        failed records of a batch returned to the queue."""
        from aws_cdk import aws_lambda_event_sources as sources

        if spec.concurrency < MIN_CONCURRENCY:
            print(
                f"tctf synth: {spec.name}: concurrency {spec.concurrency} is deployed as "
                f"{MIN_CONCURRENCY}, the least a Lambda event source mapping allows",
                file=sys.stderr,
            )
        function.add_event_source(
            sources.SqsEventSource(
                self.queues[spec.name],
                batch_size=spec.batch_size,
                report_batch_item_failures=True,
                max_concurrency=max(spec.concurrency, MIN_CONCURRENCY),
            )
        )

    def _table(self, spec: TableSpec, function: lambda_.Function, live: lambda_.Alias) -> None:
        from aws_cdk import aws_dynamodb as dynamodb
        from aws_cdk import aws_lambda as lambda_
        from aws_cdk import aws_lambda_event_sources as sources

        from adapters.aws.provision import TABLE_STREAM_VIEW

        table = self._dynamodb_table(
            "Table",
            spec,
            stream=dynamodb.StreamViewType(TABLE_STREAM_VIEW),
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=self.stage.point_in_time_recovery
            ),
            # A domain's data outlives a `cdk destroy` of its stack, but in throwaway stages.
            removal_policy=self._removal_policy(),
        )
        for index in spec.indexes:
            table.add_global_secondary_index(
                index_name=index.name,
                partition_key=_attribute(index.partition_key),
                sort_key=_attribute(index.sort_key) if index.sort_key is not None else None,
                projection_type=dynamodb.ProjectionType(str(index.projection)),
                non_key_attributes=list(index.non_key_attributes) or None,
            )
        table.grant_read_write_data(function)
        self._outbox_sweep(live)
        outbox_dlq = self._dead_letter_queue(self.topology.outbox_dlqs[self.domain])
        outbox_dlq.grant_send_messages(function)
        live.add_event_source(
            sources.DynamoEventSource(
                table,
                starting_position=lambda_.StartingPosition.TRIM_HORIZON,
                batch_size=STREAM_BATCH_SIZE,
                report_batch_item_failures=True,
                filters=[lambda_.FilterCriteria.filter(OUTBOX_STREAM_FILTER)],
            )
        )

    def _idempotency_table(self, spec: TableSpec, function: lambda_.Function) -> None:
        """The small TTL'd table where a stateless domain's function records what it has
        handled, shared by all its containers (docs/decisions/0010)."""
        import aws_cdk as cdk

        table = self._dynamodb_table(
            "IdempotencyTable",
            spec,
            # Records that expire on their own (idempotency_ttl): nothing worth keeping
            # after a destroy.
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        table.grant_read_write_data(function)

    def _dynamodb_table(self, construct_id: str, spec: TableSpec, **options: Any) -> Any:
        """A pay-per-request table with the spec's name, keys and TTL attribute."""
        from aws_cdk import aws_dynamodb as dynamodb

        sort_key = spec.sort_key
        return dynamodb.Table(
            self.stack,
            construct_id,
            table_name=spec.name,
            partition_key=_attribute(spec.partition_key),
            sort_key=_attribute(sort_key) if sort_key is not None else None,
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            time_to_live_attribute=spec.ttl_attribute,
            **options,
        )

    def _outbox_sweep(self, function: lambda_.IFunction) -> None:
        """A schedule invoking the function to publish outbox events older than its sweep
        age: those whose stream records failed until they expired (24 hours)."""
        import aws_cdk as cdk
        from aws_cdk import aws_events as events
        from aws_cdk import aws_events_targets as targets

        events.Rule(
            self.stack,
            "OutboxSweep",
            rule_name=f"{self.topology.app}-{self.domain}-outbox-sweep",
            description=f"sweep the outbox of domain {self.domain}",
            schedule=events.Schedule.rate(cdk.Duration.minutes(OUTBOX_SWEEP_MINUTES)),
            targets=[targets.LambdaFunction(function, retry_attempts=2)],
        )

    def _schedules(self, specs: Sequence[ScheduleSpec]) -> None:
        """Each schedule: an EventBridge Scheduler schedule sending its task's envelope to
        the domain's task queue (the failures it cannot deliver to the queue's DLQ), and one
        role allowing the scheduler to send there and nowhere else."""
        import aws_cdk as cdk
        from aws_cdk import aws_iam as iam
        from aws_cdk import aws_scheduler as scheduler

        role = iam.Role(
            self.stack,
            "SchedulerRole",
            assumed_by=iam.ServicePrincipal(
                "scheduler.amazonaws.com",
                conditions={"StringEquals": {"aws:SourceAccount": cdk.Aws.ACCOUNT_ID}},
            ),
            description=f"lets EventBridge Scheduler send domain {self.domain}'s scheduled tasks",
        )
        for spec in specs:
            queue = self.queues[spec.queue]
            dlq = queue.dead_letter_queue.queue  # type: ignore[union-attr]
            queue.grant_send_messages(role)
            dlq.grant_send_messages(role)
            scheduler.CfnSchedule(
                self.stack,
                _construct_id(spec.name),
                name=spec.name,
                schedule_expression=spec.expression,
                schedule_expression_timezone="UTC",
                flexible_time_window=scheduler.CfnSchedule.FlexibleTimeWindowProperty(mode="OFF"),
                target=scheduler.CfnSchedule.TargetProperty(
                    arn=queue.queue_arn,
                    role_arn=role.role_arn,
                    input=schedule_input(spec),
                    retry_policy=scheduler.CfnSchedule.RetryPolicyProperty(
                        maximum_event_age_in_seconds=SCHEDULE_MAX_EVENT_AGE,
                        maximum_retry_attempts=SCHEDULE_RETRY_ATTEMPTS,
                    ),
                    dead_letter_config=scheduler.CfnSchedule.DeadLetterConfigProperty(
                        arn=dlq.queue_arn
                    ),
                ),
            )

    def _grants(self, function: lambda_.Function) -> None:
        """Publishing to the topic or bus; sending tasks to the task queues the domain
        declares (`Domain(..., sends=[...])`) and parked records to its own DLQs, by name
        (`GetQueueUrl`) or URL."""
        from aws_cdk import aws_iam as iam

        if self.transport == "sns":
            publish = iam.PolicyStatement(
                actions=["sns:Publish"], resources=[_arn("sns", self.topology.topic)]
            )
        else:
            # An envelope's source is its domain's name, PutEvents' Source: a domain cannot
            # put events on the bus as another.
            publish = iam.PolicyStatement(
                actions=["events:PutEvents"],
                resources=[_arn("events", f"event-bus/{self.topology.event_bus}")],
                conditions={"StringEquals": {"events:source": [self.domain]}},
            )
        function.add_to_role_policy(publish)
        targets = sorted(
            {*self.topology.task_queues_sent_by(self.domain)}
            | {q.dlq for q in self.topology.queues if q.domain == self.domain}
        )
        if targets:
            function.add_to_role_policy(
                iam.PolicyStatement(
                    actions=["sqs:SendMessage", "sqs:GetQueueUrl"],
                    resources=[_arn("sqs", name) for name in targets],
                )
            )

    def _http_api(self, function: lambda_.IFunction, routes: Sequence[Any]) -> Any:
        """The domain's routes, and `$default` for every other request: the function's own
        router answers an unknown path or method (404/405 problem+json) as `tctf run` does,
        where API Gateway alone would answer `{"message": "Not Found"}`. A signed-in route
        is behind the JWT authorizer, as the local gateway checks it; its scopes and roles
        the function's router checks on the claims the authorizer passes."""
        import aws_cdk as cdk
        from aws_cdk import aws_apigatewayv2 as apigateway
        from aws_cdk import aws_apigatewayv2_integrations as integrations

        from tctf import operate

        # One invoke permission for the whole API, not one per route (a function's
        # resource policy is limited to 20 KB).
        integration = integrations.HttpLambdaIntegration(
            "Integration", function, scope_permission_to_route=False
        )
        api = apigateway.HttpApi(
            self.stack,
            "Api",
            api_name=f"{self.topology.app}-{self.domain}",
            default_integration=integration,
            cors_preflight=self._cors(routes),
        )
        from aws_cdk import aws_apigatewayv2_authorizers as authorizers

        issuer, audience = token_claims(self.topology, self.stage)
        authorizer = operate.jwt_authorizer(issuer, audience)
        # An internal route answers only a request signed by a role granted
        # `execute-api:Invoke` on it: another domain's function (adapters/aws/domain_api.py).
        by_iam = authorizers.HttpIamAuthorizer()
        for route in routes:
            api.add_routes(
                path=route.path,
                methods=[apigateway.HttpMethod(route.method)],
                integration=integration,
                authorizer=(by_iam if route.internal else authorizer if route.signed_in else None),
            )
        cdk.CfnOutput(self.stack, "ApiUrl", value=api.api_endpoint)
        return api

    def _cors(self, routes: Sequence[Any]) -> Any:
        """The stage's allowed origins as the API's CORS configuration, so API Gateway
        answers preflights itself, as `tctf run --cors-origin` does (`adapters.http.cors`);
        None without origins: no CORS header at all. Internal routes are called by other
        domains' functions, never by a browser: their methods are not offered."""
        if not self.stage.cors_origins:
            return None
        import aws_cdk as cdk
        from aws_cdk import aws_apigatewayv2 as apigateway

        from adapters.http.cors import ALLOW_HEADERS, EXPOSE_HEADERS, MAX_AGE_S

        methods = sorted({route.method for route in routes if not route.internal})
        return apigateway.CorsPreflightOptions(
            allow_origins=list(self.stage.cors_origins),
            allow_methods=[apigateway.CorsHttpMethod(method) for method in methods],
            allow_headers=list(ALLOW_HEADERS),
            expose_headers=list(EXPOSE_HEADERS),
            max_age=cdk.Duration.seconds(MAX_AGE_S),
        )


def check_stage(topology: Topology, name: str | None, stage: Stage) -> None:
    """Refuse a stage that lacks what its domains need to work once deployed: the app's
    public URL (links in e-mails), a sender for a domain that sends e-mail, the issuer's JWK
    set for a WebSocket API's `$connect`."""
    where = f"stage {name!r} of the deployment configuration" if name else "an unstaged synth"
    if stage.app_url is None:
        raise ConfigurationError(
            f"{where} has no `app_url`: set the app's public https URL, where the links "
            "its functions e-mail (setting a password, resetting it) lead"
        )
    for mail in topology.mail:
        if stage.mail_from is None:
            raise ConfigurationError(
                f"{where} deploys domain {mail.domain}, which sends e-mail: set its "
                "`mail_from` (the sender address; `mail_identity` for a domain identity)"
            )
    policy = topology.token_policy
    for websocket in topology.websockets:
        if name is not None and stage.jwks_url(policy.jwks_path if policy else "") is None:
            raise ConfigurationError(
                f"{where} deploys domain {websocket.domain}'s WebSocket API, whose $connect "
                "verifies the access token with the issuer's keys: set `token_issuer` to the "
                "issuer's https URL (its keys at <issuer>/auth/jwks.json), or `token_jwks_url`"
            )


def api_parameter(app: str, domain: str, what: Literal["url", "id"]) -> str:
    """The SSM parameter holding a domain's HTTP API URL or id, for its callers' stacks."""
    return f"/{app}/{domain}/api-{what}"


def called_operations(domain: str) -> list[Operation[Any, Any]]:
    """The other domains' operations `domain`'s loaded modules hold as globals (imported
    from their contracts, the only way a domain reaches another): the routes its function
    calls through `ctx.client`, each deployed with its URL and leave to invoke it."""
    from bus.client import Operation

    prefix = f"domains.{domain}."
    found: dict[tuple[str, str, str], Operation[Any, Any]] = {}
    for name, module in list(sys.modules.items()):
        if not name.startswith(prefix) or module is None:
            continue
        for value in vars(module).values():
            if isinstance(value, Operation) and value.domain != domain:
                found[value.domain, value.method, value.path] = value
    return [found[key] for key in sorted(found)]


def token_claims(topology: Topology, stage: Stage) -> tuple[str, str]:
    """The issuer and audience a bearer token must name: the stage's, else the platform's
    `TokenPolicy` (what the local gateway checks)."""
    from bus.access import TokenPolicy

    policy = topology.token_policy or TokenPolicy.for_app(topology.app)
    return stage.token_issuer or policy.issuer, stage.token_audience or policy.audience


def token_environment(stage: Stage) -> dict[str, str]:
    """The issuer and audience the stage configures, for the function that signs tokens
    to name and the router to expect (`TokenPolicy.for_app` reads them)."""
    environment = {}
    if stage.token_issuer:
        environment["TCTF_TOKEN_ISSUER"] = stage.token_issuer
    if stage.token_audience:
        environment["TCTF_TOKEN_AUDIENCE"] = stage.token_audience
    return environment


def schedule_input(spec: ScheduleSpec) -> str:
    """The body a schedule sends: the task's envelope, its id and time filled in by the
    scheduler at each firing (its context attributes), as the in-memory scheduler makes it."""
    from bus.envelope import SPECVERSION
    from bus.schedules import SCHEDULER_SOURCE

    envelope = {
        "specversion": SPECVERSION,
        "id": SCHEDULER_EXECUTION_ID,
        "source": SCHEDULER_SOURCE,
        "type": spec.task_type,
        "time": SCHEDULER_SCHEDULED_TIME,
        "dataversion": spec.version,
        "correlationid": SCHEDULER_EXECUTION_ID,
        "datacontenttype": "application/json",
        "data": dict(spec.payload),
    }
    return json.dumps(envelope, separators=(",", ":"))


def _arn(service: str, resource: str) -> str:
    """An ARN in the stack's partition, region and account (CloudFormation pseudo
    parameters), as `Stack.format_arn` would make it without a stack in hand."""
    import aws_cdk as cdk

    return f"arn:{cdk.Aws.PARTITION}:{service}:{cdk.Aws.REGION}:{cdk.Aws.ACCOUNT_ID}:{resource}"


def _send_from(service: str, source_arn: str, queue_arn: str) -> iam.PolicyStatement:
    from aws_cdk import aws_iam as iam

    return iam.PolicyStatement(
        actions=["sqs:SendMessage"],
        principals=[iam.ServicePrincipal(service)],
        resources=[queue_arn],
        conditions={"ArnEquals": {"aws:SourceArn": source_arn}},
    )


def _attribute(attribute: Any) -> Any:
    from aws_cdk import aws_dynamodb as dynamodb

    kinds = {"S": dynamodb.AttributeType.STRING, "N": dynamodb.AttributeType.NUMBER}
    kinds["B"] = dynamodb.AttributeType.BINARY
    return dynamodb.Attribute(name=attribute.name, type=kinds[str(attribute.type)])


def _construct_id(name: str) -> str:
    """A construct id from a resource name: `tctf-users-events-dlq` -> `UsersEventsDlq`
    without the app prefix, which every name in a stack shares."""
    return "".join(part.capitalize() for part in name.split("-")[1:]) or name


def synth(
    out: Path,
    *,
    transport: Transport = "sns",
    app: str = "tctf",
    domain_names: Sequence[str] | None = None,
    dependencies: bool = True,
    settings: FunctionSettings | None = None,
    stage: str | None = None,
    config: DeployConfig | None = None,
) -> Path:
    """Package every domain and synthesize the cloud assembly into `out/`; return `out`.

    `dependencies=False` packages first-party code only, which runs only beside a layer
    holding the third-party distributions: `settings.layers` must name one.

    The packages are built in a scratch directory: synthesis copies each zip into the
    assembly as an asset (named by its hash, so an unchanged domain is not uploaded again).
    """
    from tctf.config import load_domains
    from tctf.packaging import declared_services, package

    if not dependencies and not (settings and settings.layers):
        raise ConfigurationError(
            "packages without dependencies cannot start on their own: name the layer that "
            "holds the third-party distributions (--layer ARN)"
        )
    domains = load_domains(domain_names)
    with tempfile.TemporaryDirectory(prefix="tctf-synth-") as scratch:
        packages = {
            d.name: package(
                d.name,
                Path(scratch),
                zip=True,
                dependencies=dependencies,
                aws_services=declared_services(d),
            )
            for d in domains
        }
        cdk_app = build_app(
            domains,
            packages,
            transport=transport,
            app=app,
            settings=settings,
            outdir=str(out),
            stage=stage,
            config=config if config is not None else load_deploy_config(),
        )
        found = best_practice_findings(cdk_app.synth())
    if found:
        raise NagError(found)
    return out


def argument_parser() -> argparse.ArgumentParser:
    """`tctf synth`'s options."""
    parser = argparse.ArgumentParser(prog="tctf synth", description=__doc__.splitlines()[0])
    parser.add_argument(
        "-o", "--out", type=Path, default=Path("cdk.out"), help="where the cloud assembly goes"
    )
    parser.add_argument(
        "--transport",
        choices=["sns", "eventbridge"],
        default="sns",
        help="how events travel between domains (default: %(default)s)",
    )
    parser.add_argument("--app", default="tctf", help="the platform's name, prefix of everything")
    parser.add_argument(
        "--stage",
        help="deploy as this stage of the deployment configuration (dev, staging, prod): "
        "names become <app>-<stage>-...",
    )
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        help="the deployment configuration (default: deploy.toml beside pyproject.toml)",
    )
    parser.add_argument(
        "--domain", action="append", dest="domains", metavar="NAME", help="only this domain"
    )
    parser.add_argument(
        "--memory-mb",
        type=int,
        default=FunctionSettings().memory_mb,
        help="memory of every Lambda function, in MB; CPU grows with it (default: %(default)s)",
    )
    parser.add_argument(
        "--no-deps",
        action="store_true",
        help="package first-party code only; needs --layer",
    )
    parser.add_argument(
        "--layer",
        action="append",
        default=[],
        metavar="ARN",
        help="a layer version every function gets (repeatable), e.g. the third-party one",
    )
    parser.add_argument(
        "--cdk-json",
        action="store_true",
        help="write cdk.json here instead, for the CDK CLI: its app runs this Python "
        "with these options, no virtualenv to activate",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """`tctf synth [-o cdk.out] [--transport sns|eventbridge] [--app NAME] [--domain NAME]`."""
    args = argument_parser().parse_args(argv)
    try:
        if args.cdk_json:
            print(write_cdk_json(Path("cdk.json"), _app_command(args)))
            return 0
        out = synth(
            args.out,
            transport=args.transport,
            app=args.app,
            domain_names=args.domains,
            dependencies=not args.no_deps,
            settings=FunctionSettings(memory_mb=args.memory_mb, layers=tuple(args.layer)),
            stage=args.stage,
            config=load_deploy_config(args.config),
        )
    except (ConfigurationError, TctfError) as error:
        print(f"tctf synth: {error}", file=sys.stderr)
        return 2
    print(out)
    return 0


def write_cdk_json(path: Path, app_command: str) -> Path:
    """A `cdk.json` whose app is `app_command`; one already there is the user's, kept."""
    if path.exists():
        raise UsageError(f'{path} exists: set its "app" to {app_command!r} yourself, or remove it')
    path.write_text(json.dumps({"app": app_command}, indent=2) + "\n")
    return path


def _app_command(args: argparse.Namespace) -> str:
    """This module run by this interpreter (the virtualenv's, by its path) with the options
    given, as the CDK CLI runs an app; the CLI names the output directory itself."""
    words = [sys.executable, "-m", "tctf.synth", "--transport", args.transport]
    words += ["--app", args.app, "--memory-mb", str(args.memory_mb)]
    if args.stage:
        words += ["--stage", args.stage]
    if args.config:
        words += ["--config", str(args.config.resolve())]
    for name in args.domains or ():
        words += ["--domain", name]
    for layer in args.layer:
        words += ["--layer", layer]
    if args.no_deps:
        words.append("--no-deps")
    return shlex.join(words)


if __name__ == "__main__":
    # Run by the CDK CLI (the app `--cdk-json` writes): it names the output directory.
    raise SystemExit(main(["-o", os.environ.get("CDK_OUTDIR", "cdk.out"), *sys.argv[1:]]))
