"""Event-pattern matching: bus.routing beside moto's EventBridge matcher, in one run.

Fifty realistic rules (exact, prefix, numeric, anything-but, exists, cidr, $or, nested detail)
against events of about 1 KiB; every rule is evaluated against every event. Also prints how
many of the AWS-recorded TestEventPattern cases each matcher gets right.

    .venv/bin/python benchmarks/routing.py [--events 200] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from moto.events.exceptions import InvalidEventPatternException
from moto.events.models import EventPattern as MotoEventPattern

from bus.routing import InvalidEventPattern, compile_event_pattern

AWS_CASES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "aws" / "derived"
SOURCES = ["tctf.users", "tctf.billing", "tctf.messaging", "tctf.social", "tctf.search"]
TYPES = ["UserCreated", "UserDeleted", "InvoicePaid", "MessageSent", "PostLiked"]
REGIONS = ["eu-west-1", "us-east-1", "us-west-2"]


def rules(count: int = 50) -> list[dict[str, Any]]:
    """A rule set like a 34-service platform's: mostly source/type routing plus content filters."""
    shapes: list[Callable[[int], dict[str, Any]]] = [
        lambda i: {"source": [SOURCES[i % 5]], "detail-type": [TYPES[i % 5]]},
        lambda i: {"source": [{"prefix": "tctf."}], "detail": {"plan": ["pro", "team"]}},
        lambda i: {"detail": {"amount": [{"numeric": [">", i * 10, "<=", i * 10 + 500]}]}},
        lambda i: {
            "detail-type": [TYPES[i % 5]],
            "detail": {"status": [{"anything-but": ["deleted", "banned"]}]},
        },
        lambda i: {"detail": {"address": {"country": ["IE", "FR", "DE"]}, "tags": [f"tag{i % 7}"]}},
        lambda i: {"detail": {"clientIp": [{"cidr": f"10.{i % 4}.0.0/16"}]}},
        lambda i: {"detail": {"deletedAt": [{"exists": False}], "email": [{"suffix": ".ie"}]}},
        lambda i: {
            "source": [SOURCES[i % 5]],
            "$or": [
                {"detail": {"priority": ["high"]}},
                {"detail": {"amount": [{"numeric": [">=", 900]}]}},
            ],
        },
        lambda i: {"region": [REGIONS[i % 3]], "detail": {"items": {"sku": [f"SKU-{i % 9}"]}}},
        lambda i: {"detail": {"user": {"name": [{"equals-ignore-case": f"user{i % 11}"}]}}},
    ]
    return [shapes[i % len(shapes)](i) for i in range(count)]


def events(count: int, seed: int = 7) -> list[dict[str, Any]]:
    """EventBridge envelopes of about 1 KiB each."""
    rng = random.Random(seed)
    made = []
    for n in range(count):
        made.append(
            {
                "version": "0",
                "id": f"6a7e8feb-b491-4cf7-a9f1-{n:012d}",
                "detail-type": rng.choice(TYPES),
                "source": rng.choice(SOURCES),
                "account": "111122223333",
                "time": "2025-03-01T18:43:48Z",
                "region": rng.choice(REGIONS),
                "resources": [f"arn:aws:dynamodb:eu-west-1:111122223333:table/t{n % 4}"],
                "detail": {
                    "user": {"id": f"u-{n}", "name": f"User{rng.randrange(20)}", "locale": "en-IE"},
                    "email": rng.choice(["a@example.ie", "b@example.com"]),
                    "plan": rng.choice(["free", "pro", "team"]),
                    "status": rng.choice(["active", "deleted", "pending"]),
                    "amount": rng.randrange(0, 1000),
                    "currency": "EUR",
                    "priority": rng.choice(["low", "high"]),
                    "clientIp": f"10.{rng.randrange(8)}.{rng.randrange(256)}.{rng.randrange(256)}",
                    "address": {"country": rng.choice(["IE", "US", "FR"]), "city": "Dublin"},
                    "tags": [f"tag{rng.randrange(10)}" for _ in range(3)],
                    "items": [
                        {
                            "sku": f"SKU-{rng.randrange(12)}",
                            "qty": rng.randrange(1, 5),
                            "price": 9.99,
                        }
                        for _ in range(3)
                    ],
                    "correlationId": f"c-{n:08d}-3f1e2d4c5b6a",
                    "note": "x" * 250,
                },
            }
        )
    return made


def measure(match_all: Callable[[], int], repeat: int) -> tuple[float, int]:
    """Best wall time of `repeat` runs, and how many rule/event pairs matched."""
    best = float("inf")
    matched = 0
    for _ in range(repeat):
        started = time.perf_counter()
        matched = match_all()
        best = min(best, time.perf_counter() - started)
    return best, matched


def conformance() -> tuple[int, int, int]:
    """AWS-recorded cases each matcher decides as AWS did (match / no match / invalid)."""
    cases = json.loads((AWS_CASES / "localstack_eventbridge_pattern_cases.json").read_text())[
        "cases"
    ]
    ours = theirs = 0
    for case in cases:
        expected = case["expected"]
        try:
            got = (
                "match"
                if compile_event_pattern(case["event_pattern"]).match(case["event"])
                else "no_match"
            )
        except InvalidEventPattern:
            got = "invalid_pattern"
        ours += got == expected
        try:
            moto = MotoEventPattern.load(json.dumps(case["event_pattern"]))
        except InvalidEventPatternException:
            got = "invalid_pattern"
        else:
            try:
                got = "match" if moto.matches_event(case["event"]) else "no_match"
            except Exception:  # a crash on an odd pattern is a wrong answer
                got = "crash"
        theirs += got == expected
    return ours, theirs, len(cases)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    rule_set = rules()
    batch = events(args.events)
    size = sum(len(json.dumps(event)) for event in batch) / len(batch)
    ours = [compile_event_pattern(rule) for rule in rule_set]
    moto = [MotoEventPattern.load(json.dumps(rule)) for rule in rule_set]

    our_time, our_matches = measure(
        lambda: sum(p.match(e) for e in batch for p in ours), args.repeat
    )
    moto_time, moto_matches = measure(
        lambda: sum(p.matches_event(e) for e in batch for p in moto),  # type: ignore[arg-type]
        args.repeat,
    )
    pairs = len(rule_set) * len(batch)
    right, moto_right, total = conformance()

    print(
        f"{len(rule_set)} rules x {len(batch)} events (avg {size:.0f} bytes), best of {args.repeat}"
    )
    print()
    print("| matcher | matches/s | us/match | pairs matched | AWS cases right | vs moto |")
    print("|---|---:|---:|---:|---:|---:|")
    print(
        f"| bus.routing | {pairs / our_time:,.0f} | {our_time / pairs * 1e6:.2f} | {our_matches} "
        f"| {right}/{total} | {moto_time / our_time:.1f}x |"
    )
    print(
        f"| moto EventPattern | {pairs / moto_time:,.0f} | {moto_time / pairs * 1e6:.2f} "
        f"| {moto_matches} | {moto_right}/{total} | 1.0x |"
    )


if __name__ == "__main__":
    main()
