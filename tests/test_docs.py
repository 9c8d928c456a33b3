"""The tutorial's code runs as written: docs/writing-a-domain.md builds a working domain."""

from __future__ import annotations

import importlib
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import domains

DOC = Path(__file__).resolve().parents[1] / "docs" / "writing-a-domain.md"


@pytest.fixture
def loyalty_package(tmp_path: Path) -> Iterator[str]:
    contracts, app, *tests = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    package = tmp_path / "loyalty"
    package.mkdir()
    (package / "__init__.py").write_text('"""Loyalty: points for new users."""\n')
    (package / "contracts.py").write_text(contracts)
    (package / "app.py").write_text(app)
    domains.__path__.append(str(tmp_path))
    try:
        yield "\n".join(tests)
    finally:
        domains.__path__.remove(str(tmp_path))
        for name in [m for m in sys.modules if m.startswith("domains.loyalty")]:
            del sys.modules[name]


async def test_the_tutorial_domain_and_its_test_work(loyalty_package: str) -> None:
    app = importlib.import_module("domains.loyalty.app")
    assert [r.path for r in app.domain.http_routes] == ["/points/{user_id}"]
    namespace: dict[str, object] = {}
    exec(compile(loyalty_package, str(DOC), "exec"), namespace)
    tests = [name for name in namespace if name.startswith("test_")]
    assert tests == ["test_new_users_get_100_points", "test_a_user_reads_their_points"]
    for name in tests:
        await namespace[name]()  # type: ignore[operator]


RELIABILITY = DOC.parent / "reliability.md"


def test_every_test_docs_reliability_names_exists() -> None:
    """A promise in docs/reliability.md points at a test that is there to fail."""
    root = DOC.parents[1]
    named = re.findall(r"`(tests/[^`]+?\.py)(?:::(\w+))?`", RELIABILITY.read_text())
    assert len(named) > 30
    for path, test in named:
        source = root / path
        assert source.exists(), f"docs/reliability.md names {path}, which is not there"
        if test:
            assert re.search(rf"def {test}\(", source.read_text()), f"{path}::{test} is gone"
