"""The platform synthesized once a session for each transport (jsii is slow): the cloud
assemblies, and the templates every test of the stacks reads."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.tctf.synthesized import Templates, synthesize, templates


@pytest.fixture(scope="session")
def sns_assembly(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthesize(tmp_path_factory.mktemp("sns"), "sns")


@pytest.fixture(scope="session")
def eventbridge_assembly(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthesize(tmp_path_factory.mktemp("eventbridge"), "eventbridge")


@pytest.fixture(scope="session")
def sns_app(sns_assembly: Path) -> Templates:
    return templates(sns_assembly)


@pytest.fixture(scope="session")
def eventbridge_app(eventbridge_assembly: Path) -> Templates:
    return templates(eventbridge_assembly)
