"""One domain's Lambda artifact: the domain, the contracts it reads, the kernel, the adapters.

What goes in is decided by a static import scan from the domain and the Lambda entry point,
so a domain ships without the other domains' code, and with only the third-party
distributions its imports reach.
"""

from __future__ import annotations

import argparse
import ast
import shutil
import subprocess
import sys
import zipfile
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

#: Top-level packages of this repository; everything else imported is stdlib or third-party.
FIRST_PARTY = ("bus", "domains", "adapters")
#: The module Lambda's handler setting names: `adapters.lambda_.entry.handler`.
ENTRY = "adapters.lambda_.entry"
#: The platform pip resolves wheels for: Lambda's python3.11 runtime on x86_64.
LAMBDA_PLATFORM = ("manylinux2014_x86_64", "3.11")
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # fixed, so the same sources give the same zip


class PackagingError(Exception):
    """The domain cannot be packaged as asked; the message says why and what to change."""


@dataclass(slots=True)
class Scan:
    """What a domain's function imports: first-party modules (with their files) and the
    top-level names of third-party distributions."""

    modules: dict[str, Path] = field(default_factory=dict)
    third_party: set[str] = field(default_factory=set)


def repository_root() -> Path:
    """The directory holding `bus/`, `domains/` and `adapters/` (this checkout)."""
    return Path(__file__).resolve().parent.parent


def scan(domain: str, root: Path | None = None) -> Scan:
    """Follow imports from the domain's modules and the entry point, statically."""
    root = root or repository_root()
    if not (root / "domains" / domain / "app.py").is_file():
        known = sorted(p.parent.name for p in (root / "domains").glob("*/app.py"))
        raise PackagingError(f"no domain {domain!r} (known: {', '.join(known) or 'none'})")
    found = Scan()
    queue = deque([*_package_modules(root, f"domains.{domain}"), ENTRY])
    while queue:
        name = queue.popleft()
        if name in found.modules:
            continue
        path = _module_file(root, name)
        if path is None:
            continue
        _check_boundary(domain, name)
        found.modules[name] = path
        for parent in _parents(name):
            queue.append(parent)
        for imported in _imports(path, name):
            top = imported.partition(".")[0]
            if top in FIRST_PARTY:
                queue.append(imported)
            elif top not in sys.stdlib_module_names and top != "__future__":
                found.third_party.add(top)
    return found


def requirements(third_party: Iterable[str]) -> list[str]:
    """Pinned requirements (`name==version`, as installed here) for top-level import names."""
    owners = metadata.packages_distributions()
    pins: set[str] = set()
    for top in third_party:
        for distribution in owners.get(top, ()):
            pins.add(f"{distribution}=={metadata.version(distribution)}")
    return sorted(pins, key=str.lower)


def package(
    domain: str,
    out: Path,
    *,
    zip: bool = True,
    dependencies: bool = True,
    root: Path | None = None,
) -> Path:
    """Build `out/<domain>/` and, with `zip`, `out/<domain>.zip`; return what was built.

    `dependencies=False` copies only first-party code (fast, offline): for tests, and for a
    layer that already holds the third-party distributions.
    """
    root = root or repository_root()
    found = scan(domain, root)
    staging = Path(out) / domain
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    for path in sorted(found.modules.values()):
        _copy(root, path, staging)
    _copy_package(root, "bus", staging)  # the kernel whole: its imports are its own business
    if dependencies:
        _install(requirements(found.third_party), staging)
    if not zip:
        return staging
    return _zip(staging, Path(out) / f"{domain}.zip")


def main(argv: Sequence[str] | None = None) -> int:
    """`tctf package DOMAIN [-o dist/] [--no-deps] [--no-zip]`; prints what it built."""
    parser = argparse.ArgumentParser(prog="tctf package", description=main.__doc__)
    parser.add_argument("domain", help="the domain to package, e.g. users")
    parser.add_argument("-o", "--out", type=Path, default=Path("dist"), help="output directory")
    parser.add_argument(
        "--no-deps", action="store_true", help="copy first-party code only (no pip install)"
    )
    parser.add_argument("--no-zip", action="store_true", help="leave the directory, no zip")
    args = parser.parse_args(argv)
    try:
        built = package(args.domain, args.out, zip=not args.no_zip, dependencies=not args.no_deps)
    except (PackagingError, subprocess.CalledProcessError) as error:
        print(f"tctf package: {error}", file=sys.stderr)
        return 2
    print(built)
    return 0


def _check_boundary(domain: str, module: str) -> None:
    """Another domain is reachable only through its `contracts` module (DESIGN.md)."""
    parts = module.split(".")
    if parts[0] != "domains" or len(parts) < 2 or parts[1] == domain:
        return
    if parts[2:] not in ([], ["contracts"]):
        raise PackagingError(
            f"domain {domain} reaches {module}: another domain may be imported only through "
            f"domains.{parts[1]}.contracts"
        )


def _module_file(root: Path, name: str) -> Path | None:
    base = root.joinpath(*name.split("."))
    for candidate in (base / "__init__.py", base.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None  # a name imported from a module (`from bus import Domain`), not a module


def _package_modules(root: Path, package: str) -> list[str]:
    directory = root.joinpath(*package.split("."))
    return [
        ".".join(path.relative_to(root).with_suffix("").parts).removesuffix(".__init__")
        for path in sorted(directory.rglob("*.py"))
        if "__pycache__" not in path.parts
    ]


def _parents(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def _imports(path: Path, module: str) -> list[str]:
    """Every module a file imports, anywhere in it (lazy imports too), not under TYPE_CHECKING."""
    tree = ast.parse(path.read_text(), str(path))
    is_package = path.name == "__init__.py"
    names: list[str] = []
    for node in _walk_runtime(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node, module, is_package)
            names.append(base)
            names.extend(f"{base}.{alias.name}" for alias in node.names if alias.name != "*")
    return names


def _walk_runtime(tree: ast.AST) -> Iterable[ast.AST]:
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _absolute(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    parts = module.split(".")
    anchor = parts if is_package else parts[:-1]
    anchor = anchor[: len(anchor) - (node.level - 1)]
    return ".".join([*anchor, *([node.module] if node.module else [])])


def _copy_package(root: Path, package: str, staging: Path) -> None:
    for name in _package_modules(root, package):
        path = _module_file(root, name)
        if path is not None:
            _copy(root, path, staging)


def _copy(root: Path, path: Path, staging: Path) -> None:
    target = staging / path.relative_to(root)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, target)


def _install(pins: Sequence[str], staging: Path) -> None:
    """Wheels for Lambda's platform, whatever platform builds the package."""
    if not pins:
        return
    platform, python = LAMBDA_PLATFORM
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--no-compile",
        "--target",
        str(staging),
        "--platform",
        platform,
        "--implementation",
        "cp",
        "--python-version",
        python,
        "--only-binary=:all:",
        *pins,
    ]
    subprocess.run(command, check=True)


def _zip(staging: Path, target: Path) -> Path:
    target.unlink(missing_ok=True)
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(p for p in staging.rglob("*") if p.is_file()):
            if "__pycache__" in path.parts:
                continue
            info = zipfile.ZipInfo(path.relative_to(staging).as_posix(), _ZIP_DATE)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())
    return target
