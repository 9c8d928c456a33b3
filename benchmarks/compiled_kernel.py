"""What compiling the kernel's hot path would give: the in-memory bus interpreted vs mypyc-built.

Issue 17 asks for 0.25x of a raw `asyncio.Queue` loop. This measures the ceiling of the one
compiled fast path that needs no second implementation: the same `bus/` modules built to C
extensions with mypyc (it ships with mypy, a dev dependency; a C compiler is needed). The
modules are copied to a temporary directory, three constructs mypyc refuses are rewritten
there without changing behaviour (a `continue` inside `try`/`finally`, a runtime-checkable
protocol inheriting a protocol), the copy is compiled, and `bus_throughput.py` runs in turns
against the copy and against this checkout, each in its own process beside its own raw loop,
timed by CPU.

    .venv/bin/python benchmarks/compiled_kernel.py [--rounds 2] [--repeat 3] [--events 20000]

`bus/runtime.py` stays interpreted (mypyc does not compile async generators), as do the
pydantic models in `bus/messages.py`.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
THROUGHPUT = Path(__file__).resolve().parent / "bus_throughput.py"

#: The modules every published and delivered event runs through, compiled together.
COMPILED = (
    "assembly",
    "clock",
    "context",
    "dispatch",
    "envelope",
    "held",
    "ids",
    "limits",
    "memory",
    "metrics",
    "middleware",
    "observability",
    "topology",
    "transport",
)

#: (module, text, replacement): the same behaviour in constructs mypyc compiles.
REWRITES = (
    # The early exit for an all-handled batch: the loop after it deletes those records too.
    (
        "memory",
        """                if not (result.parked or result.failed):
                    for message, generation in received:
                        queue.delete(message, generation)
                    continue
""",
        "",
    ),
    # mypyc compiles protocols as traits and refuses a non-extension class inheriting one.
    (
        "middleware",
        "@runtime_checkable\nclass BatchIdempotencyStore(IdempotencyStore, Protocol):",
        "class BatchIdempotencyStore(Protocol):",
    ),
    (
        "dispatch",
        "self._batch_store = store if isinstance(store, BatchIdempotencyStore) else None",
        "self._batch_store: BatchIdempotencyStore | None = (\n"
        "            store if hasattr(store, 'claim_many') else None  # type: ignore[assignment]\n"
        "        )",
    ),
)

ROW = re.compile(
    r"^\| (raw asyncio\.Queue \+ direct call|tctf in-memory transport) \| ([\d,]+) \| ([\d,]+) \|"
)


def build(into: Path) -> None:
    """Copy `bus/` into `into`, rewrite what mypyc refuses, compile `COMPILED` in place."""
    shutil.copytree(ROOT / "bus", into / "bus", ignore=shutil.ignore_patterns("__pycache__"))
    for module, text, replacement in REWRITES:
        path = into / "bus" / f"{module}.py"
        source = path.read_text()
        if source.count(text) != 1:
            raise SystemExit(f"bus/{module}.py changed: rewrite it anew for mypyc ({text[:60]!r})")
        path.write_text(source.replace(text, replacement))
    subprocess.run(
        [sys.executable, "-m", "mypyc", *(f"bus/{m}.py" for m in COMPILED)],
        cwd=into,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    loaded = subprocess.run(
        [sys.executable, "-c", "import bus.memory; print(bus.memory.__file__)"],
        cwd=tempfile.gettempdir(),
        env={**os.environ, "PYTHONPATH": str(into)},
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    if not loaded.endswith(".so"):
        raise SystemExit(f"the compiled bus was not the one imported: {loaded}")


def throughput(bus_root: Path, events: int, repeat: int) -> dict[str, tuple[int, int]]:
    """Events/s with 1 and 10 subscribers of the raw loop and of tctf, `bus` from `bus_root`."""
    output = subprocess.run(
        [
            sys.executable,
            str(THROUGHPUT),
            "--cpu",
            "--peer-events",
            "0",
            "--repeat",
            str(repeat),
            "--events",
            str(events),
        ],
        cwd=tempfile.gettempdir(),  # so that the checkout's `bus` is not found first
        env={**os.environ, "PYTHONPATH": str(bus_root)},
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    rows = {}
    for line in output.splitlines():
        if match := ROW.match(line):
            rows[match[1]] = (int(match[2].replace(",", "")), int(match[3].replace(",", "")))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--events", type=int, default=20_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        compiled = Path(scratch)
        build(compiled)
        print(
            f"events/s (process CPU time), median of {args.repeat}, {args.events:,} events; "
            f"{len(COMPILED)} bus modules compiled by mypyc\n"
        )
        print("| round | bus | raw loop (1 / 10) | tctf (1 / 10) | tctf ÷ raw (1 / 10) |")
        print("|---|---|---:|---:|---:|")
        for round_ in range(1, args.rounds + 1):
            for label, bus_root in (("interpreted", ROOT), ("compiled", compiled)):
                rows = throughput(bus_root, args.events, args.repeat)
                raw = rows["raw asyncio.Queue + direct call"]
                ours = rows["tctf in-memory transport"]
                print(
                    f"| {round_} | {label} | {raw[0]:,} / {raw[1]:,} | {ours[0]:,} / {ours[1]:,} | "
                    f"{ours[0] / raw[0]:.2f}x / {ours[1] / raw[1]:.2f}x |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
