"""`tctf synth` at scale, and a one-domain change against the 8-minute promise.

Scale: the generated platform of 34 domains (tests/scale_platform.py) is built into the CDK
app (`tctf.synth.build_app`, cdk-nag's rules included) and synthesized; each domain's code
is one small folder, as packaging is measured apart (below). Wall time, best and median of
`--runs`, each run in a fresh interpreter (jsii starts its Node.js process once a process).

One-domain change: the steps a domain's pipeline runs locally, each timed as a fresh
`tctf` command: `tctf affected --base HEAD~1`, `tctf package DOMAIN` (with its locked wheels
unless --no-deps), and `tctf synth --domain DOMAIN` (which packages again, as the synth job
does). Lint, tests and the deployment itself are not in it; the total is compared with the
8 minutes the issue promises from merge to production.

    .venv/bin/python benchmarks/synth_scale.py [--runs 3] [--domain billing] [--no-deps]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROMISE_SECONDS = 8 * 60
LAYER = "arn:aws:lambda:us-east-1:123456789012:layer:tctf-deps:1"

SCALE_RUN = """
import sys, tempfile, time
from pathlib import Path
sys.path.insert(0, {root!r})
from tests.scale_platform import scale_platform
from tctf.nag import findings
from tctf.synth import build_app
started = time.perf_counter()
platform = scale_platform()
with tempfile.TemporaryDirectory() as scratch:
    code = Path(scratch, "code")
    code.mkdir()
    (code / "handler.py").write_text("")
    app = build_app(platform, {{d.name: code for d in platform}}, outdir=str(Path(scratch, "out")))
    assembly = app.synth()
    assert findings(assembly) == []
    print(len(assembly.stacks), time.perf_counter() - started)
"""


def scale(runs: int) -> None:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", SCALE_RUN.format(root=str(ROOT))],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        )
        wall = time.perf_counter() - started
        stacks, inside = done.stdout.split()
        times.append(wall)
        print(f"  run: {stacks} stacks, {wall:.1f} s wall ({float(inside):.1f} s in the app)")
    print(
        f"34-domain synth: best {min(times):.1f} s, median {statistics.median(times):.1f} s "
        f"({runs} runs)"
    )


def one_domain_change(domain: str, dependencies: bool) -> None:
    tctf = str(Path(sys.executable).with_name("tctf"))
    deps = [] if dependencies else ["--no-deps"]
    layer = [] if dependencies else ["--layer", LAYER]
    with tempfile.TemporaryDirectory() as scratch:
        steps = {
            "affected": [tctf, "affected", "--base", "HEAD~1"],
            "package": [tctf, "package", domain, "-o", f"{scratch}/dist", *deps],
            "synth": [tctf, "synth", "--domain", domain, "-o", f"{scratch}/cdk.out", *deps, *layer],
        }
        total = 0.0
        for name, command in steps.items():
            started = time.perf_counter()
            subprocess.run(command, check=True, cwd=ROOT, capture_output=True)
            took = time.perf_counter() - started
            total += took
            print(f"  {name:<9} {took:6.1f} s")
    share = total / PROMISE_SECONDS
    print(f"one-domain change ({domain}): {total:.1f} s, {share:.0%} of the 8-minute promise")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--domain", default="billing")
    parser.add_argument("--no-deps", action="store_true", help="package first-party code only")
    parser.add_argument("--skip-scale", action="store_true")
    args = parser.parse_args()
    if not args.skip_scale:
        scale(args.runs)
    one_domain_change(args.domain, not args.no_deps)


if __name__ == "__main__":
    main()
