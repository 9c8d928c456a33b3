"""Deployment configuration: what differs by stage (dev, staging, prod) and by domain.

`deploy.toml` at the repository's root holds it (docs/deploy.md); every value has a
default here, so a domain absent from the file gets sensible alarms and an all-default
canary release, and a new stage needs only its name. Validated as it is read: an unknown
key or an impossible value is refused with the file's path in the message.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from adapters.http.cors import cors_origin
from bus import ConfigurationError

#: The file `tctf synth` reads unless told otherwise: beside pyproject.toml.
DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "deploy.toml"

#: The retention periods CloudWatch Logs accepts, days.
RetentionDays = Literal[
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557,
    2922, 3288, 3653,
]  # fmt: skip

#: CodeDeploy's predefined Lambda traffic shifts (`CodeDeployDefault.Lambda<name>`).
Deployment = Literal[
    "AllAtOnce",
    "Canary10Percent5Minutes",
    "Canary10Percent10Minutes",
    "Canary10Percent15Minutes",
    "Canary10Percent30Minutes",
    "Linear10PercentEvery1Minute",
    "Linear10PercentEvery2Minutes",
    "Linear10PercentEvery3Minutes",
    "Linear10PercentEvery10Minutes",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AlarmThresholds(_Strict):
    """When a domain's alarms fire. Unset ages are derived from the domain's settings."""

    #: Seconds of one evaluation period, and periods looked at.
    period_s: int = Field(60, ge=10)
    evaluation_periods: int = Field(3, ge=1)
    #: Breaching periods among those that fire the alarm.
    datapoints_to_alarm: int = Field(2, ge=1)
    #: Oldest message on a queue, seconds. None: the queue's visibility timeout times its
    #: maximum receive count, the age a record reaches failing every delivery.
    oldest_message_age_s: float | None = Field(None, gt=0)
    #: Function errors (the runtime crashed or timed out) in one period.
    function_errors: int = Field(1, ge=1)
    #: Throttled invocations in one period.
    throttles: int = Field(1, ge=1)
    #: p99 duration, percent of the function's timeout.
    duration_p99_percent_of_timeout: float = Field(80, gt=0, le=100)
    #: HTTP API answers 5xx, percent of its requests.
    http_5xx_percent: float = Field(1.0, gt=0, le=100)
    #: HTTP API p99 latency, milliseconds.
    http_latency_p99_ms: float = Field(2000, gt=0)
    #: Age of the newest outbox stream record the relay has read, seconds.
    iterator_age_s: float = Field(60, gt=0)


class DomainOperations(_Strict):
    """How one domain is released and watched."""

    deployment: Deployment = "Canary10Percent5Minutes"
    #: Execution environments kept initialised behind `live`, in stages that provision them.
    provisioned_concurrency: int = Field(0, ge=0)
    alarms: AlarmThresholds = AlarmThresholds()


class Stage(_Strict):
    """What one stage deploys differently."""

    log_retention_days: RetentionDays = 30
    #: Tables and log groups kept when the stack is deleted.
    retain_data: bool = True
    point_in_time_recovery: bool = True
    #: Alarms notify the stage's alarm topic; without, they only show on the dashboards.
    alarm_actions: bool = True
    #: E-mail addresses subscribed to the stage's alarm topic.
    alarm_emails: tuple[str, ...] = ()
    #: Whether domains get the provisioned concurrency they are configured with.
    provisioned_concurrency: bool = False
    #: A traffic shift for every domain of this stage, instead of each domain's own.
    deployment: Deployment | None = None
    #: The JWT authorizer's issuer and audience; None: the platform's `TokenPolicy`.
    token_issuer: str | None = None
    token_audience: str | None = None
    #: The issuer's JWK set, which a WebSocket `$connect` token is verified with. None: the
    #: issuer's own (`<token_issuer>/auth/jwks.json`, auth_core's) when it is an https URL.
    token_jwks_url: str | None = Field(None, pattern=r"^https://")
    #: The address e-mail is sent from, and the SES identity (that address, or its domain)
    #: the stack creates and grants sending as: needed by a stage with a domain that sends mail.
    mail_from: str | None = Field(None, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    mail_identity: str | None = None
    #: The app's public https URL, where links in e-mails lead (`TCTF_APP_URL` of every
    #: function): needed by every stage.
    app_url: str | None = Field(None, pattern=r"^https://[^/\s]+(/[^\s]*)?$")
    #: The origins (scheme and host, as a browser sends `Origin`) whose browser apps may call
    #: the stage's HTTP APIs: API Gateway answers their preflights. None by default.
    cors_origins: tuple[str, ...] = ()

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, origins: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(cors_origin(origin) for origin in origins))

    def jwks_url(self, jwks_path: str) -> str | None:
        """Where the token issuer publishes its keys, if the stage says or its issuer is a URL."""
        if self.token_jwks_url:
            return self.token_jwks_url
        if self.token_issuer and self.token_issuer.startswith("https://"):
            return self.token_issuer.rstrip("/") + jwks_path
        return None

    def sender_identity(self) -> str | None:
        """The SES identity sending as `mail_from`: `mail_identity`, else the address."""
        return self.mail_identity or self.mail_from


class DeployConfig(_Strict):
    """The whole file."""

    stages: dict[str, Stage] = {}
    #: Every domain's operations unless `domains` names it.
    defaults: DomainOperations = DomainOperations()
    domains: dict[str, DomainOperations] = {}

    def stage(self, name: str | None) -> Stage:
        """The named stage; None: an unstaged synth, the defaults (data kept, no actions)."""
        if name is None:
            return UNSTAGED
        try:
            return self.stages[name]
        except KeyError:
            raise ConfigurationError(
                f"no stage {name!r} in the deployment configuration "
                f"(known: {', '.join(self.stages) or 'none'})"
            ) from None

    def operations(self, domain: str) -> DomainOperations:
        return self.domains.get(domain, self.defaults)


#: A synth without `--stage`: the bare app name, `tctf up`'s shape, nothing notified, mail
#: sent as the mailer's default sender (what `tctf run --aws` sends as), links to an
#: example address.
UNSTAGED = Stage(
    alarm_actions=False, mail_from="no-reply@example.com", app_url="https://app.example.com"
)


def load_deploy_config(path: Path | None = None) -> DeployConfig:
    """The configuration in `path` (default `deploy.toml`); defaults when that is absent."""
    path = path or DEFAULT_CONFIG
    if not path.exists():
        if path != DEFAULT_CONFIG:
            raise ConfigurationError(f"deployment configuration {path} does not exist")
        return DeployConfig()
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise ConfigurationError(f"{path}: not TOML: {error}") from None
    return parse_deploy_config(raw, source=str(path))


def parse_deploy_config(raw: Mapping[str, Any], source: str = "configuration") -> DeployConfig:
    """A `DeployConfig` from the file's tables; a domain's table overrides the defaults'."""
    defaults = raw.get("defaults", {})
    domains = {
        name: _merge(defaults, table) for name, table in dict(raw.get("domains", {})).items()
    }
    try:
        return DeployConfig.model_validate({**raw, "domains": domains})
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        raise ConfigurationError(f"{source}: {problems}") from None


def _merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged
