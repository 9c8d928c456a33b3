"""The whole platform synthesized as `tctf synth` writes it, read back as templates."""

from __future__ import annotations

import fcntl
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tctf.synth import main

#: The layer first-party-only packages run beside (no pip install in the suite).
LAYER = "arn:aws:lambda:us-east-1:123456789012:layer:tctf-deps:1"
#: The assembly's manifest, renamed: read by tests, and not a template.
MANIFEST = "manifest.keep"

Templates = dict[str, dict[str, Any]]


def synthesize(out: Path, transport: str) -> Path:
    """`tctf synth --transport TRANSPORT` into `out`; returns `out`."""
    assert main(["-o", str(out), "--transport", transport, "--no-deps", "--layer", LAYER]) == 0
    (out / "manifest.json").rename(out / MANIFEST)
    return out


def synthesized_once(cache: Path, transport: str) -> Path:
    """The assembly of `transport` in `cache/<transport>-assembly`, synthesized by whichever
    process asks first while the others wait on a lock: a run's workers share one synth.
    The manifest, renamed last, says a synth finished."""
    out = cache / f"{transport}-assembly"
    with (cache / f"{transport}-assembly.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (out / MANIFEST).exists():
            synthesize(out, transport)
    return out


def templates(out: Path) -> Templates:
    """Stack name -> template of the assembly in `out`."""
    return {
        path.name.removesuffix(".template.json"): json.loads(path.read_text())
        for path in out.glob("*.template.json")
    }


def lint_findings(templates: Mapping[str, Any], regions: list[str]) -> dict[str, list[str]]:
    """cfn-lint's findings for each template (none listed for a clean one), as
    `cfnlint.api.lint` reports them, but with one runner for them all, as the cfn-lint CLI
    lints several files: `lint` reads every rule's schemas again for each template. W3005
    is ignored: CDK states a role dependency that a GetAtt already implies."""
    from cfnlint.api import ManualArgs
    from cfnlint.config import ConfigMixIn
    from cfnlint.decode.decode import decode_str
    from cfnlint.runner import Runner

    runner = Runner(ConfigMixIn(**ManualArgs(regions=regions, ignore_checks=["W3005"])))
    found = {}
    for name, template in templates.items():
        decoded, errors = decode_str(json.dumps(template))
        matches = errors or ([] if decoded is None else runner.validate_template(decoded))
        found[name] = [str(m) for m in matches]
    return {name: matches for name, matches in found.items() if matches}
