"""How a domain's Lambda is configured: environment variables read once, at init."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import orjson

from bus import ConfigurationError

TransportName = Literal["sns", "eventbridge", "memory"]
_TRANSPORTS = ("sns", "eventbridge", "memory")


@dataclass(frozen=True, slots=True)
class LambdaSettings:
    """Everything the entry point reads from the environment; each field names its variable."""

    #: TCTF_DOMAIN: the domain this function runs (`domains/<name>/app.py`). Required.
    domain: str
    #: TCTF_TRANSPORT: where handlers publish: "sns" (SNS topic, tasks to SQS), "eventbridge"
    #: (event bus, tasks to SQS) or "memory" (in-process, for local runs). Default "sns".
    transport: TransportName = "sns"
    #: TCTF_TOPIC_ARN: the platform topic, for transport "sns".
    topic_arn: str | None = None
    #: TCTF_EVENT_BUS: the event bus name or ARN, for transport "eventbridge".
    event_bus: str | None = None
    #: AWS_ENDPOINT_URL: an AWS-compatible endpoint (moto, LocalStack); None: AWS itself.
    endpoint_url: str | None = None
    #: AWS_REGION (set by Lambda) or AWS_DEFAULT_REGION; None: the SDK's default chain.
    region: str | None = None
    #: TCTF_APP: the platform's name, the prefix of every queue and topic. Default "tctf".
    app: str = "tctf"
    #: TCTF_DEAD_LETTER_QUEUE: the DLQ (name or URL) for parked records of SNS and EventBridge
    #: invocations. SQS records go to their own queue's `-dlq` whatever this says. Default:
    #: the domain's events DLQ, `<app>-<domain>-events-dlq`.
    dead_letter_queue: str | None = None
    #: TCTF_OUTBOX_DEAD_LETTER_QUEUE: the DLQ (name or URL) for outbox items of the table's
    #: stream that can never be published. Default: the topology's `<app>-<domain>-outbox-dlq`,
    #: which every domain with a table has.
    outbox_dead_letter_queue: str | None = None
    #: TCTF_PROVISION: "1" creates missing queues, topic or bus on first publish (local runs
    #: on moto); default "0": only look them up, as deployed by infrastructure code.
    provision: bool = False
    #: TCTF_TABLE_NAME: the domain's DynamoDB table, for a domain that keeps state. Default:
    #: the topology's name for it, `<app>-<domain>`.
    table_name: str | None = None
    #: TCTF_DOMAIN_URLS: a JSON object mapping each domain this one calls (`ctx.client`) to
    #: its API's base URL; calls are signed with the function's role. Default: none.
    domain_urls: Mapping[str, str] = field(default_factory=dict)
    #: TCTF_SECRETS: a JSON object mapping each secret the domain declares
    #: (`Domain(secrets=...)`) to its Secrets Manager name or ARN (`tctf synth` sets it); read
    #: once at init into `TCTF_SECRET_<NAME>` (`bus.secrets`). Default: none.
    secrets: Mapping[str, str] = field(default_factory=dict)
    #: TCTF_SAFETY_MARGIN_MS: stop taking records when fewer milliseconds than this remain
    #: before the function's timeout; the rest are reported failed. Default 2000.
    safety_margin_ms: int = 2000
    #: TCTF_PUBLISH_DEADLINE_S: the longest a publish keeps retrying (throttling, an
    #: unreachable endpoint) before the record is reported failed; each invocation also
    #: caps it at the time left before the safety margin. Default 10.
    publish_deadline_s: float = 10.0
    #: TCTF_OUTBOX_SWEEP_AGE_S: a scheduled sweep publishes the outbox events committed at
    #: least this many seconds ago; younger ones are left to the table's stream. Longer than
    #: any stream retry of a healthy system. Default 900 (15 minutes).
    outbox_sweep_age_s: float = 900.0
    #: TCTF_WEBSOCKET_ENDPOINT: the management endpoint of the domain's WebSocket API
    #: (`https://<api-id>.execute-api.<region>.amazonaws.com/<stage>`; `tctf synth` sets
    #: it), where `ctx.connections` posts. Default: none, and posting is refused.
    websocket_endpoint: str | None = None
    #: TCTF_TOKEN_JWKS_URL: the token issuer's JWK set (auth_core's `/auth/jwks.json`), which
    #: a WebSocket's `$connect` token is verified with. Default: none, and every connection
    #: is refused (401).
    jwks_url: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> LambdaSettings:
        domain = env.get("TCTF_DOMAIN", "").strip()
        if not domain:
            raise ConfigurationError(
                "TCTF_DOMAIN is not set: name the domain this function runs, e.g. TCTF_DOMAIN=users"
            )
        transport = env.get("TCTF_TRANSPORT", "sns").strip().lower()
        if transport not in _TRANSPORTS:
            raise ConfigurationError(
                f"TCTF_TRANSPORT={transport!r} is not one of {', '.join(_TRANSPORTS)}"
            )
        margin = env.get("TCTF_SAFETY_MARGIN_MS", "2000")
        if not margin.isdigit():
            raise ConfigurationError(f"TCTF_SAFETY_MARGIN_MS must be milliseconds, got {margin!r}")
        app = env.get("TCTF_APP") or "tctf"
        deadline = env.get("TCTF_PUBLISH_DEADLINE_S", "10")
        try:
            publish_deadline_s = float(deadline)
        except ValueError:
            publish_deadline_s = -1.0
        if not publish_deadline_s > 0:
            raise ConfigurationError(
                f"TCTF_PUBLISH_DEADLINE_S must be a positive number of seconds, got {deadline!r}"
            )
        sweep_age = env.get("TCTF_OUTBOX_SWEEP_AGE_S", "900")
        try:
            outbox_sweep_age_s = float(sweep_age)
        except ValueError:
            outbox_sweep_age_s = -1.0
        if not (math.isfinite(outbox_sweep_age_s) and outbox_sweep_age_s >= 0):
            raise ConfigurationError(
                f"TCTF_OUTBOX_SWEEP_AGE_S must be a number of seconds, 0 or more, got {sweep_age!r}"
            )
        return cls(
            domain=domain,
            domain_urls=_domain_urls(env.get("TCTF_DOMAIN_URLS", "")),
            secrets=_secrets(env.get("TCTF_SECRETS", "")),
            transport=transport,  # type: ignore[arg-type]
            topic_arn=env.get("TCTF_TOPIC_ARN") or None,
            event_bus=env.get("TCTF_EVENT_BUS") or None,
            endpoint_url=env.get("AWS_ENDPOINT_URL") or None,
            region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None,
            app=app,
            dead_letter_queue=env.get("TCTF_DEAD_LETTER_QUEUE") or f"{app}-{domain}-events-dlq",
            outbox_dead_letter_queue=env.get("TCTF_OUTBOX_DEAD_LETTER_QUEUE") or None,
            provision=env.get("TCTF_PROVISION", "0") in ("1", "true", "yes"),
            table_name=env.get("TCTF_TABLE_NAME") or None,
            safety_margin_ms=int(margin),
            publish_deadline_s=publish_deadline_s,
            outbox_sweep_age_s=outbox_sweep_age_s,
            websocket_endpoint=env.get("TCTF_WEBSOCKET_ENDPOINT") or None,
            jwks_url=env.get("TCTF_TOKEN_JWKS_URL") or None,
        )


def _domain_urls(text: str) -> dict[str, str]:
    if not text.strip():
        return {}
    try:
        urls = orjson.loads(text)
    except orjson.JSONDecodeError:
        urls = None
    if not isinstance(urls, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and v.startswith(("https://", "http://"))
        for k, v in urls.items()
    ):
        raise ConfigurationError(
            "TCTF_DOMAIN_URLS must be a JSON object of domain names to API URLs, e.g. "
            '{"auth_password": "https://abc.execute-api.eu-west-1.amazonaws.com"}'
        )
    return urls


def _secrets(text: str) -> dict[str, str]:
    if not text.strip():
        return {}
    try:
        secrets = orjson.loads(text)
    except orjson.JSONDecodeError:
        secrets = None
    if not isinstance(secrets, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and v for k, v in secrets.items()
    ):
        raise ConfigurationError(
            "TCTF_SECRETS must be a JSON object of the domain's secret names to Secrets "
            'Manager names or ARNs, e.g. {"signing": "tctf-prod-auth_core-signing"}'
        )
    return secrets
