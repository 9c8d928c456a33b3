"""`tctf trace` draws a local run's trace from its span file; `tctf logs` filters log lines by
correlation id and prints the CloudWatch Logs Insights query doing the same on AWS."""

from __future__ import annotations

import os
from pathlib import Path

import orjson
import pytest

from bus.http import HttpRequest, HttpRouter
from bus.testing import Harness
from domains.messaging_consumers.app import domain as messaging
from domains.users.app import domain as users
from tctf.cli import main
from tctf.logs import insights_query
from tctf.traces import local_tracer_provider, read_spans, rotated, span_file_exporter


async def test_trace_prints_request_handlers_events_and_handlers_with_their_domains(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spans = tmp_path / "spans.jsonl"
    provider = local_tracer_provider({}, span_file=spans, console=False)
    for correlation_id in ("signup-1", "signup-2"):
        async with Harness(users, messaging, tracer_provider=provider) as h:
            router = HttpRouter(
                h.runtime.domains, h.runtime.publisher, h.runtime.context, tracing=h.runtime.tracing
            )
            body = {"email": f"{correlation_id}@example.com", "name": "Ada"}
            await router.handle(
                HttpRequest(
                    "POST",
                    "/users",
                    headers={"x-correlation-id": correlation_id},
                    body=orjson.dumps(body),
                )
            )
            await h.settle()

    assert main(["trace", "signup-2", "--spans", str(spans)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("trace ") and out[0].endswith("(correlation id signup-2)")
    tree = [line.split("]")[0].split("  [") for line in out[1:7]]
    assert tree == [
        ["└─ POST /users", "users"],
        ["   └─ USER_CREATED publish", "users"],
        ["      └─ messaging_consumers.welcome_new_user process", "messaging_consumers"],
        ["         └─ SEND_EMAIL send", "messaging_consumers"],
        ["            └─ messaging_consumers.deliver process", "messaging_consumers"],
        ["               └─ EMAIL_SENT publish", "messaging_consumers"],
    ]
    assert out[1].endswith("201") and out[3].endswith("handled") and out[5].endswith("handled")
    # Each outbox relay's publish or send: a trace of its own, linked to the producer span.
    relays = out[7:]
    assert [line for line in relays if line.startswith("trace ")] == [
        line for line in relays if line.endswith("(linked to it)")
    ]
    assert sorted(line.split("  [")[0] for line in relays if line.startswith("└─")) == [
        "└─ messaging_consumers outbox relay publish",
        "└─ messaging_consumers outbox relay send",
        "└─ users outbox relay publish",
    ]
    assert len(out) == 13


def test_the_span_file_is_rotated_at_its_limit_and_read_whole(tmp_path: Path) -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    spans = tmp_path / "spans.jsonl"
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(span_file_exporter(spans, limit=2_000)))
    tracer = provider.get_tracer("test")
    for n in range(100):
        tracer.start_span(f"step {n}").end()
    provider.shutdown()

    # Only the latest spans are kept, in at most twice the limit (plus one write).
    assert rotated(spans).exists()
    assert spans.stat().st_size + rotated(spans).stat().st_size < 2 * 2_000 + 1_000
    names = [span["name"] for span in read_spans(spans)]
    assert names == [f"step {n}" for n in range(100 - len(names), 100)]
    assert "step 0" not in names and len(names) > 1 + spans.read_bytes().count(b"\n")


def test_trace_of_an_unknown_correlation_id_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spans = tmp_path / "spans.jsonl"
    spans.write_text("")
    assert main(["trace", "nobody", "--spans", str(spans)]) != 0
    assert "no span" in capsys.readouterr().err
    assert main(["trace", "nobody", "--spans", str(tmp_path / "missing.jsonl")]) != 0
    assert "tctf run" in capsys.readouterr().err


def test_logs_keeps_the_lines_of_one_correlation_id_and_prints_the_insights_query(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wanted = [
        {"level": "INFO", "message": "handled USER_CREATED", "correlation_id": "c-1"},
        {"level": "INFO", "message": "handled SEND_EMAIL", "correlation_id": "c-1"},
    ]
    log = tmp_path / "run.log"
    log.write_bytes(
        b"\n".join(
            [
                orjson.dumps(wanted[0]),
                b"tctf: users, messaging_consumers on the in-memory transport",
                orjson.dumps({"level": "INFO", "message": "other", "correlation_id": "c-2"}),
                b"{not json",
                orjson.dumps(wanted[1]),
            ]
        )
    )
    assert main(["logs", "--correlation-id", "c-1", str(log), "--app", "shop"]) == 0
    captured = capsys.readouterr()
    assert [orjson.loads(line) for line in captured.out.splitlines()] == wanted
    assert "/aws/lambda/shop-users" in captured.err
    assert "/aws/lambda/shop-messaging_consumers" in captured.err
    assert "filter correlation_id = " in captured.err


def test_the_insights_query_escapes_a_correlation_id_the_caller_chose() -> None:
    query = insights_query('x" or 1=1 | display @message #\\')
    assert '| filter correlation_id = "x\\" or 1=1 | display @message #\\\\"' in query


def test_logs_reads_standard_input(tmp_path: Path) -> None:
    import subprocess
    import sys

    line = orjson.dumps({"message": "m", "correlation_id": "c-9"})
    done = subprocess.run(
        [sys.executable, "-m", "tctf.cli", "logs", "--correlation-id", "c-9"],
        input=line + b"\nnoise\n",
        capture_output=True,
        env={**os.environ},
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == line + b"\n"
