"""What a Lambda function's init loads, seen from a fresh interpreter."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: A function's environment in which no AWS call can succeed: were init to make one, it
#: would be refused at once.
NO_AWS = {
    "AWS_ENDPOINT_URL": "http://127.0.0.1:1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "x",
    "AWS_SECRET_ACCESS_KEY": "x",
}

_PROBE = """
import importlib, json, sys
for name in sys.argv[1:]:
    importlib.import_module(name)
print(json.dumps(sorted(sys.modules)))
"""


def modules_after_import(env: Mapping[str, str], *modules: str) -> set[str]:
    """Every module loaded once `modules` are imported (`adapters.lambda_.entry` builds the
    function of the environment's TCTF_DOMAIN) in a new interpreter at the repository root."""
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, *modules],
        env={**os.environ, **NO_AWS, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    loaded: list[str] = json.loads(done.stdout.strip().splitlines()[-1])
    return set(loaded)
