"""`tctf pipelines`: one workflow per domain, checked in and up to date, triggered by the
domain's closure exactly as `tctf affected` computes it, by nothing of another domain but
its published contracts."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

import domains
from tctf.affected import BUILD_FILES, closures, reached
from tctf.packaging import repository_root
from tctf.pipelines import HEADER, WORKFLOWS, workflows, write

ROOT = repository_root()


@pytest.fixture(scope="module")
def generated() -> dict[str, str]:
    return workflows(ROOT)


@pytest.fixture(scope="module")
def parsed(generated: dict[str, str]) -> dict[str, dict[str, Any]]:
    return {name.removesuffix(".yml"): yaml.safe_load(text) for name, text in generated.items()}


def triggers(workflow: dict[str, Any], path: str) -> bool:
    """Whether GitHub runs the workflow for a push changing `path` (its `paths` filter)."""
    return any(
        path.startswith(p.removesuffix("**")) if p.endswith("/**") else path == p
        for p in workflow["on"]["push"]["paths"]
    )


def test_the_checked_in_workflows_are_those_the_tree_gives(generated: dict[str, str]) -> None:
    checked_in = {
        path.name: path.read_text()
        for path in (ROOT / WORKFLOWS).glob("*.yml")
        if path.read_text().startswith(HEADER)
    }
    assert checked_in == generated, "stale: run `tctf pipelines` and commit .github/workflows"


def test_one_workflow_per_domain_with_every_stage(parsed: dict[str, dict[str, Any]]) -> None:
    assert sorted(parsed) == domains.names()
    for name, workflow in parsed.items():
        jobs = workflow["jobs"]
        assert list(jobs) == ["lint", "unit", "integration", "package", "synth", "deploy"]
        assert jobs["deploy"]["needs"] == ["lint", "unit", "integration", "package", "synth"]
        assert [job for job in jobs if "needs" in jobs[job]] == ["deploy"]
        assert "github.ref == 'refs/heads/main'" in jobs["deploy"]["if"]
        (deploy,) = [s["run"] for s in jobs["deploy"]["steps"] if "run" in s]
        assert f"deploy --app cdk.out tctf-{name.replace('_', '-')} --exclusively" in deploy
        assert workflow["on"]["push"]["paths"] == workflow["on"]["pull_request"]["paths"]
        unit = jobs["unit"]["steps"][-1]["run"]
        assert unit.startswith("pytest -q tests/domains/"), unit


def test_every_change_tctf_affected_names_runs_that_domain_s_workflow(
    parsed: dict[str, dict[str, Any]],
) -> None:
    tracked = subprocess.run(
        ["git", "ls-files", "bus", "adapters", "domains", "tctf"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    closure = closures(ROOT)
    for path in [*tracked, *BUILD_FILES]:
        for domain in reached([path], closure):
            assert triggers(parsed[domain], path), (domain, path)


def test_a_workflow_reads_nothing_of_another_domain_but_its_contracts(
    parsed: dict[str, dict[str, Any]],
) -> None:
    for name, workflow in parsed.items():
        for other in parsed:
            if other == name:
                continue
            paths = workflow["on"]["push"]["paths"]
            theirs = [p for p in paths if p.startswith(f"domains/{other}/")]
            assert set(theirs) <= {f"domains/{other}/__init__.py", f"domains/{other}/contracts.py"}
            assert not triggers(workflow, f"domains/{other}/app.py"), (name, other)


def test_writing_replaces_generated_workflows_of_domains_gone_and_keeps_others(
    tmp_path: Path,
) -> None:
    (tmp_path / "retired.yml").write_text(HEADER + "name: retired\n")
    (tmp_path / "docs.yml").write_text("name: docs\n")
    written = write(tmp_path, ROOT)
    assert sorted(p.name for p in tmp_path.glob("*.yml")) == sorted(
        ["docs.yml", *(p.name for p in written)]
    )
