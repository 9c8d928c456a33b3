"""Traces of a local run: the span file `tctf run` writes, and `tctf trace` reading it.

`tctf run` (in memory or `--aws`) appends each finished span as one JSON line to a span
file (`.tctf/spans.jsonl` unless told otherwise). The file is bounded: past
`SPAN_FILE_LIMIT` bytes it becomes `spans.jsonl.1` (replacing the one before) and a new file
starts, so a long-lived local run keeps the latest spans in at most twice the limit.
`tctf trace CORRELATION_ID` reads both and finds the traces holding that correlation id and
prints each as a tree, request -> handlers -> events -> handlers, with every step's domain,
start, duration and outcome.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from tctf.errors import UsageError

#: Where `tctf run` keeps its spans and `tctf trace` reads them, relative to the directory
#: it runs in.
DEFAULT_SPAN_FILE = Path(".tctf") / "spans.jsonl"
#: Bytes a span file grows to before it is rotated (see the module docstring).
SPAN_FILE_LIMIT = 32 * 1024 * 1024
#: The attribute every server, producer and consumer span carries the correlation id in.
CORRELATION_ATTRIBUTE = "tctf.correlation_id"


def span_line(span: Any) -> bytes:
    """One finished SDK span (`ReadableSpan`) as a JSON line: ids, name, kind, times, status,
    attributes (already only ids, types, names, outcomes and timings) and links."""
    context = span.context
    return orjson.dumps(
        {
            "trace_id": f"{context.trace_id:032x}",
            "span_id": f"{context.span_id:016x}",
            "parent_id": f"{span.parent.span_id:016x}" if span.parent is not None else None,
            "name": span.name,
            "kind": span.kind.name,
            "start_ns": span.start_time,
            "end_ns": span.end_time,
            "status": span.status.status_code.name,
            "service": span.resource.attributes.get("service.name"),
            "attributes": dict(span.attributes or {}),
            "links": [
                {
                    "trace_id": f"{link.context.trace_id:032x}",
                    "span_id": f"{link.context.span_id:016x}",
                }
                for link in span.links
            ],
        },
        option=orjson.OPT_APPEND_NEWLINE,
    )


def rotated(path: Path) -> Path:
    """Where a span file's earlier spans go once it reaches its limit."""
    return path.with_name(path.name + ".1")


def span_file_exporter(path: Path, *, limit: int = SPAN_FILE_LIMIT) -> Any:
    """A span exporter appending each span to `path` as a JSON line (`span_line`), rotating
    the file to `rotated(path)` once it holds `limit` bytes."""
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

    class SpanFile(SpanExporter):
        def __init__(self) -> None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = path.open("ab")

        def export(self, spans: Sequence[Any]) -> SpanExportResult:
            if self._file.tell() >= limit:
                self._file.close()
                path.replace(rotated(path))
                self._file = path.open("ab")
            self._file.write(b"".join(span_line(span) for span in spans))
            self._file.flush()
            return SpanExportResult.SUCCESS

        def shutdown(self) -> None:
            self._file.close()

    return SpanFile()


def local_tracer_provider(
    env: Mapping[str, str], *, span_file: Path | None, console: bool, service: str = "tctf"
) -> Any | None:
    """The tracer provider of `tctf run`: the OTEL_* variables' exporters, plus the span file
    and the console when asked. None when nothing would receive a span."""
    from bus.tracing import console_tracer_provider, tracer_provider_from_env

    provider = tracer_provider_from_env(env, service=service)
    if span_file is None and not console:
        return provider
    if provider is None:
        provider = console_tracer_provider(service) if console else _bare_provider(service)
    elif console:
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor

        provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
    if span_file is not None:
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor

        provider.add_span_processor(SimpleSpanProcessor(span_file_exporter(span_file)))
    return provider


def _bare_provider(service: str) -> Any:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    return TracerProvider(resource=Resource.create({"service.name": service}))


@dataclass
class Step:
    """One span of a trace, with the spans that started under it."""

    span: dict[str, Any]
    children: list[Step] = field(default_factory=list)

    @property
    def start(self) -> int:
        return int(self.span.get("start_ns") or 0)


def read_spans(path: Path) -> list[dict[str, Any]]:
    """The spans of a span file and of its rotated predecessor, older first; a line that is
    not a span (cut short by a crash) is skipped."""
    try:
        lines = path.read_bytes().splitlines()
    except FileNotFoundError:
        raise UsageError(
            f"no span file at {path}: run `tctf run` (it writes one) or name it with --spans"
        ) from None
    with contextlib.suppress(FileNotFoundError):
        lines = rotated(path).read_bytes().splitlines() + lines
    spans = []
    for line in lines:
        try:
            span = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if isinstance(span, dict) and isinstance(span.get("span_id"), str):
            spans.append(span)
    return spans


@dataclass
class Trace:
    """One trace as its root steps; `linked`: a trace of its own (an outbox relay's publish)
    whose spans link to a span of a trace holding the correlation id."""

    trace_id: str
    roots: list[Step]
    linked: bool = False

    @property
    def start(self) -> int:
        return min((root.start for root in self.roots), default=0)


def traces_of(spans: Iterable[dict[str, Any]], correlation_id: str) -> list[Trace]:
    """The traces holding a span of `correlation_id`, oldest first, then those linked to them."""
    spans = list(spans)
    wanted = {
        s["trace_id"]
        for s in spans
        if (s.get("attributes") or {}).get(CORRELATION_ATTRIBUTE) == correlation_id
    }
    in_wanted = {s["span_id"] for s in spans if s["trace_id"] in wanted}
    linked = {
        s["trace_id"]
        for s in spans
        if s["trace_id"] not in wanted
        and any(link.get("span_id") in in_wanted for link in s.get("links") or ())
    }
    traces = [Trace(t, _roots(spans, t)) for t in wanted]
    traces.sort(key=lambda trace: trace.start)
    others = [Trace(t, _roots(spans, t), linked=True) for t in linked]
    return traces + sorted(others, key=lambda trace: trace.start)


def _roots(spans: Sequence[dict[str, Any]], trace_id: str) -> list[Step]:
    steps = {s["span_id"]: Step(s) for s in spans if s["trace_id"] == trace_id}
    roots: list[Step] = []
    for step in steps.values():
        parent = steps.get(step.span.get("parent_id") or "")
        (parent.children if parent is not None else roots).append(step)
    for step in steps.values():
        step.children.sort(key=lambda child: child.start)
    return sorted(roots, key=lambda root: root.start)


def render(traces: Sequence[Trace], correlation_id: str) -> Iterator[str]:
    """Each trace as a tree: name, domain, offset from the first trace's start, duration,
    outcome."""
    origin = min((trace.start for trace in traces if trace.roots), default=0)
    for trace in traces:
        if not trace.roots:
            continue
        about = "linked to it" if trace.linked else f"correlation id {correlation_id}"
        yield f"trace {trace.trace_id} ({about})"
        for number, root in enumerate(trace.roots):
            yield from _lines(root, origin, "", number == len(trace.roots) - 1, None)


def _lines(step: Step, origin: int, indent: str, last: bool, domain: str | None) -> Iterator[str]:
    span = step.span
    attributes = span.get("attributes") or {}
    domain = attributes.get("tctf.domain") or domain or span.get("service") or "-"
    start_ms = (step.start - origin) / 1e6
    duration_ms = (int(span.get("end_ns") or step.start) - step.start) / 1e6
    branch = "└─ " if last else "├─ "
    yield (
        f"{indent}{branch}{span['name']}  [{domain}]  +{start_ms:.1f} ms  "
        f"{duration_ms:.1f} ms  {_outcome(span, attributes)}"
    )
    below = indent + ("   " if last else "│  ")
    for number, child in enumerate(step.children):
        yield from _lines(child, origin, below, number == len(step.children) - 1, domain)


def _outcome(span: Mapping[str, Any], attributes: Mapping[str, Any]) -> str:
    if "tctf.outcome" in attributes:
        return str(attributes["tctf.outcome"])
    if "http.response.status_code" in attributes:
        return str(attributes["http.response.status_code"])
    if span.get("kind") == "PRODUCER" and "messaging.message.id" in attributes:
        return "staged"  # a message's creation: it leaves with its handler's success
    return "error" if span.get("status") == "ERROR" else "ok"
