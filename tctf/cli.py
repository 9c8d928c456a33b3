"""The `tctf` command: run the platform, show its topology, provision, inspect and redrive
dead letters, package, synthesize."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from functools import partial

import anyio
import orjson

from bus import BusError


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["package"]:  # its own options, parsed by tctf.packaging
        from tctf.packaging import main as package

        return package(argv[1:])
    if argv[:1] == ["synth"]:  # its own options, parsed by tctf.synth
        from tctf.synth import main as synth

        return synth(argv[1:])
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        result: int = args.command(args)
        return result
    except BusError as error:
        print(f"tctf: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tctf", description=__doc__)
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run every domain in one process")
    _domains_option(run)
    run.add_argument("--host", default="127.0.0.1", help="HTTP address (default 127.0.0.1)")
    run.add_argument("--port", type=int, default=8000, help="HTTP port; 0 for none (8000)")
    run.add_argument("--seed", type=int, help="seed the ids the platform makes (and faults)")
    run.add_argument("--log-level", default="INFO")
    run.add_argument(
        "--trace",
        action="store_true",
        help="print an OpenTelemetry span per handler call to stderr",
    )
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


def _aws_options(parser: argparse.ArgumentParser, default: str | None = None) -> None:
    """`--endpoint-url` and `--transport`; `default` replaces both defaults when given."""
    parser.add_argument(
        "--endpoint-url", default=default, help="AWS-compatible endpoint, e.g. moto server"
    )
    parser.add_argument("--transport", choices=("sns", "eventbridge"), default=default or "sns")


def _app_option(parser: argparse.ArgumentParser, default: str = "tctf") -> None:
    parser.add_argument(
        "--app", default=default, help="the platform's name, prefix of every queue (tctf)"
    )


def _run(args: argparse.Namespace) -> int:
    from tctf.config import load_domains
    from tctf.observability import configure_logging

    configure_logging(args.log_level)
    domains = load_domains(args.domains)
    port = args.port or None
    middleware = []
    if args.trace:
        from tctf.observability import console_tracer_provider, tracing

        middleware.append(tracing(console_tracer_provider()))
    if args.aws or args.endpoint_url:
        from tctf.aws import run_aws

        serve = partial(run_aws, host=args.host, seed=args.seed, middleware=middleware)
        anyio.run(serve, domains, args.endpoint_url, args.transport, port)
        return 0
    from tctf.platform import Platform

    platform = Platform(domains, seed=args.seed, middleware=middleware)
    names = ", ".join(d.name for d in domains)
    banner = f"tctf: {names} on the in-memory transport" + (
        f"; HTTP on http://{args.host}:{port}" if port else ""
    )
    anyio.run(platform.serve, args.host, port, lambda: print(banner, file=sys.stderr, flush=True))
    return 0


def _topology(args: argparse.Namespace) -> int:
    from bus import Topology
    from tctf.config import load_domains

    topology = Topology.from_domains(load_domains(args.domains))
    if args.json:
        print(orjson.dumps(topology.to_dict(), option=orjson.OPT_INDENT_2).decode())
    else:
        print(topology.render_table())
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
