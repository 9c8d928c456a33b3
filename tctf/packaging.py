"""One domain's Lambda artifact: the domain, the contracts it reads, the kernel, the adapters.

What goes in is decided by a static import scan from the domain and the Lambda entry point,
so a domain ships without the other domains' code, and with only the third-party
distributions its imports reach: those and their dependencies, at the versions and hashes of
`requirements/lambda.lock`, nothing resolved at build time.
"""

from __future__ import annotations

import argparse
import ast
import functools
import gzip
import json
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

from tctf.errors import PackagingError

if TYPE_CHECKING:
    from bus.domain import Domain

#: Top-level packages of this repository; everything else imported is stdlib or third-party.
FIRST_PARTY = ("bus", "domains", "adapters")
#: The module Lambda's handler setting names: `adapters.lambda_.entry.handler`.
ENTRY = "adapters.lambda_.entry"
#: The platform pip resolves wheels for: Lambda's python3.11 runtime on x86_64.
LAMBDA_PLATFORM = ("manylinux2014_x86_64", "3.11")
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # fixed, so the same sources give the same zip
#: The services whose botocore models a package keeps: those the AWS adapters call (STS for
#: credentials that need it). The rest of botocore's data (~400 services) is dropped.
BOTOCORE_SERVICES = frozenset({"sqs", "sns", "events", "dynamodb", "sts"})
#: The services a domain's declarations call through the adapters: `Mail`, SES (SESv2);
#: `Domain.websocket`, API Gateway's management API (posting to connections).
MAIL_SERVICES = frozenset({"sesv2"})
WEBSOCKET_SERVICES = frozenset({"apigatewaymanagementapi"})
#: `Domain(secrets=...)`: Secrets Manager, read once at init (adapters/aws/secrets.py).
SECRET_SERVICES = frozenset({"secretsmanager"})
#: Imports by which a domain calls AWS itself; its package then keeps every botocore model.
AWS_SDKS = frozenset({"boto3", "botocore", "aioboto3", "aiobotocore"})
#: Reached by the scan (the adapters' local-run paths) but never imported by a function,
#: whose clients are botocore's (decision 0008): left out with what they pull in (aiohttp
#: and its kin, ~14 MB), unless the domain imports them itself.
NOT_IN_FUNCTIONS = frozenset({"aioboto3", "aiobotocore"})
#: The SDK's own distributions; any other that requires one of them may call any service.
_SDK_DISTRIBUTIONS = frozenset({"boto3", "botocore", "s3transfer", "aioboto3", "aiobotocore"})
#: What a domain's name may be: a package directly under `domains/` (never a path).
DOMAIN_NAME = re.compile(r"[a-z_][a-z0-9_]*")
#: The file by which a directory `package(zip=False)` built is known, so that a rebuild may
#: replace it; a directory without it is someone else's and is never removed.
BUILT_MARKER = ".tctf-package"
#: Every distribution a function may ship, pinned with hashes (pip-compile --generate-hashes
#: of `requirements/lambda.in`; the command is in that file's header).
LOCK = Path(__file__).resolve().parent.parent / "requirements" / "lambda.lock"


@dataclass(frozen=True, slots=True)
class LockedRequirement:
    """One distribution of the lock: its pinned version, its hashes, who requires it."""

    #: The distribution's normalized name (PEP 503): lower case, runs of `-_.` as `-`.
    name: str
    version: str
    #: `sha256:...` of every file of the release pip may pick.
    hashes: tuple[str, ...]
    #: Normalized names of the locked distributions that require it (pip-compile's `via`).
    required_by: frozenset[str] = frozenset()

    def requirement_line(self) -> str:
        return " ".join([f"{self.name}=={self.version}", *(f"--hash={h}" for h in self.hashes)])


@dataclass(slots=True)
class Scan:
    """What a domain's function imports: first-party modules (with their files) and the
    top-level names of third-party distributions."""

    modules: dict[str, Path] = field(default_factory=dict)
    third_party: set[str] = field(default_factory=set)
    #: Third-party names imported by the domain's own modules (not the kernel's or adapters').
    domain_third_party: set[str] = field(default_factory=set)


def repository_root() -> Path:
    """The directory holding `bus/`, `domains/` and `adapters/` (this checkout)."""
    return Path(__file__).resolve().parent.parent


def scan(domain: str, root: Path | None = None) -> Scan:
    """Follow imports from the domain's modules and the entry point, statically."""
    root = root or repository_root()
    if not DOMAIN_NAME.fullmatch(domain):
        raise PackagingError(
            f"{domain!r} is not a domain name: name a package under domains/, e.g. users"
        )
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
                if name.startswith("domains."):
                    found.domain_third_party.add(top)
    return found


def requirements(third_party: Iterable[str], lock: Path | None = None) -> list[LockedRequirement]:
    """The locked distributions a function importing these top-level names needs: those
    providing them (as installed here) and, through the lock, everything they require."""
    lock = lock or LOCK
    owners = metadata.packages_distributions()
    if missing := sorted(top for top in third_party if top not in owners):
        raise PackagingError(
            f"the function imports {', '.join(missing)}, not installed here to pin: "
            "pip install -e '.[aws]', or package first-party code only (--no-deps)"
        )
    locked = read_lock(lock)
    needed = {_normalized(d) for top in third_party for d in owners[top]}
    if unlocked := sorted(needed - locked.keys()):
        raise PackagingError(
            f"the function needs {', '.join(unlocked)}, not in {lock}: add it to "
            "requirements/lambda.in and refresh the lock with pip-compile (the command is "
            "in that file's header)"
        )
    while more := {r.name for r in locked.values() if r.required_by & needed} - needed:
        needed |= more
    return [locked[name] for name in sorted(needed)]


def read_lock(path: Path) -> dict[str, LockedRequirement]:
    """A pip-compile `--generate-hashes` output, by normalized distribution name."""
    entries: list[tuple[str, str, list[str], list[str]]] = []
    in_via = False
    for raw in path.read_text().splitlines():
        line = raw.strip().removesuffix("\\").strip()
        if not line:
            continue
        if not raw[0].isspace() and not line.startswith(("#", "-")):
            name, _, version = line.partition(";")[0].strip().partition("==")
            entries.append((_normalized(name), version.strip(), [], []))
            in_via = False
        elif entries and line.startswith("--hash="):
            entries[-1][2].append(line.removeprefix("--hash="))
        elif entries and line.startswith("# via"):
            parent = line.removeprefix("# via").strip()
            entries[-1][3].extend([parent] if parent else [])
            in_via = not parent
        elif entries and in_via and line.startswith("#   "):
            entries[-1][3].append(line.removeprefix("#").strip())
        else:
            in_via = False
    return {
        name: LockedRequirement(
            name,
            version,
            tuple(hashes),
            frozenset(_normalized(v) for v in via if not v.startswith("-r ")),
        )
        for name, version, hashes, via in entries
    }


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def package(
    domain: str,
    out: Path,
    *,
    zip: bool = True,
    dependencies: bool = True,
    aws_services: Iterable[str] = (),
    root: Path | None = None,
    lock: Path | None = None,
) -> Path:
    """Build `out/<domain>.zip`, or with `zip=False` the directory `out/<domain>/`; return it.
    `out` may also name the zip itself (`users.zip`). Third-party distributions are those of
    `lock` (default `LOCK`), installed with `--require-hashes`: a file whose hash differs
    fails the build.

    `dependencies=False` copies only first-party code (fast, offline): for tests, and for a
    layer that already holds the third-party distributions. botocore keeps the models of
    `BOTOCORE_SERVICES` and `aws_services`, or all of them if the domain imports an AWS SDK
    itself. Every module is compiled to bytecode (see `compile_bytecode`).

    The package is assembled in a scratch directory beside the target and removed with it;
    nothing else is deleted, and an existing `out/<domain>/` is replaced only if a previous
    build left it (`BUILT_MARKER`).
    """
    root = root or repository_root()
    found = scan(domain, root)
    target = _target(domain, Path(out), zip)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{domain}-", dir=target.parent) as scratch:
        staging = Path(scratch) / domain
        staging.mkdir()
        _assemble(found, root, staging, dependencies, aws_services, lock)
        if zip:
            return _zip(staging, target)
        (staging / BUILT_MARKER).write_text(f"tctf package {domain}\n")
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    return target


def _target(domain: str, out: Path, zip: bool) -> Path:
    """The zip or directory `package` writes, refused if writing it would destroy others'."""
    if out.suffix == ".zip":
        if not zip:
            raise PackagingError(f"{out} names a zip, but --no-zip builds a directory")
        target = out
    else:
        target = out / (f"{domain}.zip" if zip else domain)
    if zip and target.is_dir():
        raise PackagingError(f"{target} is a directory: choose another -o for the zip")
    if not zip and target.exists() and not (target / BUILT_MARKER).is_file():
        raise PackagingError(
            f"{target} exists and tctf package did not build it: remove it or choose another -o"
        )
    return target


def _assemble(
    found: Scan,
    root: Path,
    staging: Path,
    dependencies: bool,
    aws_services: Iterable[str],
    lock: Path | None = None,
) -> None:
    """Copy the scanned modules, the kernel and (with `dependencies`) the third-party
    distributions into `staging`, and compile them."""
    for path in sorted(found.modules.values()):
        _copy(root, path, staging)
    _copy_package(root, "bus", staging)  # the kernel whole: its imports are its own business
    if dependencies:
        _install(requirements(function_imports(found), lock), staging)
        # pip's console scripts: never run by a function, and their #! names this machine.
        shutil.rmtree(staging / "bin", ignore_errors=True)
        callers = sdk_dependents(staging)
        kept = botocore_services(found, aws_services, callers)
        if kept is not None:
            prune_botocore_data(staging / "botocore" / "data", kept)
        elif callers:
            print(
                f"tctf package: every botocore model kept: {', '.join(callers)} may call any "
                "AWS service",
                file=sys.stderr,
            )
    compile_bytecode(staging)


def main(argv: Sequence[str] | None = None) -> int:
    """`tctf package DOMAIN [-o dist/|-o NAME.zip] [--no-deps] [--no-zip]`; prints what it
    built."""
    parser = argparse.ArgumentParser(prog="tctf package", description=main.__doc__)
    parser.add_argument("domain", help="the domain to package, e.g. users")
    parser.add_argument(
        "-o",
        "--out",
        type=Path,
        default=Path("dist"),
        help="output directory (default dist), or the zip's own name, e.g. users.zip",
    )
    parser.add_argument(
        "--no-deps", action="store_true", help="copy first-party code only (no pip install)"
    )
    parser.add_argument("--no-zip", action="store_true", help="leave the directory, no zip")
    parser.add_argument(
        "--aws-service",
        action="append",
        default=[],
        metavar="NAME",
        help="also keep botocore's model of this service (repeatable), e.g. ses",
    )
    args = parser.parse_args(argv)
    try:
        built = package(
            args.domain,
            args.out,
            zip=not args.no_zip,
            dependencies=not args.no_deps,
            aws_services=[*args.aws_service, *_declared_by(args.domain)],
        )
    except (PackagingError, subprocess.CalledProcessError) as error:
        print(f"tctf package: {error}", file=sys.stderr)
        return 2
    print(built)
    return 0


def _declared_by(name: str) -> frozenset[str]:
    """`declared_services` of the named domain, or none for a name `package` will refuse."""
    if not DOMAIN_NAME.fullmatch(name) or not (repository_root() / "domains" / name).is_dir():
        return frozenset()
    import domains

    return declared_services(domains.load(name))


def _check_boundary(domain: str, module: str) -> None:
    """Another domain is reachable only through its `contracts` module."""
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
    return list(_source_imports(path.read_text(), str(path), module, path.name == "__init__.py"))


@functools.lru_cache(maxsize=4096)
def _source_imports(source: str, filename: str, module: str, is_package: bool) -> tuple[str, ...]:
    """`_imports` of one version of a file's text: a file is parsed once however many scans
    reach it (`tctf pipelines` scans every domain's closure and every test's), and again
    only once its text changes."""
    tree = ast.parse(source, filename)
    names: list[str] = []
    for node in _walk_runtime(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node, module, is_package)
            names.append(base)
            names.extend(f"{base}.{alias.name}" for alias in node.names if alias.name != "*")
    return tuple(names)


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


def _install(pins: Sequence[LockedRequirement], staging: Path) -> None:
    """The locked wheels for Lambda's platform, whatever platform builds the package: each
    distribution at its locked version, checked against its locked hashes, nothing else
    resolved (`--no-deps`: the lock's closure is the whole list)."""
    if not pins:
        return
    subset = staging.parent / "requirements.lock"
    subset.write_text("".join(f"{pin.requirement_line()}\n" for pin in pins))
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
        "--require-hashes",
        "--no-deps",
        "--requirement",
        str(subset),
    ]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise PackagingError(
            "pip refused the locked distributions (a hash that does not match means the "
            f"lock or the download was tampered with):\n{done.stderr.strip()}"
        )


def function_imports(found: Scan) -> set[str]:
    """The third-party names the function imports: the scan's, less `NOT_IN_FUNCTIONS`."""
    return found.third_party - (NOT_IN_FUNCTIONS - found.domain_third_party)


def sdk_dependents(staging: Path) -> list[str]:
    """Distributions installed in `staging`, other than the SDK's own, that require an AWS
    SDK: the services they call cannot be known, as with a domain importing one itself."""
    dependents: set[str] = set()
    for distribution in metadata.distributions(path=[str(staging)]):
        name = str(distribution.metadata["Name"]).lower()
        if name in _SDK_DISTRIBUTIONS:
            continue
        for requirement in distribution.requires or ():
            required = re.split(r"[\s;<>=!~\[(]", requirement, maxsplit=1)[0].lower()
            if required in _SDK_DISTRIBUTIONS:
                dependents.add(name)
    return sorted(dependents)


def declared_services(domain: Domain) -> frozenset[str]:
    """The botocore models a domain's declarations need beyond `BOTOCORE_SERVICES`: SES's
    for a domain declaring `Mail`, API Gateway's management API for one with a WebSocket
    route, Secrets Manager's for one reading secrets; their adapters make these clients only
    when first used, or at init for secrets."""
    services = MAIL_SERVICES if domain.mail is not None else frozenset()
    if domain.secrets:
        services |= SECRET_SERVICES
    if domain.websocket_route is not None:
        services |= WEBSOCKET_SERVICES
    return services


def botocore_services(
    found: Scan, extra: Iterable[str] = (), sdk_dependents: Sequence[str] = ()
) -> set[str] | None:
    """The botocore models a package keeps; None (all of them) if the domain's own code
    imports an AWS SDK or a packaged library requires one, as the services they call cannot
    be read from imports."""
    if found.domain_third_party & AWS_SDKS or sdk_dependents:
        return None
    return {*BOTOCORE_SERVICES, *extra}


def compile_bytecode(staging: Path) -> None:
    """Bytecode beside every module, valid whatever the files' times.

    Lambda's `/var/task` is read-only: a function shipped without bytecode compiles every
    module it imports on every cold start. The zip's fixed times would invalidate ordinary
    (timestamp) .pyc files, so they are "unchecked-hash" ones, used as they are; the package
    is rebuilt, never edited. Compiled by a fresh interpreter, so the same sources give the
    same bytes; the names recorded for tracebacks are those under Lambda's `/var/task`. Only
    an interpreter of the runtime's version can write them: another one leaves a note and
    the sources alone.
    """
    runtime = LAMBDA_PLATFORM[1]
    if f"{sys.version_info.major}.{sys.version_info.minor}" != runtime:
        print(
            f"tctf package: no bytecode compiled: this is Python "
            f"{sys.version_info.major}.{sys.version_info.minor}, the function runs {runtime}",
            file=sys.stderr,
        )
        return
    # -I: none of this machine's PYTHON* settings (a PYTHONPYCACHEPREFIX would put the
    # bytecode elsewhere); -d: file names as the function sees them (the same bytes wherever
    # it was built).
    command = [sys.executable, "-I", "-m", "compileall", "-q", "-d", "/var/task"]
    command += ["--invalidation-mode", "unchecked-hash", str(staging)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise PackagingError(f"cannot compile the package's modules:\n{done.stdout.strip()}")


def prune_botocore_data(data: Path, services: Iterable[str]) -> None:
    """Keep botocore's models of `services` only, and their entries in `endpoints.json`.

    Making a client lists every service directory and parses the 1.2 MB endpoints file; with
    the ~400 services botocore ships, that is about half of a client's creation (~14 ms of a
    cold start), and most of the package's size. Nothing to do if botocore is not packaged.
    """
    if not data.is_dir():
        return
    keep = set(services)
    models = {entry.name for entry in data.iterdir() if entry.is_dir()}
    if unknown := keep - models:
        raise PackagingError(f"botocore has no model for {', '.join(sorted(unknown))}")
    for name in models - keep:
        shutil.rmtree(data / name)
    # endpoints.json is keyed by each service's endpoint prefix (ses's is "email").
    prefixes = {_endpoint_prefix(data / name) for name in keep} | keep
    endpoints = data / "endpoints.json"
    if endpoints.is_file():
        document = json.loads(endpoints.read_text())
        for partition in document.get("partitions", []):
            partition["services"] = {
                name: spec
                for name, spec in partition.get("services", {}).items()
                if name in prefixes
            }
        endpoints.write_text(json.dumps(document, separators=(",", ":"), sort_keys=True))


def _endpoint_prefix(model: Path) -> str:
    """`metadata.endpointPrefix` of a botocore service model (its newest API version)."""
    newest = max(p for p in model.iterdir() if p.is_dir())
    compressed = newest / "service-2.json.gz"
    raw = gzip.decompress(compressed.read_bytes()) if compressed.is_file() else None
    document = json.loads(raw if raw is not None else (newest / "service-2.json").read_text())
    return str(document["metadata"]["endpointPrefix"])


def _zip(staging: Path, target: Path) -> Path:
    target.unlink(missing_ok=True)
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(p for p in staging.rglob("*") if p.is_file()):
            info = zipfile.ZipInfo(path.relative_to(staging).as_posix(), _ZIP_DATE)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())
    return target
