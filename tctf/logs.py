"""`tctf logs`: the JSON log lines of one correlation id, here and in CloudWatch Logs.

Locally it filters JSON log lines (a file, or standard input) to those whose
`correlation_id` is the one asked; for AWS it prints the CloudWatch Logs Insights query doing
the same across every domain's log group (each function's `/aws/lambda/{app}-{domain}`, as
`tctf synth` names the functions).
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Iterator, Sequence

import orjson

#: What the Insights query shows of each line, in this order.
FIELDS = (
    "@timestamp",
    "service",
    "level",
    "message",
    "event_type",
    "type",
    "handler",
    "outcome",
    "duration_ms",
    "@logStream",
)


def matching_lines(lines: Iterable[bytes], correlation_id: str) -> Iterator[bytes]:
    """The lines that are JSON objects whose `correlation_id` is `correlation_id`, as they
    were; any other line (plain text, another id) is left out."""
    for line in lines:
        stripped = line.strip()
        if not stripped.startswith(b"{"):
            continue
        try:
            record = orjson.loads(stripped)
        except orjson.JSONDecodeError:
            continue
        if isinstance(record, dict) and record.get("correlation_id") == correlation_id:
            yield stripped


def log_groups(app: str, domains: Sequence[str]) -> list[str]:
    """Each domain's function's log group."""
    return [f"/aws/lambda/{app}-{domain}" for domain in domains]


def insights_query(correlation_id: str) -> str:
    """The Logs Insights query for one correlation id's lines, oldest first."""
    quoted = correlation_id.replace("\\", "\\\\").replace('"', '\\"')
    return (
        f"fields {', '.join(FIELDS)}\n"
        f'| filter correlation_id = "{quoted}"\n'
        "| sort @timestamp asc\n"
        "| limit 10000"
    )


def insights_command(correlation_id: str, app: str, domains: Sequence[str], hours: int) -> str:
    """The `aws logs start-query` command running `insights_query` over the last `hours`
    across every domain's log group, quoted for a POSIX shell."""
    words = [
        "aws",
        "logs",
        "start-query",
        "--log-group-names",
        *log_groups(app, domains),
        "--start-time",
        f"$(($(date +%s) - {hours * 3600}))",
        "--end-time",
        "$(date +%s)",
        "--query-string",
        insights_query(correlation_id),
    ]
    # The two times are shell arithmetic, left unquoted; everything else is quoted.
    return " ".join(w if w.startswith("$(") else shlex.quote(w) for w in words)
