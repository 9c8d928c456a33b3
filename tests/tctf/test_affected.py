"""`tctf affected` on scripted git histories: small repositories built here, one commit at a
time, each change naming the domains whose deployable closure it reaches and no other."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from pathlib import Path

import pytest

from tctf.affected import BUILD_FILES, affected, closure
from tctf.cli import main
from tctf.errors import GitError

#: A platform in miniature: a kernel, the Lambda entry point, three domains; `shop` reads
#: `ledger`'s contracts, `mailer` imports the kernel's storage module, nobody imports `crypto`.
TREE = {
    "bus/__init__.py": "from bus.domain import Domain\n",
    "bus/domain.py": "class Domain: ...\n",
    "bus/storage.py": "TABLE = 1\n",
    "bus/crypto.py": "KEY = 1\n",
    "adapters/__init__.py": "",
    "adapters/lambda_/__init__.py": "",
    "adapters/lambda_/entry.py": "from bus import Domain\n",
    "adapters/aws/__init__.py": "",
    "adapters/aws/provision.py": "from bus.crypto import KEY\n",
    "domains/__init__.py": "",
    "domains/ledger/__init__.py": "",
    "domains/ledger/contracts.py": "POSTED = 'POSTED'\n",
    "domains/ledger/app.py": "from bus import Domain\ndomain = Domain()\n",
    "domains/shop/__init__.py": "",
    "domains/shop/app.py": (
        "from bus import Domain\nfrom domains.ledger.contracts import POSTED\ndomain = Domain()\n"
    ),
    "domains/mailer/__init__.py": "",
    "domains/mailer/app.py": "from bus.storage import TABLE\n",
    "domains/mailer/templates.py": "WELCOME = 'hello'\n",
    "docs/mailer.md": "# mailer\n",
    "pyproject.toml": "[project]\nname = 'mini'\n",
}


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def commit(repo: Path, files: Mapping[str, str | None], message: str) -> str:
    """Write (or, for None, delete) `files`, commit them, return the commit."""
    for name, text in files.items():
        path = repo / name
        if text is None:
            path.unlink()
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    git(tmp_path, "init", "-q", "-b", "main")
    git(tmp_path, "config", "user.email", "ci@example.com")
    git(tmp_path, "config", "user.name", "ci")
    commit(tmp_path, TREE, "the platform")
    return tmp_path


def test_nothing_changed_reaches_no_domain(repo: Path) -> None:
    assert affected("HEAD", repo) == []


def test_a_change_to_one_domain_reaches_that_domain_alone(repo: Path) -> None:
    base = git(repo, "rev-parse", "HEAD")
    commit(repo, {"domains/mailer/templates.py": "WELCOME = 'hi'\n"}, "friendlier")
    assert affected(base, repo) == ["mailer"]


def test_a_contract_change_reaches_its_domain_and_the_domains_reading_it(repo: Path) -> None:
    base = git(repo, "rev-parse", "HEAD")
    commit(repo, {"domains/ledger/contracts.py": "POSTED = 'LEDGER_POSTED'\n"}, "rename")
    assert affected(base, repo) == ["ledger", "shop"]


def test_a_kernel_module_reaches_only_the_domains_whose_imports_reach_it(repo: Path) -> None:
    base = git(repo, "rev-parse", "HEAD")
    commit(repo, {"bus/storage.py": "TABLE = 2\n"}, "storage")
    assert affected(base, repo) == ["mailer"]
    base = git(repo, "rev-parse", "HEAD")
    # The entry point imports bus.domain (through bus/__init__): every function runs it.
    commit(repo, {"bus/domain.py": "class Domain:\n    name = ''\n"}, "domain")
    assert affected(base, repo) == ["ledger", "mailer", "shop"]


def test_code_no_function_imports_and_docs_reach_no_domain(repo: Path) -> None:
    base = git(repo, "rev-parse", "HEAD")
    commit(repo, {"bus/crypto.py": "KEY = 2\n", "docs/mailer.md": "# Mail\n"}, "aside")
    assert affected(base, repo) == []


def test_a_new_import_brings_a_module_into_the_closure(repo: Path) -> None:
    base = git(repo, "rev-parse", "HEAD")
    commit(repo, {"domains/shop/app.py": TREE["domains/shop/app.py"] + "import bus.crypto\n"}, "x")
    assert affected(base, repo) == ["shop"]
    assert "bus/crypto.py" in closure("shop", repo)
    base = git(repo, "rev-parse", "HEAD")
    commit(repo, {"bus/crypto.py": "KEY = 3\n"}, "rotate")
    assert affected(base, repo) == ["shop"]


def test_deleting_a_module_of_a_domain_still_reaches_it(repo: Path) -> None:
    base = git(repo, "rev-parse", "HEAD")
    commit(repo, {"domains/mailer/templates.py": None}, "unused")
    assert affected(base, repo) == ["mailer"]


def test_a_build_file_reaches_every_domain(repo: Path) -> None:
    assert "pyproject.toml" in BUILD_FILES
    base = git(repo, "rev-parse", "HEAD")
    commit(repo, {"pyproject.toml": "[project]\nname = 'mini2'\n"}, "rename")
    assert affected(base, repo) == ["ledger", "mailer", "shop"]


def test_a_new_domain_is_affected_and_uncommitted_work_counts(repo: Path) -> None:
    base = git(repo, "rev-parse", "HEAD")
    (repo / "domains/search").mkdir()
    (repo / "domains/search/__init__.py").write_text("")
    (repo / "domains/search/app.py").write_text("from bus.storage import TABLE\n")
    assert affected(base, repo) == ["search"]  # untracked yet
    (repo / "bus/storage.py").write_text("TABLE = 3\n")  # modified, not committed
    assert affected(base, repo) == ["mailer", "search"]


def test_a_branch_is_compared_with_its_merge_base_not_with_the_base_s_tip(repo: Path) -> None:
    git(repo, "checkout", "-q", "-b", "feature")
    commit(repo, {"domains/mailer/templates.py": "WELCOME = 'yo'\n"}, "feature work")
    git(repo, "checkout", "-q", "main")
    commit(repo, {"domains/ledger/contracts.py": "POSTED = 'P'\n"}, "meanwhile on main")
    git(repo, "checkout", "-q", "feature")
    assert affected("main", repo) == ["mailer"]


def test_an_unknown_base_is_refused_by_the_command_with_git_s_reason(
    repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(GitError, match="no-such-ref"):
        affected("no-such-ref", repo)
    monkeypatch.chdir(repo)
    assert main(["affected", "--base", "no-such-ref", "--root", str(repo)]) == 2
    assert "no-such-ref" in capsys.readouterr().err


def test_the_command_prints_one_domain_a_line(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = git(repo, "rev-parse", "HEAD")
    commit(repo, {"domains/ledger/contracts.py": "POSTED = 'X'\n"}, "x")
    assert main(["affected", "--base", base, "--root", str(repo)]) == 0
    assert capsys.readouterr().out == "ledger\nshop\n"
