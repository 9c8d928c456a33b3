"""What the `tctf` commands refuse, as classes a caller catches by meaning.

Every one is a `TctfError`; the message says what is wrong and what to do instead.
"""

from __future__ import annotations


class TctfError(Exception):
    """A command cannot do what it was asked; the CLI prints the message as one line."""


class UsageError(TctfError):
    """The command's arguments ask for something it cannot do (a name, a path, a port)."""


class PackagingError(TctfError):
    """The domain cannot be packaged as asked; the message says why and what to change."""


class GitError(TctfError):
    """git could not say what changed: not a repository, or an unknown ref."""


class NagError(TctfError):
    """cdk-nag's AwsSolutions rules found what the stacks should not hold (tctf/nag.py)."""

    def __init__(self, findings: list[str]) -> None:
        super().__init__(
            f"{len(findings)} cdk-nag finding(s); fix each, or accept it with its reason in "
            "tctf/nag.py: " + "; ".join(findings)
        )
        self.findings = findings


class AwsUnavailable(TctfError):
    """A command could not talk to AWS (or the endpoint standing in for it): no credentials,
    nothing answering, or the call refused."""


class MissingExtraError(TctfError):
    """A command needs an optional dependency group (an extra) that is not installed."""

    def __init__(self, extra: str, module: str) -> None:
        super().__init__(
            f"needs the '{extra}' extra ({module} is not installed): pip install -e '.[{extra}]'"
        )
        self.extra = extra
        self.module = module
