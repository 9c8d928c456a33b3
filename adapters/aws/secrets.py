"""A function's secrets, read from Secrets Manager once, in Lambda's init phase.

Each secret is read at two stages: `AWSCURRENT`, and `AWSPREVIOUS` while there is one (the
value before the last `put-secret-value` or rotation), so what the previous value signed
or sealed still verifies or opens in a container started after the change. A function
that cannot read a secret fails its init: it must not start without the value its other
containers share.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

from bus.errors import ConfigurationError

CURRENT, PREVIOUS = "AWSCURRENT", "AWSPREVIOUS"


def read_secret_versions(client: Any, secret_id: str) -> list[str]:
    """The secret's current value, then its previous one if it has one (botocore client)."""
    versions = [_value(client, secret_id, CURRENT)]
    # A secret never changed since it was made has no previous version.
    with contextlib.suppress(client.exceptions.ResourceNotFoundException):
        versions.append(_value(client, secret_id, PREVIOUS))
    return versions


def read_secrets(
    secrets: Mapping[str, str], *, region: str | None, endpoint_url: str | None
) -> dict[str, list[str]]:
    """Each named secret's versions (name -> its versions, current first), with one
    botocore client made for them and dropped after."""
    if not secrets:
        return {}
    import botocore.exceptions
    import botocore.session

    client = botocore.session.get_session().create_client(
        "secretsmanager", region_name=region, endpoint_url=endpoint_url
    )
    try:
        return {name: read_secret_versions(client, secret) for name, secret in secrets.items()}
    except botocore.exceptions.ClientError as error:
        raise ConfigurationError(
            f"the function cannot read its secrets ({', '.join(secrets.values())}): {error}; "
            "its role must be granted secretsmanager:GetSecretValue on each"
        ) from error
    finally:
        client.close()


def _value(client: Any, secret_id: str, stage: str) -> str:
    answer = client.get_secret_value(SecretId=secret_id, VersionStage=stage)
    value = answer.get("SecretString")
    if not isinstance(value, str):
        raise ConfigurationError(f"secret {secret_id} ({stage}) holds no text")
    return value
