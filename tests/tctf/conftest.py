"""The platform synthesized once a run for each transport (jsii is slow): the cloud
assemblies, and the templates every test of the stacks reads."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.tctf.synthesized import Templates, synthesized_once, templates


@pytest.fixture(scope="session")
def synth_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where assemblies are synthesized once for the whole run: the run's own temporary
    directory, which pytest-xdist's workers share (each has `popen-gwN` inside it)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if "PYTEST_XDIST_WORKER" in os.environ else base


@pytest.fixture(scope="session")
def sns_assembly(synth_cache: Path) -> Path:
    return synthesized_once(synth_cache, "sns")


@pytest.fixture(scope="session")
def eventbridge_assembly(synth_cache: Path) -> Path:
    return synthesized_once(synth_cache, "eventbridge")


@pytest.fixture(scope="session")
def sns_app(sns_assembly: Path) -> Templates:
    return templates(sns_assembly)


@pytest.fixture(scope="session")
def eventbridge_app(eventbridge_assembly: Path) -> Templates:
    return templates(eventbridge_assembly)
