"""A function's cold start with tracing off and on, beside Powertools + boto3 without and with
its Tracer, in the same run.

As `lambda_cold_start.py` (whose set-up this reuses): the stateless `bench_mailer`'s function
(the benchmark's own domain, its handled records in an idempotency table) from its package
handles a 1-record SQS event in a fresh interpreter. Traced, ours exports its spans over
OTLP/HTTP to a collector on loopback (started here, answering 200) and flushes them before the
invocation returns; the peer's Tracer (AWS X-Ray SDK, as Powertools ships it) sends its
segment over UDP to a daemon address, as in Lambda.

    .venv/bin/python benchmarks/tracing_cold_start.py --runs 9
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import py_compile
import resource
import statistics
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from lambda_cold_start import (
    APP,
    COLD,
    OURS_LOAD,
    PEER,
    PEER_LOAD,
    STATELESS,
    build_packages,
    environment,
    free_port,
    provision,
    run_cold,
    send_email_body,
    sqs_event,
)

#: The peer with Powertools' Tracer: boto3 patched, the handler captured in a subsegment.
TRACED_PEER = (
    PEER
    + """
from aws_lambda_powertools import Tracer

tracer = Tracer(service="bench_mailer")
handler = tracer.capture_lambda_handler(handler)
"""
)
TRACED_PEER_LOAD = "import peer_traced; handler = peer_traced.handler"
#: What Lambda sets for a sampled invocation; Powertools' Tracer is active only in Lambda.
LAMBDA_TRACING = {
    "LAMBDA_TASK_ROOT": "/var/task",
    "_X_AMZN_TRACE_ID": (
        "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
    ),
    "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:2000",
}


class Collector(BaseHTTPRequestHandler):
    """An OTLP/HTTP endpoint that takes every export and answers 200."""

    exports = 0

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        Collector.exports += 1
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None: ...


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9, help="cold starts per contender")
    args = parser.parse_args()
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    port = free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    moto.start()
    endpoint = f"http://127.0.0.1:{port}"
    collector = ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    threading.Thread(target=collector.serve_forever, daemon=True).start()
    otlp = {
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{collector.server_port}",
    }
    event = json.dumps(sqs_event([send_email_body(0)], f"{APP}-{STATELESS}-tasks"))
    with tempfile.TemporaryDirectory(prefix="tctf-bench-") as scratch:
        peer_dir = Path(scratch)
        for name, code in (("peer_handler", PEER), ("peer_traced", TRACED_PEER)):
            (peer_dir / f"{name}.py").write_text(code)
            py_compile.compile(str(peer_dir / f"{name}.py"))
        try:
            package = build_packages(peer_dir / "dist", (STATELESS,))[STATELESS]
            provision(endpoint)
            ours = COLD.format(load=OURS_LOAD)
            contenders = {
                "tctf bench_mailer, tracing off": (ours, str(package), {}),
                "tctf bench_mailer, tracing on (OTLP/HTTP, flushed per invocation)": (
                    ours,
                    str(package),
                    otlp,
                ),
                "Powertools + boto3": (COLD.format(load=PEER_LOAD), str(peer_dir), {}),
                "Powertools + boto3 + Tracer (X-Ray SDK)": (
                    COLD.format(load=TRACED_PEER_LOAD),
                    str(peer_dir),
                    LAMBDA_TRACING,
                ),
            }
            totals: dict[str, list[tuple[float, float, float]]] = {name: [] for name in contenders}
            for _ in range(args.runs):  # interleaved: a busier moment weighs on each alike
                for name, (code, path, extra) in contenders.items():
                    env = {**environment(endpoint, STATELESS, peer_dir), **extra}
                    before = resource.getrusage(resource.RUSAGE_CHILDREN)
                    _, payload = run_cold(code, [path, event], env)
                    after = resource.getrusage(resource.RUSAGE_CHILDREN)
                    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
                    totals[name].append((payload["init"], payload["first"], cpu))
        finally:
            moto.stop()
            collector.shutdown()
    medians = {
        name: (
            statistics.median(i + f for i, f, _ in runs) * 1e3,
            statistics.median(i for i, _, _ in runs) * 1e3,
            statistics.median(f for _, f, _ in runs) * 1e3,
            statistics.median(c for _, _, c in runs) * 1e3,
        )
        for name, runs in totals.items()
    }
    print(f"Cold start (import + init + first invocation), median of {args.runs}, ms")
    print("CPU: the whole interpreter's CPU time (start to exit), which load skews least")
    print(f"(OTLP exports received by the collector: {Collector.exports})\n")
    print(
        "| contender | cold start | import + init | first invocation | vs peer with Tracer "
        "| process CPU | CPU vs peer with Tracer |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    peer, peer_cpu = (medians["Powertools + boto3 + Tracer (X-Ray SDK)"][i] for i in (0, 3))
    for name, (total, init, first, cpu) in medians.items():
        print(
            f"| {name} | {total:.0f} | {init:.0f} | {first:.1f} | {total / peer:.2f}x "
            f"| {cpu:.0f} | {cpu / peer_cpu:.2f}x |"
        )


if __name__ == "__main__":
    main()
