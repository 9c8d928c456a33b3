"""Secrets a domain declares (`Domain(..., secrets=["signing"])`): how their values reach it.

A runtime hands a secret's versions to the domain in the environment variable
`TCTF_SECRET_<NAME>` (`-` as `_`): a JSON array of strings, the current version first, then
the previous one while it still verifies or opens what the current one did not make. On AWS
the function reads them from Secrets Manager once, at init (`adapters.lambda_.boot`); a
deployed function (`AWS_LAMBDA_FUNCTION_NAME` set) without them must refuse to start rather
than make up a value of its own, which its other containers would not share.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping

from bus.errors import ConfigurationError

#: Set by Lambda in every function: the process is one of many containers of a deployment.
DEPLOYED_VARIABLE = "AWS_LAMBDA_FUNCTION_NAME"


def variable(name: str) -> str:
    """The environment variable carrying secret `name`'s versions."""
    return "TCTF_SECRET_" + name.upper().replace("-", "_")


def deployed(env: Mapping[str, str] | None = None) -> bool:
    """Whether this process runs in a deployed function, where a value made up for the
    process would differ from its other containers'."""
    return DEPLOYED_VARIABLE in (os.environ if env is None else env)


def versions(name: str, env: Mapping[str, str] | None = None) -> list[str] | None:
    """Secret `name`'s versions, current first; None if the runtime handed none."""
    raw = (os.environ if env is None else env).get(variable(name))
    if not raw:
        return None
    try:
        found = json.loads(raw)
    except ValueError:
        found = None
    if not isinstance(found, list) or not found or not all(isinstance(v, str) for v in found):
        raise ConfigurationError(
            f"{variable(name)} must be a JSON array of the secret's versions, current first"
        )
    return found
