"""The whole platform synthesized as `tctf synth` writes it, read back as templates."""

from __future__ import annotations

import json
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


def templates(out: Path) -> Templates:
    """Stack name -> template of the assembly in `out`."""
    return {
        path.name.removesuffix(".template.json"): json.loads(path.read_text())
        for path in out.glob("*.template.json")
    }
