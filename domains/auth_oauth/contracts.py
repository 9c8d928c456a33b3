"""Events the auth_oauth domain publishes: the only module other domains may import."""

from __future__ import annotations

from typing import Literal

from bus.messages import Event

GrantType = Literal["authorization_code", "refresh_token", "client_credentials"]


class OAuthClientRegistered(Event):
    """An admin registered an OAuth client; its secret, if any, is nowhere but its hash."""

    type = "OAUTH_CLIENT_REGISTERED"

    client_id: str
    name: str
    confidential: bool
    grant_types: list[GrantType]
    redirect_uris: list[str]
    scope: str


class OAuthGrantIssued(Event):
    """A client was granted access: for a user (an authorization code exchanged) or for
    itself (client credentials, `user_id` None)."""

    type = "OAUTH_GRANT_ISSUED"

    grant_id: str
    client_id: str
    user_id: str | None
    grant_type: Literal["authorization_code", "client_credentials"]
    scope: str


class OAuthGrantRevoked(Event):
    """A grant ended: its refresh tokens no longer work; its access tokens run out soon."""

    type = "OAUTH_GRANT_REVOKED"

    grant_id: str
    client_id: str
    user_id: str | None
    reason: Literal[
        "revoked", "code_reused", "refresh_token_reused", "user_disabled", "user_deleted"
    ]
