"""The repository stands alone: tests and benchmarks read only what it holds.

AWS's reference files are copied into `tests/fixtures/aws/`, each recorded with its source and
checksum in `SOURCES.md`; nothing under `tests/` or `benchmarks/` names a path outside the
repository, so a clone with nothing beside it passes.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from tests.fixtures import AWS

ROOT = Path(__file__).resolve().parents[1]
SHARED = "sha" + "red"  # the folder beside the repository that a clone does not have
SCANNED = ("tests", "benchmarks")
TEXT_SUFFIXES = {".py", ".md", ".toml", ".cfg", ".ini", ".txt", ".sh", ".json", ".yaml", ".yml"}

#: A path literal that starts at the file system's root (`"/work/...`, `'/home/...`), or a Path
#: that climbs above the repository (`Path("../x")`, `parents[N] / ".."`). A string such as
#: "../domains/users" given to a command as hostile input is not a path the test reads.
ABSOLUTE = re.compile(
    r"""["'](/(?:work|home|root|opt|srv|mnt|Users)/[^"'`]*|[^"'`]*/shared/aws[^"'`]*)["']"""
)
CLIMBS = re.compile(r"""Path\(\s*["']\.\.[/"']|/\s*["']\.\.["']""")

_ROW = re.compile(r"^\| `([^`]+)` \|.*\| (\d+) \| `([0-9a-f]{64})` \|$")


def _sources() -> dict[str, tuple[int, str]]:
    rows = {}
    for line in (AWS / "SOURCES.md").read_text(encoding="utf-8").splitlines():
        if match := _ROW.match(line):
            rows[match[1]] = (int(match[2]), match[3])
    return rows


def _scanned_files() -> list[Path]:
    return sorted(
        path
        for folder in SCANNED
        for path in (ROOT / folder).rglob("*")
        if path.is_file()
        and path.suffix in TEXT_SUFFIXES
        and "fixtures" not in path.parts
        and path != Path(__file__).resolve()  # its own examples below are meant to be caught
    )


def test_every_fixture_file_is_recorded_in_sources_with_its_checksum() -> None:
    recorded = _sources()
    present = {
        str(path.relative_to(AWS))
        for path in AWS.rglob("*")
        if path.is_file() and path.name not in ("SOURCES.md", "LICENSE-Apache-2.0.txt")
    }
    assert present == set(recorded), "every file under tests/fixtures/aws has a SOURCES.md row"
    for name, (size, digest) in recorded.items():
        data = (AWS / name).read_bytes()
        assert (len(data), hashlib.sha256(data).hexdigest()) == (size, digest), (
            f"{name} differs from the copy SOURCES.md records: vectors are kept byte for byte"
        )


@pytest.mark.parametrize("path", _scanned_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_test_or_benchmark_names_a_path_outside_the_repository(path: Path) -> None:
    text = path.read_text(encoding="utf-8", errors="replace")
    outside = ABSOLUTE.findall(text) + CLIMBS.findall(text)
    assert not outside, f"{path.relative_to(ROOT)} names {outside}: copy what it needs in here"


@pytest.mark.parametrize(
    "line",
    [
        # Spelled in pieces, so that this file holds none of the paths it must catch.
        'AWS = Path("/work/' + SHARED + '/aws")',
        'AWS = Path(__file__).parents[3] / ".." / "' + SHARED + '"',
        "AWS = Path('../" + SHARED + "/aws/derived')",
        "SAMPLES = Path('/home/me/aws')",
    ],
)
def test_the_scan_catches_paths_outside_the_repository(line: str) -> None:
    assert ABSOLUTE.findall(line) or CLIMBS.findall(line)
