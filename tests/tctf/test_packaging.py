"""`tctf package DOMAIN`: one domain's function, importable alone, with no other domain's code."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import uuid
import zipfile
from pathlib import Path
from typing import Any

import botocore
import botocore.session
import pytest
from botocore.exceptions import UnknownServiceError
from botocore.loaders import Loader

import domains
from tctf.errors import PackagingError
from tctf.packaging import (
    BOTOCORE_SERVICES,
    LOCK,
    botocore_services,
    compile_bytecode,
    declared_services,
    function_imports,
    main,
    package,
    prune_botocore_data,
    read_lock,
    requirements,
    scan,
    sdk_dependents,
)
from tests.fixtures import AWS

SQS_SAMPLE = AWS / "aws-lambda-go/events/testdata/sqs-event.json"

_PROBE = """
import json, sys
sys.path[:0] = [sys.argv[1], sys.argv[2]]
import importlib.util
from adapters.lambda_.entry import handler
event = json.loads(open(sys.argv[3]).read())
print(json.dumps({
    "response": handler(event, None),
    "users_app": importlib.util.find_spec("domains.users.app") is not None,
    "first_party": sorted(
        getattr(m, "__file__", None) or ""
        for n, m in list(sys.modules.items())
        if n.split(".")[0] in ("bus", "domains", "adapters", "tctf")
    ),
}))
"""


def _send_email_event(tmp_path: Path) -> Path:
    event = json.loads(SQS_SAMPLE.read_text())
    record = event["Records"][0]
    envelope = {
        "specversion": "1.0",
        "id": "t-1",
        "source": "messaging_consumers",
        "type": "SEND_EMAIL",
        "time": "2026-01-01T00:00:00.000Z",
        "dataversion": 1,
        "correlationid": "c-1",
        "data": {"to": "ada@example.com", "template": "welcome", "name": "Ada"},
    }
    record["body"] = json.dumps(envelope)
    broken = {**record, "messageId": "broken", "body": "not an envelope"}
    event["Records"] = [record, broken]
    path = tmp_path / "event.json"
    path.write_text(json.dumps(event))
    return path


def _write_tree(root: Path, files: dict[str, str]) -> None:
    """A checkout of our own making: each path relative to `root`, with its text."""
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


def _run_packaged(code: str, built: Path, tmp_path: Path, env: dict[str, str]) -> dict[str, Any]:
    """Run `code` in a clean interpreter, its arguments the package, this environment's
    site-packages and a two-record SQS event file (a SEND_EMAIL task, a broken record);
    the JSON it prints last."""
    site_packages = sysconfig.get_paths()["purelib"]
    event = str(_send_email_event(tmp_path))
    # -I: no environment, no user site; -S: no site-packages .pth (the editable install).
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code, str(built), site_packages, event],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    out: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return out


def _probe(built: Path, tmp_path: Path) -> dict[str, Any]:
    """`_PROBE` on the messaging package, on the in-process transport."""
    env = {"TCTF_DOMAIN": "messaging_consumers", "TCTF_TRANSPORT": "memory"}
    return _run_packaged(_PROBE, built, tmp_path, env)


def test_package_holds_the_domain_and_only_the_contracts_of_others(tmp_path: Path) -> None:
    built = package("messaging_consumers", tmp_path, zip=False, dependencies=False)

    files = {p.relative_to(built).as_posix() for p in built.rglob("*.py")}
    assert {
        "domains/messaging_consumers/app.py",
        "domains/messaging_consumers/contracts.py",
    } <= files
    assert {"domains/users/__init__.py", "domains/users/contracts.py"} <= files
    assert "domains/users/app.py" not in files
    assert {"adapters/lambda_/entry.py", "bus/dispatch.py", "bus/__init__.py"} <= files
    assert not any(f.startswith("tctf/") or f.startswith("tests/") for f in files)
    users = package("users", tmp_path, zip=False, dependencies=False)
    assert not list(users.glob("domains/messaging_consumers/*"))


def test_packaged_handler_runs_in_a_clean_interpreter(tmp_path: Path) -> None:
    built = package("messaging_consumers", tmp_path / "dist", zip=False, dependencies=False)
    probe = _probe(built, tmp_path)

    assert probe["response"] == {"batchItemFailures": []}  # the broken one is dead-lettered
    assert probe["users_app"] is False
    assert probe["first_party"] and all(f.startswith(str(built)) for f in probe["first_party"])


def test_zip_is_reproducible_and_lists_the_same_files(tmp_path: Path) -> None:
    first = package("users", tmp_path / "a", dependencies=False)
    second = package("users", tmp_path / "b", dependencies=False)

    assert first.name == "users.zip"
    assert first.read_bytes() == second.read_bytes()
    names = zipfile.ZipFile(first).namelist()
    assert "adapters/lambda_/entry.py" in names and "domains/users/app.py" in names
    assert not any(n.startswith("domains/messaging_consumers/") for n in names)


def test_third_party_requirements_are_pinned_from_the_scan() -> None:
    pins = requirements(function_imports(scan("messaging_consumers")))
    names = {p.name for p in pins}
    assert {"pydantic", "orjson", "anyio", "boto3", "botocore"} <= names
    # Local runs' async SDK: a function makes botocore clients (see the test below).
    assert not names & {"aioboto3", "aiobotocore", "aiohttp"}
    assert not names & {"moto", "pytest", "aws-lambda-powertools"}


_WITHOUT_ASYNC_SDK = """
import base64, json, os, sys
sys.path[:0] = [sys.argv[1], sys.argv[2]]


class LeftOut:
    \"\"\"What the package does not hold: importing it fails, as it would on Lambda.\"\"\"

    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in ("aioboto3", "aiobotocore", "aiohttp"):
            raise ImportError(f"{name} is not in the function's package")
        return None


sys.meta_path.insert(0, LeftOut())
from adapters.lambda_.boot import build

out = {}
if os.environ["TCTF_DOMAIN"] == "messaging_consumers":
    event = json.loads(open(sys.argv[3]).read())
    queue = f"arn:aws:sqs:us-east-1:123456789012:{os.environ['TCTF_APP']}-messaging_consumers-tasks"
    for record in event["Records"]:
        record["eventSourceARN"], record["awsRegion"] = queue, "us-east-1"
    app = build(os.environ)
    # A task handled; a record that is no envelope sent to the DLQ (made at init).
    out["sqs"] = app(event, None)
else:
    app = build(os.environ)
    body = json.dumps({"email": "ada@example.com", "name": "Ada"})
    http = {
        "version": "2.0", "routeKey": "$default", "rawPath": "/users", "rawQueryString": "",
        "headers": {"content-type": "application/json"}, "body": body,
        "isBase64Encoded": False,
        "requestContext": {"http": {"method": "POST", "path": "/users"}},
    }
    out["http"] = app(http, None)["statusCode"]
    table = app.table.spec.name
    import botocore.session

    client = botocore.session.get_session().create_client(
        "dynamodb", endpoint_url=os.environ["AWS_ENDPOINT_URL"]
    )
    items = client.scan(TableName=table, ConsistentRead=True)["Items"]
    (outbox,) = [i for i in items if i["SK"]["S"].startswith("EVENT#")]
    image = {k: ({"B": base64.b64encode(v["B"]).decode()} if "B" in v else v)
             for k, v in outbox.items()}
    stream = {"Records": [{
        "eventName": "INSERT", "eventSource": "aws:dynamodb",
        "eventSourceARN": f"arn:aws:dynamodb:us-east-1:123456789012:table/{table}/stream/1",
        "dynamodb": {"Keys": {"PK": outbox["PK"], "SK": outbox["SK"]}, "NewImage": image,
                     "SequenceNumber": "100", "StreamViewType": "NEW_IMAGE"},
    }]}
    out["stream"] = app(stream, None)
app.close()
out["left_out"] = sorted(
    m for m in sys.modules if m.partition(".")[0] in ("aioboto3", "aiobotocore", "aiohttp")
)
print(json.dumps(out))
"""


@pytest.mark.parametrize("domain", ["messaging_consumers", "users"])
def test_the_packaged_function_on_aws_never_imports_what_the_package_leaves_out(
    domain: str, moto_endpoint: str, tmp_path: Path
) -> None:
    """SQS in and out (messaging); HTTP, DynamoDB and the outbox's stream relay (users): all
    through botocore, none through the async SDK the package does not ship."""
    built = package(domain, tmp_path / "dist", zip=False, dependencies=False)
    app = f"pkg{uuid.uuid4().hex[:8]}"
    env = {
        "TCTF_DOMAIN": domain,
        "TCTF_APP": app,
        "TCTF_TRANSPORT": "sns",
        "TCTF_TOPIC_ARN": f"arn:aws:sns:us-east-1:123456789012:{app}-events",
        "TCTF_PROVISION": "1",
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }
    out = _run_packaged(_WITHOUT_ASYNC_SDK, built, tmp_path, env)

    if domain == "messaging_consumers":
        assert out["sqs"] == {"batchItemFailures": []}
    else:
        assert out["http"] == 201
        assert out["stream"] == {"batchItemFailures": []}
    assert out["left_out"] == []


def test_reaching_into_another_domain_beyond_its_contracts_is_refused(tmp_path: Path) -> None:
    _write_tree(
        tmp_path,
        {
            "domains/__init__.py": "",
            "domains/a/__init__.py": "",
            "domains/a/app.py": "from domains.b.app import helper\n",
            "domains/b/__init__.py": "",
            "domains/b/app.py": "def helper(): ...\n",
        },
    )

    with pytest.raises(PackagingError, match=r"reaches domains\.b\.app.*domains\.b\.contracts"):
        scan("a", tmp_path)


def test_cli_names_an_unknown_domain(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["nowhere", "-o", str(tmp_path), "--no-deps"]) == 2
    root = Path(domains.__file__).parent
    known = ", ".join(sorted(app.parent.name for app in root.glob("*/app.py")))
    assert "auth_core, " in known
    assert f"no domain 'nowhere' (known: {known})" in capsys.readouterr().err
    assert main(["users", "-o", str(tmp_path), "--no-deps"]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "users.zip")


def test_a_path_is_no_domain_name_and_nothing_it_points_at_is_touched(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sources = tmp_path / "domains" / "users"
    sources.mkdir(parents=True)
    (sources / "app.py").write_text("# the user's own work\n")
    out = tmp_path / "out"
    assert main(["../domains/users", "-o", str(out), "--no-deps"]) == 2
    assert "'../domains/users' is not a domain name" in capsys.readouterr().err
    assert (sources / "app.py").read_text() == "# the user's own work\n"


def test_a_directory_the_command_did_not_build_is_never_removed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    theirs = tmp_path / "users"
    theirs.mkdir()
    (theirs / "notes.txt").write_text("keep me\n")
    assert main(["users", "-o", str(tmp_path), "--no-deps"]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "users.zip")
    assert main(["users", "-o", str(tmp_path), "--no-deps", "--no-zip"]) == 2
    assert "tctf package did not build it" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["users", "users.zip"]
    assert [p.name for p in theirs.iterdir()] == ["notes.txt"]


def test_a_directory_the_command_built_is_rebuilt_in_place(tmp_path: Path) -> None:
    first = package("users", tmp_path, zip=False, dependencies=False)
    (first / "stale.py").write_text("")
    second = package("users", tmp_path, zip=False, dependencies=False)
    assert second == first == tmp_path / "users"
    assert not (second / "stale.py").exists() and (second / "domains/users/app.py").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["users"]


def test_out_may_name_the_zip_itself(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "functions" / "users-v2.zip"
    assert main(["users", "-o", str(target), "--no-deps"]) == 0
    assert capsys.readouterr().out.strip() == str(target)
    assert zipfile.is_zipfile(target)
    assert "domains/users/app.py" in zipfile.ZipFile(target).namelist()
    assert [p.name for p in target.parent.iterdir()] == ["users-v2.zip"]
    assert main(["users", "-o", str(target), "--no-deps", "--no-zip"]) == 2
    assert "names a zip, but --no-zip builds a directory" in capsys.readouterr().err


def test_a_function_import_not_installed_here_cannot_be_pinned() -> None:
    with pytest.raises(PackagingError, match=r"imports not_installed_anywhere.*\[aws\]"):
        requirements({"orjson", "not_installed_anywhere"})


def test_every_module_ships_bytecode_that_is_used_without_its_source(tmp_path: Path) -> None:
    built = package("messaging_consumers", tmp_path / "dist", zip=False, dependencies=False)
    sources = sorted(built.rglob("*.py"))
    for source in sources:
        compiled = Path(importlib.util.cache_from_source(str(source)))
        header = compiled.read_bytes()[:8]
        assert header[:4] == importlib.util.MAGIC_NUMBER, source
        # PEP 552 flags: hash-based (bit 0) and not checked against the source (bit 1 clear).
        assert int.from_bytes(header[4:8], "little") == 0b01, source
        # Lambda's /var/task is read-only and the zip's times are fixed: the function must
        # run from this bytecode, never from the sources.
        source.write_text("raise ImportError('imported from source, not bytecode')\n")
    assert _probe(built, tmp_path)["response"] == {"batchItemFailures": []}
    names = zipfile.ZipFile(
        package("messaging_consumers", tmp_path / "zip", dependencies=False)
    ).namelist()
    assert "adapters/lambda_/__pycache__/entry.cpython-311.pyc" in names


def test_botocore_keeps_only_the_models_of_the_services_the_function_calls(
    tmp_path: Path,
) -> None:
    installed = Path(botocore.__file__).parent / "data"
    data = tmp_path / "data"
    data.mkdir()
    for entry in installed.iterdir():
        if entry.is_file():
            shutil.copyfile(entry, data / entry.name)
    for service in ("sqs", "sesv2", "s3"):
        shutil.copytree(installed / service, data / service)

    with pytest.raises(PackagingError, match="botocore has no model for sns"):
        prune_botocore_data(data, {"sqs", "sns"})
    prune_botocore_data(data, {"sqs", "sesv2"})

    assert sorted(p.name for p in data.iterdir() if p.is_dir()) == ["sesv2", "sqs"]
    endpoints = json.loads((data / "endpoints.json").read_text())
    assert len(endpoints["partitions"]) > 1  # every partition and region stays
    # Entries are kept by endpoint prefix: SES v2's is "email".
    assert all(set(p["services"]) <= {"sqs", "email"} for p in endpoints["partitions"])
    assert "email" in endpoints["partitions"][0]["services"]
    session = botocore.session.get_session()
    session.register_component(
        "data_loader", Loader(extra_search_paths=[str(data)], include_default_search_paths=False)
    )
    client = session.create_client(
        "sqs", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    assert client.meta.endpoint_url == "https://sqs.eu-west-1.amazonaws.com"
    with pytest.raises(UnknownServiceError):
        session.create_client("s3", region_name="eu-west-1")


def test_a_domain_calling_aws_itself_keeps_every_botocore_model(tmp_path: Path) -> None:
    _write_tree(
        tmp_path,
        {
            "domains/__init__.py": "",
            "domains/mailer/__init__.py": "",
            "domains/mailer/app.py": "import boto3\nimport aioboto3\n",
            "domains/quiet/__init__.py": "",
            "domains/quiet/app.py": "import orjson\n",
        },
    )

    assert botocore_services(scan("mailer", tmp_path)) is None
    assert "aioboto3" in function_imports(scan("mailer", tmp_path))
    assert botocore_services(scan("quiet", tmp_path), ["ses"]) == {*BOTOCORE_SERVICES, "ses"}


def test_a_packaged_library_that_requires_the_aws_sdk_keeps_every_botocore_model(
    tmp_path: Path,
) -> None:
    """Such a library (Powertools' parameters, say) may call any service."""
    for name, requires in {"helper": "boto3>=1.26; extra == 'aws'", "plain": "orjson"}.items():
        info = tmp_path / f"{name}-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\nRequires-Dist: {requires}\n"
        )
    (tmp_path / "botocore-1.0.dist-info").mkdir()
    (tmp_path / "botocore-1.0.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: botocore\nVersion: 1.0\nRequires-Dist: urllib3\n"
    )

    assert sdk_dependents(tmp_path) == ["helper"]
    assert botocore_services(scan("messaging_consumers"), (), ["helper"]) is None


def test_a_module_that_does_not_compile_is_named(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text('print "python 2"\n')

    with pytest.raises(PackagingError, match=r"broken\.py"):
        compile_bytecode(tmp_path)


def test_requirements_are_the_locked_closure_of_what_the_function_imports() -> None:
    locked = read_lock(LOCK)
    pins = [p for name in domains.names() for p in requirements(function_imports(scan(name)))]

    assert {p.name for p in pins} == set(locked)  # the lock is exactly the functions' closure
    assert all(p == locked[p.name] and p.hashes for p in pins)
    only_orjson = requirements({"orjson"})
    assert [(p.name, p.version) for p in only_orjson] == [("orjson", locked["orjson"].version)]
    with_its_dependencies = {p.name for p in requirements({"pydantic"})}
    assert {"pydantic", "pydantic-core", "annotated-types", "typing-extensions"} <= (
        with_its_dependencies
    )
    assert "botocore" not in with_its_dependencies


def test_a_distribution_missing_from_the_lock_is_named(tmp_path: Path) -> None:
    lock = tmp_path / "lambda.lock"
    lock.write_text("\n".join(LOCK.read_text().split("\norjson==")[:1]) + "\n")

    with pytest.raises(PackagingError, match=r"orjson.*not in .*lambda.lock.*pip-compile"):
        requirements({"orjson"}, lock)


def _installed_versions(built: Path) -> dict[str, str]:
    found = {}
    for info in built.glob("*.dist-info"):
        name, _, version = info.name.removesuffix(".dist-info").partition("-")
        found[name.lower().replace("_", "-")] = version
    return found


def test_the_package_holds_exactly_the_locked_versions(tmp_path: Path) -> None:
    built = package("auth_core", tmp_path / "dist", zip=False)

    closure = requirements(function_imports(scan("auth_core")))
    assert _installed_versions(built) == {r.name: r.version for r in closure}
    assert {"joserfc", "cryptography", "cffi"} <= {r.name for r in closure}


def test_a_tampered_hash_fails_the_build_and_leaves_nothing(tmp_path: Path) -> None:
    locked = read_lock(LOCK)
    tampered = LOCK.read_text()
    for digest in locked["six"].hashes:
        tampered = tampered.replace(digest, "sha256:" + "0" * 64)
    lock = tmp_path / "tampered.lock"
    lock.write_text(tampered)

    with pytest.raises(PackagingError, match="DO NOT MATCH THE HASHES"):
        package("messaging_consumers", tmp_path / "dist", zip=False, lock=lock)
    assert not (tmp_path / "dist" / "messaging_consumers").exists()


def test_the_development_venv_is_constrained_to_the_versions_a_function_ships() -> None:
    """README and .ci/run install with `-c requirements/lambda.constraints`: the lock's
    versions without their hashes, so the tests run what `tctf package` ships."""
    root = Path(__file__).resolve().parents[2]
    lock = (root / "requirements" / "lambda.lock").read_text()
    locked = sorted(re.findall(r"^([A-Za-z0-9_.\-]+==[^\s\\]+)", lock, flags=re.M))
    constraints = (root / "requirements" / "lambda.constraints").read_text().splitlines()
    assert sorted(line for line in constraints if line and not line.startswith("#")) == locked
    for command in ((root / "README.md").read_text(), (root / ".ci" / "run").read_text()):
        assert "pip install -c requirements/lambda.constraints -e '.[dev]'" in command


def test_a_domain_declaring_mail_keeps_ses_model_and_no_other_beyond_the_adapters() -> None:
    """The SES client is the adapter's: messaging_consumers imports no SDK, so its package
    is pruned like any other, keeping SES's model because the domain declares `Mail`."""
    from domains.messaging_consumers.app import domain as messaging_consumers
    from domains.users.app import domain as users

    kept = botocore_services(scan("messaging_consumers"), declared_services(messaging_consumers))
    assert kept == {*BOTOCORE_SERVICES, "sesv2"}
    assert botocore_services(scan("users"), declared_services(users)) == set(BOTOCORE_SERVICES)


def test_a_domain_with_a_websocket_route_keeps_the_management_apis_model() -> None:
    """Its function posts to connections through API Gateway's management API
    (adapters/aws/websockets.py): pruned away, every post would fail deployed."""
    from domains.user_message.app import domain as user_message

    kept = botocore_services(scan("user_message"), declared_services(user_message))
    assert kept is not None and "apigatewaymanagementapi" in kept


def test_a_domain_reading_secrets_keeps_secrets_manager_s_model() -> None:
    """Its function reads them at init (adapters/aws/secrets.py): pruned away, it could
    not start deployed."""
    from domains.auth_core.app import domain as auth_core

    kept = botocore_services(scan("auth_core"), declared_services(auth_core))
    assert kept == {*BOTOCORE_SERVICES, "secretsmanager"}
