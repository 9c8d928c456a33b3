"""Lambda cold start and warm per-record cost: each domain's function beside a Powertools peer.

The stateless function is the benchmark's own domain, `bench_mailer` (written into a scratch
copy of the repository's layout, below): one task, SEND_EMAIL, on its own queue, whose
handler logs and counts what it sent and nothing more, and no table, so its handled records
live in an idempotency table of their own (decision 0010). It is what this benchmark has
always measured; messaging_consumers now keeps a table and calls SES, which is another cost.
users and auth_core are the domains with a table.

Cold start: a fresh interpreter imports the handler module from the domain's package, as
`tctf package DOMAIN` builds it for Lambda (its third-party wheels included), initialises
(publisher, SDK clients against a moto server on loopback) and handles a 1-record SQS event;
wall time from the parent too (minus a bare `python -c pass`; it adds interpreter start and
exit, which a Lambda cold start does not pay at exit). Warm: a 10-record SQS batch, per
record, in-process, with the DynamoDB calls our function makes per batch; bench_mailer's
idempotency table is emptied between two invocations, untimed (moto copies a whole table for
each item of a transaction, so there a transaction's cost grows with the table; DynamoDB's
does not, and a single PutItem's does not on either). The peer is a Powertools + boto3
handler doing the same work: AsyncBatchProcessor (and BatchProcessor), the envelope parsed
into a pydantic model, a boto3 SQS client made at init, and for the domain with a table a
DynamoDB client too. It runs from this environment's site-packages, as Lambda's runtime
provides boto3. Both log and measure as in production, in Lambda's environment
(`AWS_LAMBDA_FUNCTION_NAME` set): JSON lines with Lambda's keys and EMF metrics on stdout —
ours by default; the peer with Powertools' Logger (`inject_lambda_context`) and Metrics
(`log_metrics`), per record the handler's line and metric and a delivery line with a count
and a duration, as ours writes.

    .venv/bin/python benchmarks/lambda_cold_start.py [--runs 7] [--batches 2000] [--warm-only]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import py_compile
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
REGION = "us-east-1"
ACCOUNT = "123456789012"
APP = "bench"
#: The stateless domain measured, and its code: written into the scratch root's domains/.
STATELESS = "bench_mailer"
STATELESS_APP = """\"\"\"bench_mailer: sends e-mail as tasks, keeping no table.\"\"\"

from bus import Context, Domain, Task


class SendEmail(Task):
    type = "SEND_EMAIL"
    domain = "bench_mailer"

    to: str
    template: str
    name: str


domain = Domain("bench_mailer", sends=[SendEmail])


@domain.task(SendEmail)
async def deliver(task: SendEmail, ctx: Context) -> None:
    ctx.log.info("email sent", extra={"to": task.to, "template": task.template})
    ctx.metrics.add("EmailsSent")
"""

PEER = r"""
import asyncio, os, time
import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import (
    AsyncBatchProcessor, BatchProcessor, EventType,
    async_process_partial_response, process_partial_response,
)
from pydantic import BaseModel

class SendEmail(BaseModel):
    to: str
    template: str
    name: str

class Envelope(BaseModel):
    specversion: str
    id: str
    source: str
    type: str
    time: str
    dataversion: int
    correlationid: str
    data: SendEmail

logger = Logger(service="bench_mailer")
metrics = Metrics(namespace="bench", service="bench_mailer")
async_processor = AsyncBatchProcessor(event_type=EventType.SQS)
processor = BatchProcessor(event_type=EventType.SQS)
sqs = boto3.client("sqs", endpoint_url=os.environ.get("AWS_ENDPOINT_URL"))
if os.environ.get("PEER_TABLE"):
    dynamodb = boto3.client("dynamodb", endpoint_url=os.environ.get("AWS_ENDPOINT_URL"))
sent = 0

def handle(record):
    # What tctf logs and measures of a delivery: the handler's own line and metric, then
    # the delivery line and the per-handler count and duration.
    global sent
    started = time.perf_counter()
    envelope = Envelope.model_validate_json(record.body)
    logger.info("email sent", extra={"to": envelope.data.to, "template": envelope.data.template})
    metrics.add_metric(name="EmailsSent", unit=MetricUnit.Count, value=1)
    sent += 1
    logger.info("handled SEND_EMAIL", extra={
        "correlation_id": envelope.correlationid, "event_id": envelope.id,
        "event_type": envelope.type, "handler": "bench_mailer.deliver", "outcome": "handled",
    })
    metrics.add_metric(name="Processed", unit=MetricUnit.Count, value=1)
    metrics.add_metric(
        name="Duration", unit=MetricUnit.Milliseconds,
        value=(time.perf_counter() - started) * 1000,
    )

async def async_record_handler(record):
    handle(record)

def record_handler(record):
    handle(record)

@metrics.log_metrics
@logger.inject_lambda_context
def handler(event, context):
    return async_process_partial_response(
        event=event, record_handler=async_record_handler, processor=async_processor,
        context=context,
    )

@metrics.log_metrics
@logger.inject_lambda_context
def sync_handler(event, context):
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
"""

COLD = r"""
import json, sys, time
start = time.perf_counter()
cpu_start = time.process_time()
sys.path.insert(0, sys.argv[1])
{load}
loaded = time.perf_counter()
class Context:
    function_name = "bench"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:bench"
    aws_request_id = "bench"
    memory_limit_in_mb = 1769
    def get_remaining_time_in_millis(self):
        return 60_000
response = handler(json.loads(sys.argv[2]), Context())
done = time.perf_counter()
cpu = time.process_time() - cpu_start
timings = {{"init": loaded - start, "first": done - loaded, "cpu": cpu}}
print(json.dumps({{**timings, "response": response}}))
"""
OURS_LOAD = "from adapters.lambda_.entry import handler"
PEER_LOAD = "import peer_handler; handler = peer_handler.handler"


class Context:
    """Lambda's context object, with plenty of time left."""

    function_name = "bench"
    function_version = "$LATEST"
    invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:bench"
    aws_request_id = "bench"
    memory_limit_in_mb = 1769

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def send_email_body(index: int) -> str:
    return json.dumps(
        {
            "specversion": "1.0",
            "id": str(uuid.uuid4()),
            "source": "bench_mailer",
            "type": "SEND_EMAIL",
            "time": "2026-01-01T00:00:00.000Z",
            "dataversion": 1,
            "correlationid": f"c-{index}",
            "datacontenttype": "application/json",
            "data": {"to": f"user{index}@example.com", "template": "welcome", "name": "Ada"},
        }
    )


def sqs_event(bodies: list[str], queue: str) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": str(uuid.uuid4()),
                "receiptHandle": "handle",
                "body": body,
                "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{queue}",
                "awsRegion": REGION,
            }
            for body in bodies
        ]
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def provision(endpoint: str) -> None:
    """The queues, DLQs and topic the functions address, as infrastructure code would."""
    import boto3

    sqs = boto3.client("sqs", endpoint_url=endpoint, region_name=REGION)
    for domain in ("users", STATELESS, "auth_core"):
        for purpose in ("events", "tasks"):
            for suffix in ("", "-dlq"):
                sqs.create_queue(QueueName=f"{APP}-{domain}-{purpose}{suffix}")
    boto3.client("sns", endpoint_url=endpoint, region_name=REGION).create_topic(
        Name=f"{APP}-events"
    )
    # bench_mailer keeps no table, so its handled events are recorded in one of their own
    # (docs/decisions/0010), which its function finds at init as it would on AWS.
    create_idempotency_table(boto3.client("dynamodb", endpoint_url=endpoint, region_name=REGION))
    # auth_core's signing secret, which its stack generates and its function reads at init.
    boto3.client("secretsmanager", endpoint_url=endpoint, region_name=REGION).create_secret(
        Name=SIGNING_SECRET, SecretString=secrets.token_urlsafe(48)
    )


SIGNING_SECRET = f"{APP}-auth_core-signing"


IDEMPOTENCY_TABLE = f"{APP}-{STATELESS}-idempotency"


def create_idempotency_table(dynamodb: Any) -> None:
    dynamodb.create_table(
        TableName=IDEMPOTENCY_TABLE,
        KeySchema=[
            {"AttributeName": "PK", "KeyType": "HASH"},
            {"AttributeName": "SK", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "PK", "AttributeType": "S"},
            {"AttributeName": "SK", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )


def empty_idempotency_table(dynamodb: Any) -> None:
    """Start the next invocation on an empty table, as a fresh table would be on DynamoDB."""
    dynamodb.delete_table(TableName=IDEMPOTENCY_TABLE)
    create_idempotency_table(dynamodb)


def environment(endpoint: str, domain: str, peer_dir: Path) -> dict[str, str]:
    return {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ENDPOINT_URL": endpoint,
        "TCTF_DOMAIN": domain,
        "TCTF_APP": APP,
        "TCTF_TRANSPORT": "sns",
        "TCTF_TOPIC_ARN": f"arn:aws:sns:{REGION}:{ACCOUNT}:{APP}-events",
        "PYTHONPATH": str(peer_dir),
        # As Lambda sets it: both write JSON log lines and EMF metrics to stdout.
        "AWS_LAMBDA_FUNCTION_NAME": f"{APP}-{domain}",
        "_X_AMZN_TRACE_ID": "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1",
        **(
            {"TCTF_SECRETS": json.dumps({"signing": SIGNING_SECRET})}
            if domain == "auth_core"
            else {}
        ),
    }


def run_cold(code: str, args: list[str], env: dict[str, str]) -> tuple[float, dict[str, Any]]:
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", code, *args], env=env, capture_output=True, text=True
    )
    if out.returncode != 0:
        raise RuntimeError(f"cold start failed:\n{out.stderr}")
    wall = time.perf_counter() - start
    payload: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    assert payload["response"] == {"batchItemFailures": []}, payload  # the work was done
    return wall, payload


PEER_SQS = "Powertools + boto3"
PEER_TABLE = "Powertools + boto3, with a DynamoDB client"
PRUNED = ", botocore pruned as ours"
#: Each contender's peers in the ratio columns: the Powertools handler doing the same work,
#: as deployed (the runtime's botocore) and given the botocore our package carries.
PEERS = {
    "tctf bench_mailer (stateless)": (PEER_SQS, PEER_SQS + PRUNED),
    "tctf users (with its table)": (PEER_TABLE, PEER_TABLE + PRUNED),
    "tctf auth_core (with its table)": (PEER_TABLE, PEER_TABLE + PRUNED),
}


def pruned_botocore(out: Path) -> Path:
    """A copy of this environment's botocore (bytecode included) pruned as `tctf package`
    prunes it, for a peer to import first: what the pruning alone is worth."""
    import botocore

    from tctf.packaging import BOTOCORE_SERVICES, prune_botocore_data

    shutil.copytree(Path(botocore.__file__).parent, out / "botocore")
    prune_botocore_data(out / "botocore" / "data", BOTOCORE_SERVICES)
    return out


def scratch_root(out: Path) -> Path:
    """The repository's layout with `bench_mailer` among its domains: the kernel, adapters
    and business domains linked, not copied, for `tctf package` to scan and copy from."""
    root = out / "root"
    (root / "domains" / STATELESS).mkdir(parents=True)
    for package in ("bus", "adapters"):
        (root / package).symlink_to(ROOT / package, target_is_directory=True)
    shutil.copy(ROOT / "domains" / "__init__.py", root / "domains" / "__init__.py")
    for domain in (p for p in (ROOT / "domains").iterdir() if (p / "app.py").is_file()):
        (root / "domains" / domain.name).symlink_to(domain, target_is_directory=True)
    (root / "domains" / STATELESS / "__init__.py").write_text("")
    (root / "domains" / STATELESS / "app.py").write_text(STATELESS_APP)
    return root


def load_stateless(root: Path) -> None:
    """Make `domains.bench_mailer` importable here, as the warm run builds its function."""
    import domains

    domains.__path__.append(str(root / "domains"))


def build_packages(
    out: Path, names: tuple[str, ...] = (STATELESS, "users", "auth_core")
) -> dict[str, Path]:
    """Each domain's function as `tctf package` builds it (no zip), wheels for Lambda's
    platform fetched by pip."""
    from tctf.packaging import package

    root = scratch_root(out)
    return {domain: package(domain, out, zip=False, root=root) for domain in names}


def cold_starts(
    endpoint: str, runs: int, peer_dir: Path, packages: dict[str, Path], pruned: Path
) -> dict[str, dict[str, float]]:
    event = json.dumps(sqs_event([send_email_body(0)], f"{APP}-{STATELESS}-tasks"))
    users_event = json.dumps(sqs_event([send_email_body(0)], f"{APP}-users-events"))
    auth_core_event = json.dumps(sqs_event([send_email_body(0)], f"{APP}-auth_core-events"))
    ours = COLD.format(load=OURS_LOAD)
    peer = COLD.format(load=PEER_LOAD)
    contenders: dict[str, tuple[str, list[str], str, dict[str, str]]] = {
        "python -c pass": ("pass", [], STATELESS, {}),
        "tctf bench_mailer (stateless)": (ours, [str(packages[STATELESS]), event], STATELESS, {}),
        "tctf users (with its table)": (ours, [str(packages["users"]), users_event], "users", {}),
        "tctf auth_core (with its table)": (
            ours,
            [str(packages["auth_core"]), auth_core_event],
            "auth_core",
            {},
        ),
        PEER_SQS: (peer, [str(peer_dir), event], STATELESS, {}),
        PEER_TABLE: (peer, [str(peer_dir), event], STATELESS, {"PEER_TABLE": "1"}),
        PEER_SQS + PRUNED: (peer, [str(peer_dir), event], STATELESS, {"PRUNED": "1"}),
        PEER_TABLE + PRUNED: (
            peer,
            [str(peer_dir), event],
            STATELESS,
            {"PEER_TABLE": "1", "PRUNED": "1"},
        ),
    }
    samples: dict[str, list[tuple[float, dict[str, Any]]]] = {name: [] for name in contenders}
    for _ in range(runs):
        for name, (code, args, domain, extra) in contenders.items():
            env = {**environment(endpoint, domain, peer_dir), **extra}
            if extra.get("PRUNED"):
                env["PYTHONPATH"] = f"{pruned}{os.pathsep}{env['PYTHONPATH']}"
            if code == "pass":
                start = time.perf_counter()
                subprocess.run([sys.executable, "-c", "pass"], env=env, check=True)
                samples[name].append((time.perf_counter() - start, {}))
            else:
                samples[name].append(run_cold(code, args, env))
    results: dict[str, dict[str, float]] = {}
    for name, runs_of in samples.items():
        results[name] = {
            "wall": statistics.median(w for w, _ in runs_of),
            "init": statistics.median(p.get("init", 0.0) for _, p in runs_of),
            "first": statistics.median(p.get("first", 0.0) for _, p in runs_of),
            "cpu": statistics.median(p.get("cpu", 0.0) for _, p in runs_of),
        }
    return results


def warm(
    endpoint: str, batches: int, repeats: int, peer_dir: Path
) -> tuple[dict[str, float], float]:
    """Microseconds per record over `batches` 10-record invocations, median of `repeats`;
    and the DynamoDB calls our function makes per invocation."""
    import asyncio

    import boto3

    os.environ.update(environment(endpoint, STATELESS, peer_dir))
    sys.path.insert(0, str(peer_dir))
    import peer_handler

    from adapters.aws.queues import QueueTransport
    from adapters.lambda_.boot import build

    ours = build(os.environ)
    calls: list[str] = []
    transport = ours.publisher
    assert isinstance(transport, QueueTransport)
    client = asyncio.run(transport.client("dynamodb"))  # made at init: only fetched
    client.meta.events.register("before-call.dynamodb", lambda model, **_: calls.append(model.name))
    dynamodb = boto3.client("dynamodb", endpoint_url=endpoint, region_name=REGION)
    context = Context()
    queue = f"{APP}-{STATELESS}-tasks"

    def events() -> list[dict[str, Any]]:
        return [
            sqs_event([send_email_body(i * 10 + j) for j in range(10)], queue)
            for i in range(batches)
        ]

    contenders = {
        "tctf bench_mailer (stateless)": ours,
        "Powertools AsyncBatchProcessor": peer_handler.handler,
        "Powertools BatchProcessor": peer_handler.sync_handler,
    }
    timings: dict[str, list[float]] = {name: [] for name in contenders}
    with _stdout_discarded():  # both write every log line and metric there, as in Lambda
        _time_warm(contenders, timings, events, repeats, batches, context, ours, dynamodb)
    ours.close()
    per_batch = len(calls) / (repeats * batches)
    return {name: statistics.median(values) for name, values in timings.items()}, per_batch


@contextmanager
def _stdout_discarded() -> Iterator[None]:
    sys.stdout.flush()
    saved = os.dup(1)
    with open(os.devnull, "w") as devnull:
        os.dup2(devnull.fileno(), 1)
        try:
            yield
        finally:
            sys.stdout.flush()
            os.dup2(saved, 1)
            os.close(saved)


def _time_warm(
    contenders: dict[str, Any],
    timings: dict[str, list[float]],
    events: Any,
    repeats: int,
    batches: int,
    context: Context,
    ours: Any,
    dynamodb: Any,
) -> None:
    for _ in range(repeats):
        for name, handler in contenders.items():
            prepared = events()
            elapsed = 0.0
            for event in prepared:
                if handler is ours:
                    empty_idempotency_table(dynamodb)
                start = time.perf_counter()
                response = handler(event, context)
                elapsed += time.perf_counter() - start
                assert response == {"batchItemFailures": []}, (name, response)
            timings[name].append(elapsed / (batches * 10) * 1e6)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="cold starts per contender")
    parser.add_argument("--batches", type=int, default=2000, help="warm 10-record invocations")
    parser.add_argument("--repeats", type=int, default=5, help="warm measurements per contender")
    parser.add_argument(
        "--warm-only",
        action="store_true",
        help="skip the packages and cold starts (to compare two checkouts' warm cost in turns)",
    )
    args = parser.parse_args()
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's per-request access log

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="tctf-bench-") as scratch:
        peer_dir = Path(scratch)
        (peer_dir / "peer_handler.py").write_text(PEER)
        py_compile.compile(str(peer_dir / "peer_handler.py"))  # as pip would, fairly
        try:
            provision(endpoint)
            cold: dict[str, dict[str, float]] = {}
            load_stateless(scratch_root(peer_dir / "stateless"))
            if not args.warm_only:
                packages = build_packages(peer_dir / "dist")
                pruned = pruned_botocore(peer_dir / "pruned")
                cold = cold_starts(endpoint, args.runs, peer_dir, packages, pruned)
            per_record, calls = warm(endpoint, args.batches, args.repeats, peer_dir)
        finally:
            server.stop()
    report(cold, per_record, calls, args)


def report(
    cold: dict[str, dict[str, float]], per_record: dict[str, float], calls: float, args: Any
) -> None:
    if cold:
        report_cold(cold, args)
    async_peer = per_record["Powertools AsyncBatchProcessor"]
    print(f"Warm, 10-record SQS batches x {args.batches}, median of {args.repeats} (µs per record)")
    print("| contender | µs/record | ratio to AsyncBatchProcessor |")
    print("|---|---|---|")
    for name, micros in per_record.items():
        print(f"| {name} | {micros:.2f} | {micros / async_peer:.2f}x |")
    print(f"tctf bench_mailer: {calls:g} DynamoDB calls per 10-record invocation")


def report_cold(cold: dict[str, dict[str, float]], args: Any) -> None:
    base = cold["python -c pass"]["wall"]

    def total(name: str) -> float:
        return cold[name]["init"] + cold[name]["first"]

    print(f"Cold start, median of {args.runs} fresh interpreters (ms)")
    print("cold start = import + init + first invocation, timed inside the new interpreter")
    print("cpu = the same span in CPU seconds of the process: what other load cannot inflate")
    print(
        "| contender | cold start | import + init | first invocation | wall - pass "
        "| ratio to peer | ratio to peer, botocore pruned | cpu | cpu ratio to peer |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for name, c in cold.items():
        if name == "python -c pass":
            continue
        peers = PEERS.get(name, ())
        ratios = [f"{total(name) / total(peer):.2f}x" for peer in peers]
        cpu_ratio = f"{c['cpu'] / cold[peers[0]]['cpu']:.2f}x" if peers else ""
        print(
            f"| {name} | {total(name) * 1e3:.0f} | {c['init'] * 1e3:.0f} "
            f"| {c['first'] * 1e3:.1f} | {(c['wall'] - base) * 1e3:.0f} "
            f"| {' | '.join(ratios or ['', ''])} | {c['cpu'] * 1e3:.0f} | {cpu_ratio} |"
        )
    print(
        "peer: bench_mailer's is Powertools + boto3; users' and auth_core's also make a "
        "DynamoDB client"
    )
    print(f"(python -c pass: {base * 1e3:.0f} ms)")
    print()


if __name__ == "__main__":
    main()
