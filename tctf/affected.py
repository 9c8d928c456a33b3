"""`tctf affected --base REF`: the domains whose deployable closure a change reaches.

A domain's closure is what its Lambda package is built from — the static import scan of
`tctf.packaging`: its own package, the contracts it reads, the kernel and adapters those and
the Lambda entry point import — and the few files that build every package and stack
(`BUILD_FILES`). A change to billing's modules reaches billing alone; a change to a kernel
module reaches the domains whose imports reach it; a change to the lock reaches all.

The files changed are git's: those differing between the merge base of REF and the working
tree, and those not yet tracked. The graph is read from the files of the checkout at `root`,
not from what the running interpreter imports, so it answers for any checkout.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path

from tctf.errors import GitError
from tctf.packaging import repository_root, scan

#: What builds every domain's package and stack: a change to one reaches every domain.
BUILD_FILES = (
    "pyproject.toml",
    "requirements/lambda.lock",
    "tctf/packaging.py",
    "tctf/synth.py",
    "tctf/nag.py",
)


def domain_names(root: Path) -> list[str]:
    """The domains of the checkout at `root`: each package under domains/ with an `app.py`
    (the rule of `domains.names()`, applied to files rather than to what is importable)."""
    return sorted(path.parent.name for path in (root / "domains").glob("*/app.py"))


def closure(domain: str, root: Path) -> frozenset[str]:
    """Repository-relative paths (POSIX) whose change redeploys `domain`."""
    modules = scan(domain, root).modules.values()
    return frozenset({*(path.relative_to(root).as_posix() for path in modules), *BUILD_FILES})


def changed_files(base: str, root: Path) -> set[str]:
    """Paths changed since the merge base of `base` and HEAD (committed or not), both sides
    of a rename, and untracked files."""
    diff = _git(root, "diff", "--name-only", "--no-renames", "--merge-base", base)
    untracked = _git(root, "ls-files", "--others", "--exclude-standard")
    return {line for line in (*diff.splitlines(), *untracked.splitlines()) if line}


def closures(root: Path) -> dict[str, frozenset[str]]:
    """Each domain of the checkout at `root` and its closure."""
    return {domain: closure(domain, root) for domain in domain_names(root)}


def affected(base: str, root: Path | None = None) -> list[str]:
    """The domains, sorted, whose closure holds a file changed since `base`."""
    root = root or repository_root()
    return reached(changed_files(base, root), closures(root))


def reached(changed: Iterable[str], closures: Mapping[str, frozenset[str]]) -> list[str]:
    """The domains, sorted, whose closure holds one of `changed`, or whose package holds
    one (a file deleted from it is in no scan any more)."""
    changed = set(changed)
    return sorted(
        domain
        for domain, files in closures.items()
        if changed & files or any(path.startswith(f"domains/{domain}/") for path in changed)
    )


def _git(root: Path, *args: str) -> str:
    try:
        done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise GitError(
            "git is not installed, and `tctf affected` reads the change from it"
        ) from None
    if done.returncode != 0:
        raise GitError(f"git {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout
