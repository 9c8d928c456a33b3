"""The `tctf` command: run the platform, show its topology and contracts, provision, inspect
and redrive dead letters, package, synthesize, name the domains a change affects and write
their pipelines."""

from __future__ import annotations

import argparse
import errno
import math
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any, NoReturn

import anyio
import orjson

from bus.errors import BusError
from tctf.errors import AwsUnavailable, MissingExtraError, TctfError, UsageError
from tctf.traces import DEFAULT_SPAN_FILE

#: The extra (`pip install -e '.[EXTRA]'`) each command needs beyond the base install, as the
#: README's table says; `topology` and every `--help` need none.
EXTRAS = {
    "run": "local",
    "run --aws": "aws-local",
    "up": "aws",
    "dlq": "aws",
    "package": "aws",
    "synth": "cdk",
}
_FIRST_PARTY = frozenset({"bus", "domains", "adapters", "tctf"})
#: Exit statuses: a refused command, output closed by its reader (128 + SIGPIPE), Ctrl-C.
USAGE_STATUS, BROKEN_PIPE_STATUS, INTERRUPTED_STATUS = 2, 141, 130
#: What `--log-level` accepts (any case).
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        status = _dispatch(argv)
        sys.stdout.flush()  # a reader gone early (`| head`) is seen here, not at exit
        return status
    except (Exception, KeyboardInterrupt) as raised:
        return _failed(_command(argv), raised)


def _dispatch(argv: list[str]) -> int:
    if argv[:1] == ["package"]:  # its own options, parsed by tctf.packaging
        from tctf.packaging import main as package

        return package(argv[1:])
    if argv[:1] == ["synth"]:  # its own options, parsed by tctf.synth
        from tctf.synth import main as synth

        return synth(argv[1:])
    args = _parser().parse_args(argv)
    result: int = args.command(args)
    return result


def _failed(command: str, raised: BaseException) -> int:
    """One line on stderr and a non-zero status for what a user can mend; a traceback for
    anything else, which is a defect."""
    error = _sole(raised)
    if isinstance(error, KeyboardInterrupt):
        return INTERRUPTED_STATUS
    if isinstance(error, BrokenPipeError):
        # Nothing more can reach the reader; stdout goes nowhere so exit's flush is quiet.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return BROKEN_PIPE_STATUS
    missing = error.name if isinstance(error, ModuleNotFoundError) else None
    if missing and missing.partition(".")[0] not in _FIRST_PARTY and command in EXTRAS:
        error = MissingExtraError(EXTRAS[command], missing.partition(".")[0])
    error = _aws_unavailable(error) or error
    if isinstance(error, (TctfError, BusError)):
        print(f"{' '.join(['tctf', command]).strip()}: {error}", file=sys.stderr)
        return USAGE_STATUS
    raise raised


def _aws_unavailable(error: BaseException) -> AwsUnavailable | None:
    """What a user mends in their AWS setup, told in one line: the SDK's error, if it is
    one (botocore is looked up, never imported: most commands do not load it)."""
    sdk = sys.modules.get("botocore.exceptions")
    if sdk is None:
        return None
    if isinstance(error, sdk.NoCredentialsError | sdk.PartialCredentialsError):
        return AwsUnavailable(
            f"no AWS credentials found ({error}): configure them (AWS_PROFILE, "
            "AWS_ACCESS_KEY_ID, `aws configure`), or pass --endpoint-url of a local endpoint"
        )
    if isinstance(
        error, sdk.EndpointConnectionError | sdk.ConnectTimeoutError | sdk.ReadTimeoutError
    ):
        return AwsUnavailable(f"cannot reach the AWS endpoint: {error}")
    if isinstance(error, sdk.ClientError | sdk.BotoCoreError):
        return AwsUnavailable(f"AWS refused the call: {error}")
    return None


def _sole(error: BaseException) -> BaseException:
    """The one error a task group's exception group wraps, or the error itself."""
    while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
        error = error.exceptions[0]
    return error


def _command(argv: Sequence[str]) -> str:
    """The command as its messages name it: `run`, `run --aws`, `dlq`... ('' if none)."""
    name = argv[0] if argv and not argv[0].startswith("-") else ""
    aws = any(arg == "--aws" or arg.startswith("--endpoint-url") for arg in argv)
    return "run --aws" if name == "run" and aws else name


def _positive_seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        raise argparse.ArgumentTypeError(f"{text!r} is not more than 0 seconds")
    return seconds


def _cors_origin(text: str) -> str:
    from adapters.http.cors import cors_origin

    try:
        return cors_origin(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port: 0 to 65535 (0 for none)")
    return port


class _Parser(argparse.ArgumentParser):
    """argparse, with a mistake told in one line instead of the usage and the mistake."""

    def error(self, message: str) -> NoReturn:
        self.exit(USAGE_STATUS, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="tctf", description=__doc__)
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run every domain in one process")
    _domains_option(run)
    run.add_argument("--host", default="127.0.0.1", help="HTTP address (default 127.0.0.1)")
    run.add_argument("--port", type=_port, default=8000, help="HTTP port; 0 for none (8000)")
    run.add_argument(
        "--cors-origin",
        dest="cors_origins",
        action="append",
        type=_cors_origin,
        default=[],
        metavar="ORIGIN",
        help="let a browser app of ORIGIN (scheme://host[:port]) call the routes, as a "
        "stage's cors_origins do; repeatable (default: none)",
    )
    run.add_argument("--seed", type=int, help="seed the ids the platform makes (and faults)")
    run.add_argument(
        "--log-level",
        type=str.upper,
        choices=LOG_LEVELS,
        help="DEBUG, INFO, WARNING, ERROR or CRITICAL (default: LOG_LEVEL, else INFO)",
    )
    run.add_argument(
        "--metrics-interval",
        type=_positive_seconds,
        default=10.0,
        help="seconds between EMF metrics documents printed to stdout (10)",
    )
    run.add_argument(
        "--trace",
        action="store_true",
        help="also print every OpenTelemetry span to stderr",
    )
    run.add_argument(
        "--spans",
        type=Path,
        default=DEFAULT_SPAN_FILE,
        metavar="PATH",
        help=f"append each span to this JSON-lines file, read by `tctf trace` "
        f"(default {DEFAULT_SPAN_FILE})",
    )
    run.add_argument("--no-spans", action="store_true", help="keep no span file")
    _aws_options(run)
    run.add_argument(
        "--aws",
        action="store_true",
        help="run on SNS/SQS/EventBridge/DynamoDB APIs (embedded moto server "
        "unless --endpoint-url is given)",
    )
    run.set_defaults(command=_run)

    topology = commands.add_parser("topology", help="print queues, subscriptions and routes")
    _domains_option(topology)
    topology.add_argument("--json", action="store_true", help="print JSON instead of a table")
    topology.set_defaults(command=_topology)

    openapi = commands.add_parser("openapi", help="write the domains' OpenAPI 3.1 document")
    _domains_option(openapi)
    _output_option(openapi, "openapi.json")
    openapi.set_defaults(command=_openapi)

    events = commands.add_parser(
        "events", help="list every event and task type; write AsyncAPI; check or update schemas"
    )
    _domains_option(events)
    events.add_argument("--json", action="store_true", help="print each type with its schema")
    events.add_argument("--asyncapi", metavar="FILE", help="write the AsyncAPI 3.0 document")
    events.add_argument(
        "--check",
        action="store_true",
        help="exit 1 if a schema changed incompatibly with the committed snapshot",
    )
    events.add_argument(
        "--update", action="store_true", help="rewrite the committed snapshot from the code"
    )
    events.set_defaults(command=_events)

    up = commands.add_parser("up", help="provision the topology on an AWS endpoint")
    _aws_options(up)
    up.set_defaults(command=_up)

    dlq = commands.add_parser(
        "dlq", help="list what every DLQ holds and why ('dlq redrive DOMAIN' moves it back)"
    )
    _domains_option(dlq)
    dlq.add_argument("--json", action="store_true", help="print one JSON line per DLQ")
    _aws_options(dlq)
    _app_option(dlq)
    dlq.set_defaults(command=_dlq)
    actions = dlq.add_subparsers(metavar="ACTION")
    redrive = actions.add_parser(
        "redrive",
        help="move a domain's dead letters back to their queue, or publish its outbox's",
    )
    redrive.add_argument("domain", metavar="DOMAIN")
    redrive.add_argument(
        "--purpose",
        choices=("events", "tasks", "outbox"),
        default="events",
        help="which of the domain's DLQs (default events)",
    )
    # Given before or after `redrive`: absent here, they keep what `dlq` parsed.
    _aws_options(redrive, default=argparse.SUPPRESS)
    _app_option(redrive, default=argparse.SUPPRESS)
    redrive.set_defaults(command=_dlq_redrive)

    trace = commands.add_parser(
        "trace", help="print the traces of one correlation id from a local run's span file"
    )
    trace.add_argument(
        "correlation_id",
        metavar="CORRELATION_ID",
        help="the id a request answered in its x-correlation-id header",
    )
    trace.add_argument(
        "--spans",
        type=Path,
        default=DEFAULT_SPAN_FILE,
        metavar="PATH",
        help=f"the span file `tctf run` wrote (default {DEFAULT_SPAN_FILE})",
    )
    trace.set_defaults(command=_trace)

    logs = commands.add_parser(
        "logs",
        help="the JSON log lines of one correlation id, and the CloudWatch Logs Insights "
        "query finding them on AWS",
    )
    logs.add_argument(
        "--correlation-id",
        required=True,
        metavar="ID",
        help="the id a request answered in its x-correlation-id header",
    )
    logs.add_argument(
        "file", nargs="?", type=Path, metavar="FILE", help="JSON log lines (default: stdin)"
    )
    _domains_option(logs)
    _app_option(logs)
    logs.add_argument(
        "--hours", type=int, default=24, help="how far back the printed query looks (24)"
    )
    logs.set_defaults(command=_logs)

    affected = commands.add_parser(
        "affected", help="the domains whose deployable closure changed since a git ref"
    )
    affected.add_argument("--base", required=True, metavar="REF", help="e.g. origin/main")
    _root_option(affected)
    affected.set_defaults(command=_affected)

    pipelines = commands.add_parser(
        "pipelines", help="write one CI workflow per domain, triggered by its closure"
    )
    pipelines.add_argument(
        "-o", "--out", type=Path, default=None, help="directory (default .github/workflows)"
    )
    _root_option(pipelines)
    _app_option(pipelines)
    pipelines.set_defaults(command=_pipelines)

    mail = commands.add_parser(
        "mail", help="print the letters a running `tctf run` kept for one address"
    )
    mail.add_argument("--to", required=True, metavar="ADDRESS", help="the recipient")
    mail.add_argument(
        "--url",
        default="127.0.0.1:8000",
        help="the run's HTTP address: HOST:PORT or an http(s):// URL (127.0.0.1:8000)",
    )
    mail.add_argument("--json", action="store_true", help="print JSON instead of letters")
    mail.set_defaults(command=_mail)

    commands.add_parser("package", help="build one domain's Lambda artifact (see its --help)")
    commands.add_parser("synth", help="the CDK app deploying every domain (see its --help)")
    return parser


def _domains_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--domain",
        action="append",
        dest="domains",
        metavar="NAME",
        help="only this domain (repeatable; default: all)",
    )


def _output_option(parser: argparse.ArgumentParser, example: str) -> None:
    parser.add_argument(
        "-o", "--output", metavar="FILE", help=f"write to FILE (e.g. {example}); default stdout"
    )


def _write(document: object, output: str | None) -> None:
    """`document` as indented JSON, to the file `output` or to stdout."""
    text = orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode()
    if output is None:
        print(text)
        return
    with open(output, "w", encoding="utf-8") as file:
        file.write(text + "\n")


def _aws_options(parser: argparse.ArgumentParser, default: str | None = None) -> None:
    """`--endpoint-url` and `--transport`; `default` replaces both defaults when given."""
    parser.add_argument(
        "--endpoint-url", default=default, help="AWS-compatible endpoint, e.g. moto server"
    )
    parser.add_argument(
        "--transport",
        choices=("sns", "eventbridge"),
        default=default or "sns",
        help="how events reach the queues: SNS topic subscriptions or EventBridge rules (sns)",
    )


def _app_option(parser: argparse.ArgumentParser, default: str = "tctf") -> None:
    parser.add_argument(
        "--app", default=default, help="the platform's name, prefix of every queue (tctf)"
    )


def _run(args: argparse.Namespace) -> int:
    try:
        return _serve(args)
    except (OSError, ExceptionGroup) as raised:
        error = _sole(raised)
        if isinstance(error, OSError) and error.errno in _CANNOT_LISTEN:
            raise UsageError(
                f"cannot listen on {args.host}:{args.port}: {os.strerror(error.errno)}; "
                "choose another --port (0 for no HTTP)"
            ) from None
        raise


#: Why binding the HTTP port fails that a user mends with another port or host.
_CANNOT_LISTEN = frozenset({errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES})


def _serve(args: argparse.Namespace) -> int:
    from bus.emf import EmfWriter, metrics_namespace
    from bus.observability import configure_logging, logging_settings
    from tctf.config import load_domains

    settings = logging_settings(os.environ)
    configure_logging(
        args.log_level or settings.level,
        settings.service or "tctf",
        fixed_service=settings.service is not None,
    )
    metrics = EmfWriter(metrics_namespace(os.environ, "tctf"))
    domains = load_domains(args.domains)
    port = args.port or None
    if port:
        _link_to_this_run(args.host, port)
    from tctf.traces import local_tracer_provider

    provider = local_tracer_provider(
        os.environ, span_file=None if args.no_spans else args.spans, console=args.trace
    )
    if args.aws or args.endpoint_url:
        if args.cors_origins:
            raise UsageError("--cors-origin is served on the in-memory transport only (no --aws)")
        from tctf.aws import run_aws

        serve = partial(
            run_aws, host=args.host, seed=args.seed, tracer_provider=provider, metrics=metrics
        )
        stopped_by = anyio.run(
            _until_interrupted, partial(serve, domains, args.endpoint_url, args.transport, port)
        )
        return _stopped_status(stopped_by)
    from tctf.platform import Platform

    platform = Platform(
        domains,
        seed=args.seed,
        tracer_provider=provider,
        metrics=metrics,
        metrics_interval=args.metrics_interval,
    )
    names = ", ".join(d.name for d in domains)
    banner = f"tctf: {names} on the in-memory transport" + (
        f"; HTTP on http://{args.host}:{port}" if port else ""
    )
    announce = partial(print, banner, file=sys.stderr, flush=True)
    serving = partial(platform.serve, args.host, port, announce, cors_origins=args.cors_origins)
    stopped_by = anyio.run(_until_interrupted, serving)
    return _stopped_status(stopped_by)


def _link_to_this_run(host: str, port: int) -> None:
    """Point e-mailed links at the address this run serves, unless TCTF_APP_URL names one."""
    from tctf.synth import APP_URL_VARIABLE  # the variable a deployed stage sets

    if os.environ.get(APP_URL_VARIABLE):
        return
    if host in ("", "0.0.0.0", "::"):  # every interface: the browser is on this machine
        host = "localhost"
    elif ":" in host:
        host = f"[{host}]"
    os.environ[APP_URL_VARIABLE] = f"http://{host}:{port}"


#: What stops `tctf run` as a clean shutdown: Ctrl-C, and `kill` (a process manager's stop).
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _stopped_status(signum: int | None) -> int:
    """The status a shell reports for a process the signal ended (130 for Ctrl-C)."""
    return 0 if signum is None else 128 + signum


async def _until_interrupted(serve: Callable[[], Awaitable[object]]) -> int | None:
    """Run `serve` until it returns or SIGINT (Ctrl-C) or SIGTERM stops it, shutting it
    down as a cancellation, so that what it holds is released (the `.tctf/endpoint` file of
    an embedded endpoint among them); the signal that stopped it, if one did. The signals
    are taken here, not left to their default (SIGTERM's ends the process at once), so a
    shutdown that happens to absorb that cancellation still ends with the status a shell
    reports for the signal."""
    stopped_by: int | None = None

    async with anyio.create_task_group() as group:

        async def stop_on_signal() -> None:
            nonlocal stopped_by
            with anyio.open_signal_receiver(*_STOP_SIGNALS) as signals:
                async for signum in signals:
                    stopped_by = int(signum)
                    group.cancel_scope.cancel()
                    return

        group.start_soon(stop_on_signal)
        await serve()
        group.cancel_scope.cancel()
    return stopped_by


def _root_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--root", type=Path, default=None, help="the repository's checkout (default: this one)"
    )


def _affected(args: argparse.Namespace) -> int:
    from tctf.affected import affected

    for name in affected(args.base, args.root):
        print(name)
    return 0


def _pipelines(args: argparse.Namespace) -> int:
    from tctf.packaging import repository_root
    from tctf.pipelines import WORKFLOWS, write

    root = args.root or repository_root()
    for path in write(args.out or root / WORKFLOWS, root, args.app):
        print(path)
    return 0


def _mail(args: argparse.Namespace) -> int:
    from tctf.mail import read_mailbox, render

    letters = read_mailbox(args.url, args.to)
    if args.json:
        print(orjson.dumps(letters, option=orjson.OPT_INDENT_2).decode())
    elif letters:
        print(render(letters))
    else:
        print(f"tctf mail: no letters for {args.to}", file=sys.stderr)
    return 0


def _topology(args: argparse.Namespace) -> int:
    from bus.topology import Topology
    from tctf.config import load_domains

    topology = Topology.from_domains(load_domains(args.domains))
    if args.json:
        print(orjson.dumps(topology.to_dict(), option=orjson.OPT_INDENT_2).decode())
    else:
        print(topology.render_table())
    return 0


def _openapi(args: argparse.Namespace) -> int:
    from bus.openapi import domain_document, openapi_document
    from tctf.config import load_domains

    domains = load_domains(args.domains)
    single = len(domains) == 1 and args.domains
    _write(domain_document(domains[0]) if single else openapi_document(domains), args.output)
    return 0


def _stale_snapshot(current: dict[str, Any], recorded: dict[str, Any], path: Path) -> list[str]:
    """What the committed snapshot misses of compatible changes (new types, new optional
    fields, new descriptions): the contract tests hold it to be current."""
    missing = sorted(current.keys() - recorded.keys())
    changed = sorted(t for t in current.keys() & recorded.keys() if current[t] != recorded[t])
    parts = [f"lacks {', '.join(missing)}"] if missing else []
    parts += [f"is out of date for {', '.join(changed)}"] if changed else []
    if not parts:
        return []
    shown = path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path
    return [
        f"the committed snapshot {' and '.join(parts)}: run `tctf events --update` and "
        f"commit {shown}"
    ]


def _events(args: argparse.Namespace) -> int:
    from tctf.config import load_domains
    from tctf.contracts import SNAPSHOT, catalog, render_table

    found = catalog(load_domains(args.domains))
    if args.asyncapi:
        _write(found.asyncapi(), args.asyncapi)
    if args.update:
        if args.domains:
            raise UsageError("--update rewrites the whole snapshot: name no --domain")
        SNAPSHOT.parent.mkdir(parents=True, exist_ok=True)
        _write(found.snapshot(), str(SNAPSHOT))
        print(f"wrote {len(found.entries)} schemas to {SNAPSHOT}", file=sys.stderr)
    if args.check:
        recorded = orjson.loads(SNAPSHOT.read_bytes()) if SNAPSHOT.exists() else {}
        if args.domains:
            recorded = {t: r for t, r in recorded.items() if t in {e.type for e in found.entries}}
        problems = found.breaking_changes(recorded) or _stale_snapshot(
            found.snapshot(), recorded, SNAPSHOT
        )
        for problem in problems:
            print(f"tctf events: {problem}", file=sys.stderr)
        return 1 if problems else 0
    if args.json:
        listing = [
            {
                "type": e.type,
                "kind": e.kind,
                "version": e.version,
                "owner": e.owner,
                "producers": list(e.producers),
                "consumers": list(e.consumers),
                "schema": e.schema(),
            }
            for e in found.entries
        ]
        _write(listing, None)
    elif not (args.asyncapi or args.update):
        print(render_table(found))
    return 0


def _trace(args: argparse.Namespace) -> int:
    from tctf.traces import read_spans, render, traces_of

    traces = traces_of(read_spans(args.spans), args.correlation_id)
    if not traces:
        raise UsageError(f"no span in {args.spans} carries correlation id {args.correlation_id}")
    for line in render(traces, args.correlation_id):
        print(line)
    return 0


def _logs(args: argparse.Namespace) -> int:
    from tctf.config import load_domains
    from tctf.logs import insights_command, matching_lines

    domains = [domain.name for domain in load_domains(args.domains)]
    if args.file is None:
        lines = sys.stdin.buffer
    else:
        try:
            lines = args.file.open("rb")
        except OSError as error:
            raise UsageError(f"cannot read {args.file}: {error.strerror}") from None
    with lines:
        for line in matching_lines(lines, args.correlation_id):
            sys.stdout.buffer.write(line + b"\n")
    sys.stdout.flush()
    print(
        "CloudWatch Logs Insights, every domain's log group:\n"
        + insights_command(args.correlation_id, args.app, domains, args.hours),
        file=sys.stderr,
    )
    return 0


def _up(args: argparse.Namespace) -> int:
    from tctf.aws import up

    anyio.run(up, args.endpoint_url, args.transport)
    return 0


def _dlq(args: argparse.Namespace) -> int:
    from tctf.aws import recorded_endpoint
    from tctf.config import load_domains
    from tctf.dead_letters import show

    domains = load_domains(args.domains)
    endpoint_url = recorded_endpoint(args.endpoint_url)
    anyio.run(partial(show, domains, endpoint_url, args.transport, as_json=args.json, app=args.app))
    return 0


def _dlq_redrive(args: argparse.Namespace) -> int:
    from tctf.aws import recorded_endpoint
    from tctf.config import load_domains
    from tctf.dead_letters import redrive

    (domain,) = load_domains([args.domain])
    endpoint_url = recorded_endpoint(args.endpoint_url)
    result: int = anyio.run(
        partial(redrive, domain, args.purpose, endpoint_url, args.transport, app=args.app)
    )
    return result


if __name__ == "__main__":
    raise SystemExit(main())
