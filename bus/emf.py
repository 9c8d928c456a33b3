"""CloudWatch Embedded Metric Format: what a runtime writes when it flushes `ctx.metrics`.

One JSON document per line, which CloudWatch Logs turns into metrics when it reads the
function's log: a document per set of dimensions, at most 100 metrics in one and at most 100
values per metric (the format's limits), split into more documents beyond. The format is
plain JSON, so this writes it itself with orjson: see docs/decisions on why no library.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import orjson

from bus.metrics import Metrics, Series
from bus.observability import flush_log_lines

#: The format's limits: metrics in one directive, values of one metric in one document.
MAX_METRICS = 100
MAX_VALUES = 100


def documents(namespace: str, series: Iterable[Series], timestamp_ms: int) -> list[dict[str, Any]]:
    """The EMF documents holding `series`, in `namespace`, stamped `timestamp_ms`."""
    by_dimensions: dict[tuple[tuple[str, str], ...], list[Series]] = {}
    for one in series:
        if one.values:
            by_dimensions.setdefault(one.dimensions, []).append(one)
    out: list[dict[str, Any]] = []
    for dimensions, group in by_dimensions.items():
        rounds = max(-(-len(s.values) // MAX_VALUES) for s in group)
        for round_ in range(rounds):
            start = round_ * MAX_VALUES
            pieces = [(s, s.values[start : start + MAX_VALUES]) for s in group]
            pieces = [(s, values) for s, values in pieces if values]
            for first in range(0, len(pieces), MAX_METRICS):
                out.append(
                    _document(
                        namespace, dimensions, pieces[first : first + MAX_METRICS], timestamp_ms
                    )
                )
    return out


def _document(
    namespace: str,
    dimensions: tuple[tuple[str, str], ...],
    pieces: Sequence[tuple[Series, list[float]]],
    timestamp_ms: int,
) -> dict[str, Any]:
    definitions: list[dict[str, Any]] = []
    document: dict[str, Any] = {
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [
                {
                    "Namespace": namespace,
                    "Dimensions": [[name for name, _ in dimensions]],
                    "Metrics": definitions,
                }
            ],
        },
    }
    for name, value in dimensions:
        document[name] = value
    for series, values in pieces:
        definition: dict[str, Any] = {"Name": series.name, "Unit": series.unit}
        if series.resolution == 1:
            definition["StorageResolution"] = 1
        definitions.append(definition)
        document[series.name] = values[0] if len(values) == 1 else values
    return document


def metrics_namespace(env: Mapping[str, str], app: str) -> str:
    """The namespace configured by TCTF_METRICS_NAMESPACE, or Powertools'
    POWERTOOLS_METRICS_NAMESPACE, else the app's name."""
    for variable in ("TCTF_METRICS_NAMESPACE", "POWERTOOLS_METRICS_NAMESPACE"):
        namespace = env.get(variable, "").strip()
        if namespace:
            return namespace
    return app


def _stdout(lines: bytes) -> None:
    # Through the text layer, after the delivery lines held for the loop's step, so that
    # log lines written before stay before.
    flush_log_lines()
    sys.stdout.write(lines.decode())
    sys.stdout.flush()


class EmfWriter:
    """Drains `Metrics` into EMF documents, one JSON line each, to `write` (stdout, where
    Lambda's log and a local run's terminal are)."""

    def __init__(
        self,
        namespace: str,
        write: Callable[[bytes], object] = _stdout,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.namespace = namespace
        self._write = write
        self._now = now

    def flush(self, *metrics: Metrics) -> list[dict[str, Any]]:
        """Write, and forget, what `metrics` hold; the documents written."""
        drained = [series for one in metrics for series in one.drain()]
        if not drained:
            return []
        written = documents(self.namespace, drained, int(self._now() * 1000))
        if written:
            self._write(b"".join(orjson.dumps(document) + b"\n" for document in written))
        return written
