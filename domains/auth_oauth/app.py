"""The auth_oauth domain: an OAuth 2.0 / OpenID Connect provider. Admins register clients;
a signed-in user authorizes one (authorization code with PKCE S256); clients exchange codes,
refresh tokens and their own credentials for tokens at the token endpoint, and revoke them.

Every secret (client secret, code, refresh token) is 256 random bits kept as its SHA-256.
Items: `CLIENT#<id>/CLIENT`, `CODE#<sha256>/CODE` (single use: issued, then used),
`USER#<id>/GRANT#<grant>` (a user's grant to a client: active or revoked; its refresh
tokens live while it is active), `REFRESH#<sha256>/REFRESH` (current or rotated).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import secrets
from collections.abc import Mapping
from functools import cache, partial
from typing import Annotated, Any, Literal
from urllib.parse import unquote_plus, urlencode, urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from bus import (
    Attr,
    Context,
    Domain,
    HttpResponse,
    Key,
    NotFound,
    Request,
    Storage,
    TransactionCanceled,
)
from bus.access import SIGNED_IN, Access
from bus.secrets import deployed
from bus.storage.rotation import exchange, token_item, token_key
from domains.auth_admin.contracts import UserDisabled
from domains.auth_oauth.contracts import (
    GrantType,
    OAuthClientRegistered,
    OAuthGrantIssued,
    OAuthGrantRevoked,
)
from domains.auth_oauth.errors import OAuthError, ProviderMisconfigured
from domains.auth_oauth.keys import ALGORITHM, SECRET, ProviderKeys, check_environment
from domains.users.contracts import UserDeleted

domain = Domain("auth_oauth", storage=Storage(), secrets=[SECRET])

#: The provider's own issuer URL, where it is served apart from the app.
ISSUER_VARIABLE = "TCTF_OAUTH_ISSUER"
#: The app's public URL, which a deployed stage and `tctf run` set for every domain.
APP_URL_VARIABLE = "TCTF_APP_URL"
#: The issuer when neither is set, as in tests: `tctf run`'s default address.
LOCAL_ISSUER = "http://127.0.0.1:8000"

#: Seconds an authorization code can be exchanged (RFC 6749 4.1.2: short, at most 10 min).
CODE_LIFETIME = 60
#: Seconds a used code stays on record, so that a replay still revokes what it issued.
CODE_MEMORY = 24 * 3600
#: Seconds an access or ID token lives: short, since a resource server cannot revoke one.
ACCESS_TOKEN_LIFETIME = 15 * 60
#: Seconds a refresh token lives unused; each use replaces it.
REFRESH_TOKEN_LIFETIME = 30 * 24 * 3600
ADMIN = Access(roles=("admin",))
_SCOPE = r"^[\x21\x23-\x5b\x5d-\x7e]+( [\x21\x23-\x5b\x5d-\x7e]+)*$"  # RFC 6749 3.3
_PKCE_VERIFIER = re.compile(r"[A-Za-z0-9._~-]{43,128}")  # RFC 7636 4.1
_PKCE_CHALLENGE = re.compile(r"[A-Za-z0-9_-]{43}")  # base64url of a SHA-256, unpadded
_LOOPBACK = {"localhost", "127.0.0.1", "[::1]"}


@cache
def provider_keys() -> ProviderKeys:
    return ProviderKeys.from_environment()


@cache
def issuer() -> str:
    return issuer_from(os.environ)


def issuer_from(env: Mapping[str, str]) -> str:
    """The provider's issuer URL: `iss` of its tokens, and the base of every endpoint the
    discovery document names. `TCTF_OAUTH_ISSUER` if the provider is served apart, else the
    app's public URL (`TCTF_APP_URL`: a deployed stage's `app_url`, the address `tctf run`
    serves), where its routes are; a deployed function with neither refuses to start
    rather than name an address no client reaches."""
    configured = env.get(ISSUER_VARIABLE) or env.get(APP_URL_VARIABLE)
    if configured:
        return configured.rstrip("/")
    if deployed(env):
        raise ProviderMisconfigured(
            f"no issuer: a deployed auth_oauth needs {APP_URL_VARIABLE} (the stage's "
            f"`app_url` in deploy.toml) or {ISSUER_VARIABLE}"
        )
    return LOCAL_ISSUER


if deployed():
    # A function without its keys or issuer fails its init, visibly, not its first token.
    check_environment()
    issuer()


def _redirect_uri(uri: str) -> str:
    """RFC 6749 3.1.2: absolute, no fragment; https, or http on the loopback (RFC 8252)."""
    parts = urlsplit(uri)
    if parts.fragment or "#" in uri or not parts.hostname:
        raise ValueError("a redirect URI is absolute and has no fragment")
    if parts.scheme != "https" and not (
        parts.scheme == "http" and parts.netloc.split(":")[0] in _LOOPBACK
    ):
        raise ValueError("a redirect URI uses https (or http on the loopback interface)")
    return uri


RedirectUri = Annotated[str, Field(min_length=1, max_length=2000), AfterValidator(_redirect_uri)]
Scope = Annotated[str, Field(min_length=1, max_length=1000, pattern=_SCOPE)]


class ClientRegistration(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    redirect_uris: list[RedirectUri] = Field(default_factory=list, max_length=10)
    grant_types: list[GrantType] = Field(
        default=["authorization_code", "refresh_token"], min_length=1, max_length=3
    )
    scope: Scope = "openid profile"
    #: A confidential client authenticates with a secret; a public one (a browser or
    #: mobile app) has none and relies on PKCE alone.
    confidential: bool = True

    @model_validator(mode="after")
    def _coherent(self) -> ClientRegistration:
        if "authorization_code" in self.grant_types and not self.redirect_uris:
            raise ValueError("the authorization code grant needs at least one redirect URI")
        if "client_credentials" in self.grant_types and not self.confidential:
            raise ValueError("only a confidential client may use client credentials")
        return self


class OAuthClient(BaseModel):
    client_id: str
    name: str
    confidential: bool
    redirect_uris: list[str]
    grant_types: list[GrantType]
    scope: str


class RegisteredClient(OAuthClient):
    """The client as registered; `client_secret` is shown this once and never again."""

    client_secret: str | None = Field(default=None, repr=False)


class AuthorizationRequest(BaseModel):
    """RFC 6749 4.1.1 with RFC 7636 4.3 and OpenID Connect's `nonce`, as a JSON body."""

    model_config = ConfigDict(extra="ignore")  # RFC 6749 3.1: unknown parameters

    response_type: str = Field(min_length=1, max_length=64)
    client_id: str = Field(min_length=1, max_length=64)
    redirect_uri: str = Field(min_length=1, max_length=2000)
    scope: Scope | None = None
    state: str | None = Field(default=None, max_length=1000)
    nonce: str | None = Field(default=None, max_length=1000)
    code_challenge: str = Field(min_length=1, max_length=128)
    code_challenge_method: str = Field(default="plain", max_length=16)


class Authorization(BaseModel):
    """The code, and where the client's user agent goes next with it (RFC 6749 4.1.2)."""

    code: str = Field(repr=False)
    state: str | None
    redirect_to: str = Field(repr=False)


class TokenRequest(BaseModel):
    """RFC 6749 4.1.3, 4.4.2 and 6, with client credentials in the body (2.3.1) or in an
    HTTP Basic header. Loose on purpose: what is missing is an OAuth error, not a 422."""

    model_config = ConfigDict(extra="ignore")  # RFC 6749 3.1: unknown parameters

    grant_type: str = Field(max_length=64)
    code: str | None = Field(default=None, max_length=256, repr=False)
    redirect_uri: str | None = Field(default=None, max_length=2000)
    code_verifier: str | None = Field(default=None, max_length=256, repr=False)
    refresh_token: str | None = Field(default=None, max_length=256, repr=False)
    scope: str | None = Field(default=None, max_length=1000)
    client_id: str | None = Field(default=None, max_length=64)
    client_secret: str | None = Field(default=None, max_length=256, repr=False)


class Tokens(BaseModel):
    """RFC 6749 5.1, with OpenID Connect's `id_token` when `openid` was granted."""

    access_token: str = Field(repr=False)
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int
    scope: str
    refresh_token: str | None = Field(default=None, repr=False)
    id_token: str | None = Field(default=None, repr=False)


class TokenError(BaseModel):
    """RFC 6749 5.2: `error` is the code a client branches on."""

    error: str
    error_description: str


class Revocation(BaseModel):
    """RFC 7009 2.1."""

    model_config = ConfigDict(extra="ignore")  # RFC 6749 3.1: unknown parameters

    token: str = Field(max_length=4096, repr=False)
    token_type_hint: str | None = Field(default=None, max_length=64)
    client_id: str | None = Field(default=None, max_length=64)
    client_secret: str | None = Field(default=None, max_length=256, repr=False)


class Revoked(BaseModel):
    """RFC 7009 2.2: the same empty answer whether or not the token was known."""


class ProviderMetadata(BaseModel):
    """OpenID Connect Discovery 1.0 section 3 (and RFC 8414)."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    revocation_endpoint: str
    jwks_uri: str
    response_types_supported: list[str]
    grant_types_supported: list[str]
    subject_types_supported: list[str]
    id_token_signing_alg_values_supported: list[str]
    code_challenge_methods_supported: list[str]
    token_endpoint_auth_methods_supported: list[str]
    revocation_endpoint_auth_methods_supported: list[str]
    scopes_supported: list[str]


class KeySet(BaseModel):
    """A JWK set (RFC 7517 section 5): public keys only."""

    keys: list[dict[str, Any]]


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _client_key(client_id: str) -> dict[str, str]:
    return {"PK": f"CLIENT#{client_id}", "SK": "CLIENT"}


def _code_key(code: str) -> dict[str, str]:
    return {"PK": f"CODE#{_digest(code)}", "SK": "CODE"}


def _grant_key(user_id: str, grant_id: str) -> dict[str, str]:
    return {"PK": f"USER#{user_id}", "SK": f"GRANT#{grant_id}"}


def _oauth_error(error: OAuthError) -> HttpResponse:
    body = TokenError(error=error.error, error_description=error.description)
    headers = {"content-type": "application/json"}
    if error.status == 401:
        headers["www-authenticate"] = 'Basic realm="oauth"'
    return HttpResponse(error.status, body.model_dump_json().encode(), headers)


@domain.post(
    "/oauth/clients",
    response=RegisteredClient,
    status=201,
    access=ADMIN,
    location="/oauth/clients/{client_id}",
)
async def register_client(request: Request[ClientRegistration], ctx: Context) -> RegisteredClient:
    """Register an OAuth client (admins only); a confidential client's secret is shown once."""
    body = request.body
    client = OAuthClient(client_id=ctx.new_id(), **body.model_dump())
    secret = secrets.token_urlsafe(32) if body.confidential else None
    async with ctx.unit_of_work() as uow:
        uow.put(
            {
                **_client_key(client.client_id),
                **client.model_dump(),
                "secret_hash": _digest(secret) if secret else None,
            },
            condition=Attr("PK").not_exists(),
        )
        uow.publish(OAuthClientRegistered(**client.model_dump()), subject=client.client_id)
    ctx.log.info("OAuth client registered", extra={"client_id": client.client_id})
    return RegisteredClient(**client.model_dump(), client_secret=secret)


@domain.get("/oauth/clients/{client_id}", response=OAuthClient, access=ADMIN)
async def get_client(request: Request[None], ctx: Context) -> OAuthClient:
    """A registered client, without its secret (admins only)."""
    client = await _client(ctx, request.path_params["client_id"])
    if client is None:
        raise NotFound(f"no OAuth client {request.path_params['client_id']}")
    return OAuthClient.model_validate(client)


async def _client(ctx: Context, client_id: str) -> dict[str, Any] | None:
    item = await ctx.table.get(_client_key(client_id), consistent=True)
    return None if item is None else dict(item)


@domain.post(
    "/oauth/authorize", response=Authorization, access=SIGNED_IN, answers={400: TokenError}
)
async def authorize(
    request: Request[AuthorizationRequest], ctx: Context
) -> Authorization | HttpResponse:
    """The signed-in user authorizes a client: an authorization code for its redirect URI.
    Every refusal is a 400 answered here, never a redirect (the URI may be a stranger's)."""
    assert request.principal is not None
    try:
        return await _issue_code(request.body, request.principal.subject, ctx)
    except OAuthError as error:
        return _oauth_error(error)


async def _issue_code(body: AuthorizationRequest, user_id: str, ctx: Context) -> Authorization:
    client = await _client(ctx, body.client_id)
    if client is None:
        raise OAuthError("invalid_request", "no such client")
    if body.redirect_uri not in client["redirect_uris"]:
        raise OAuthError("invalid_request", "redirect_uri is not one the client registered")
    if "authorization_code" not in client["grant_types"]:
        raise OAuthError("unauthorized_client", "the client may not use authorization codes")
    if body.response_type != "code":
        raise OAuthError("unsupported_response_type", "only response_type=code is supported")
    if body.code_challenge_method != "S256":
        raise OAuthError("invalid_request", "PKCE with code_challenge_method=S256 is required")
    if not _PKCE_CHALLENGE.fullmatch(body.code_challenge):
        raise OAuthError("invalid_request", "code_challenge is not a base64url SHA-256")
    scope = _granted_scope(body.scope, client["scope"])
    code = secrets.token_urlsafe(32)
    now = int(ctx.clock.now())
    async with ctx.unit_of_work() as uow:
        uow.put(
            {
                **_code_key(code),
                "client_id": body.client_id,
                "user_id": user_id,
                "grant_id": ctx.new_id(),
                "redirect_uri": body.redirect_uri,
                "scope": scope,
                "nonce": body.nonce,
                "code_challenge": body.code_challenge,
                "status": "issued",
                "valid_until": now + CODE_LIFETIME,
                "expires_at": now + CODE_MEMORY,
            }
        )
    answer = {"code": code, **({"state": body.state} if body.state is not None else {})}
    separator = "&" if urlsplit(body.redirect_uri).query else "?"
    return Authorization(
        code=code, state=body.state, redirect_to=body.redirect_uri + separator + urlencode(answer)
    )


def _granted_scope(requested: str | None, allowed: str) -> str:
    if requested is None:
        return allowed
    if not set(requested.split()) <= set(allowed.split()):
        raise OAuthError("invalid_scope", "the scope asks for more than the client may have")
    return requested


@domain.post(
    "/oauth/token", response=Tokens, answers={400: TokenError, 401: TokenError}, forms=True
)
async def token(request: Request[TokenRequest], ctx: Context) -> Tokens | HttpResponse:
    """Tokens for an authorization code (with its PKCE verifier), a refresh token, or the
    client's own credentials; refusals in RFC 6749 5.2's shape."""
    body = request.body
    try:
        client = await _authenticate_client(
            ctx, request.headers, body.client_id, body.client_secret
        )
        if body.grant_type not in {"authorization_code", "refresh_token", "client_credentials"}:
            raise OAuthError("unsupported_grant_type", f"{body.grant_type!r} is not supported")
        if body.grant_type not in client["grant_types"]:
            raise OAuthError("unauthorized_client", f"the client may not use {body.grant_type}")
        if body.grant_type == "authorization_code":
            return await _exchange_code(ctx, client, body)
        if body.grant_type == "refresh_token":
            return await _refresh(ctx, client, body)
        return await _client_credentials(ctx, client, body)
    except OAuthError as error:
        ctx.log.info("token request refused: %s", error.error)
        return _oauth_error(error)


async def _authenticate_client(
    ctx: Context, headers: Any, client_id: str | None, client_secret: str | None
) -> dict[str, Any]:
    """RFC 6749 2.3.1: HTTP Basic or the body's `client_id`/`client_secret`, not both; a
    public client names itself and has no secret."""
    basic = _basic_credentials(headers.get("authorization"))
    if basic is not None and (client_secret is not None or client_id not in (None, basic[0])):
        raise OAuthError("invalid_request", "use one way to authenticate the client")
    named, secret = basic or (client_id, client_secret)
    client = await _client(ctx, named) if named else None
    if client is None:
        raise OAuthError("invalid_client", "client authentication failed")
    expected = client.get("secret_hash")
    if expected is None:
        if secret is not None:
            raise OAuthError("invalid_client", "client authentication failed")
    elif secret is None or not hmac.compare_digest(_digest(secret), str(expected)):
        raise OAuthError("invalid_client", "client authentication failed")
    return client


def _basic_credentials(header: str | None) -> tuple[str, str] | None:
    if header is None:
        return None
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise OAuthError("invalid_client", "malformed Basic credentials") from None
    client_id, colon, secret = decoded.partition(":")
    if not colon or not client_id:
        raise OAuthError("invalid_client", "malformed Basic credentials")
    return unquote_plus(client_id), unquote_plus(secret)


def _pkce_matches(verifier: str | None, challenge: str) -> bool:
    """RFC 7636 4.6, S256 only."""
    if verifier is None or not _PKCE_VERIFIER.fullmatch(verifier):
        return False
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    computed = base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
    return hmac.compare_digest(computed, challenge)


async def _exchange_code(ctx: Context, client: dict[str, Any], body: TokenRequest) -> Tokens:
    if not body.code:
        raise OAuthError("invalid_request", "code is required")
    item = await ctx.table.get(_code_key(body.code), consistent=True)
    if item is None or item["client_id"] != client["client_id"]:
        raise OAuthError("invalid_grant", "the code is invalid or expired")
    user_id, grant_id = str(item["user_id"]), str(item["grant_id"])
    if item["status"] != "issued":
        await _revoke_grant(ctx, user_id, grant_id, "code_reused")
        raise OAuthError("invalid_grant", "the code is invalid or expired")
    if item["valid_until"] <= ctx.clock.now():
        raise OAuthError("invalid_grant", "the code is invalid or expired")
    if body.redirect_uri != item["redirect_uri"]:
        raise OAuthError("invalid_grant", "redirect_uri differs from the authorization's")
    if not _pkce_matches(body.code_verifier, str(item["code_challenge"])):
        raise OAuthError("invalid_grant", "code_verifier does not match the code_challenge")
    scope = str(item["scope"])
    refresh = _new_refresh_token(client)
    try:
        async with ctx.unit_of_work() as uow:
            uow.update(
                _code_key(body.code), set={"status": "used"}, condition=Attr("status").eq("issued")
            )
            uow.put(
                {
                    **_grant_key(user_id, grant_id),
                    "grant_id": grant_id,
                    "client_id": client["client_id"],
                    "user_id": user_id,
                    "scope": scope,
                    "status": "active",
                }
            )
            if refresh is not None:
                uow.put(_refresh_item(ctx, refresh, client["client_id"], user_id, grant_id, scope))
            uow.publish(
                OAuthGrantIssued(
                    grant_id=grant_id,
                    client_id=client["client_id"],
                    user_id=user_id,
                    grant_type="authorization_code",
                    scope=scope,
                ),
                subject=user_id,
            )
    except TransactionCanceled:
        await _revoke_grant(ctx, user_id, grant_id, "code_reused")
        raise OAuthError("invalid_grant", "the code is invalid or expired") from None
    nonce = item.get("nonce")
    return _tokens(ctx, client["client_id"], user_id, scope, refresh, nonce)


def _new_refresh_token(client: dict[str, Any]) -> str | None:
    return secrets.token_urlsafe(32) if "refresh_token" in client["grant_types"] else None


def _refresh_item(
    ctx: Context, token: str, client_id: str, user_id: str, grant_id: str, scope: str
) -> dict[str, Any]:
    return token_item(
        token,
        expires_at=int(ctx.clock.now()) + REFRESH_TOKEN_LIFETIME,
        client_id=client_id,
        user_id=user_id,
        grant_id=grant_id,
        scope=scope,
    )


def _refreshable(client_id: str, scope: str | None, item: Mapping[str, Any]) -> bool:
    """Whether the client presenting a refresh token is the one it was issued to; a scope
    wider than the grant's is refused before the token is spent."""
    if item["client_id"] != client_id:
        return False
    _granted_scope(scope, str(item["scope"]))
    return True


async def _refresh(ctx: Context, client: dict[str, Any], body: TokenRequest) -> Tokens:
    """RFC 6749 6 with rotation (RFC 9700 4.14.2): a spent refresh token presented again
    revokes its grant."""
    if not body.refresh_token:
        raise OAuthError("invalid_request", "refresh_token is required")
    spent = await exchange(
        ctx.table,
        body.refresh_token,
        now=int(ctx.clock.now()),
        lifetime=REFRESH_TOKEN_LIFETIME,
        family=lambda item: _grant_key(str(item["user_id"]), str(item["grant_id"])),
        accept=partial(_refreshable, client["client_id"], body.scope),
    )
    if spent.outcome == "reused":
        assert spent.item is not None
        user_id, grant_id = str(spent.item["user_id"]), str(spent.item["grant_id"])
        await _revoke_grant(ctx, user_id, grant_id, "refresh_token_reused")
    if spent.outcome == "family_ended":
        raise OAuthError("invalid_grant", "the grant was revoked")
    if spent.successor is None or spent.item is None:
        raise OAuthError("invalid_grant", "the refresh token is invalid or expired")
    user_id, new = str(spent.item["user_id"]), spent.successor
    scope = _granted_scope(body.scope, str(spent.item["scope"]))
    return _tokens(ctx, client["client_id"], user_id, scope, new, None)


async def _client_credentials(ctx: Context, client: dict[str, Any], body: TokenRequest) -> Tokens:
    """RFC 6749 4.4: the client acts for itself; no refresh token (4.4.3)."""
    scope = _granted_scope(body.scope, client["scope"])
    grant_id = ctx.new_id()
    async with ctx.unit_of_work() as uow:
        uow.publish(
            OAuthGrantIssued(
                grant_id=grant_id,
                client_id=client["client_id"],
                user_id=None,
                grant_type="client_credentials",
                scope=scope,
            ),
            subject=client["client_id"],
        )
    return _tokens(ctx, client["client_id"], client["client_id"], scope, None, None)


def _tokens(
    ctx: Context,
    client_id: str,
    subject: str,
    scope: str,
    refresh_token: str | None,
    nonce: Any,
) -> Tokens:
    now = int(ctx.clock.now())
    common = {"iss": issuer(), "sub": subject, "iat": now, "exp": now + ACCESS_TOKEN_LIFETIME}
    access = provider_keys().sign(
        {
            **common,
            "aud": ctx.token_policy.audience,
            "client_id": client_id,
            "scope": scope,
            "jti": ctx.new_id(),
        },
        token_type="at+jwt",  # RFC 9068
    )
    id_token = None
    if "openid" in scope.split() and subject != client_id:
        claims = {**common, "aud": client_id, "azp": client_id}
        if nonce is not None:
            claims["nonce"] = str(nonce)
        id_token = provider_keys().sign(claims)
    return Tokens(
        access_token=access,
        expires_in=ACCESS_TOKEN_LIFETIME,
        scope=scope,
        refresh_token=refresh_token,
        id_token=id_token,
    )


@domain.post(
    "/oauth/revoke", response=Revoked, answers={400: TokenError, 401: TokenError}, forms=True
)
async def revoke(request: Request[Revocation], ctx: Context) -> Revoked | HttpResponse:
    """RFC 7009: revoke a refresh token's grant. Unknown tokens, and access tokens (which
    run out within minutes), get the same 200."""
    body = request.body
    try:
        client = await _authenticate_client(
            ctx, request.headers, body.client_id, body.client_secret
        )
    except OAuthError as error:
        return _oauth_error(error)
    item = await ctx.table.get(token_key(body.token), consistent=True)
    if item is not None and item["client_id"] == client["client_id"]:
        await _revoke_grant(ctx, str(item["user_id"]), str(item["grant_id"]), "revoked")
    return Revoked()


async def _revoke_grant(ctx: Context, user_id: str, grant_id: str, reason: Any) -> None:
    """End an active grant and announce it; an ended or unknown one stays as it is."""
    grant = await ctx.table.get(_grant_key(user_id, grant_id), consistent=True)
    if grant is None or grant["status"] != "active":
        return
    ctx.log.warning("OAuth grant %s revoked: %s", grant_id, reason)
    try:
        async with ctx.unit_of_work() as uow:
            uow.update(
                _grant_key(user_id, grant_id),
                set={"status": "revoked"},
                condition=Attr("status").eq("active"),
            )
            uow.publish(_revoked(grant, reason), subject=user_id)
    except TransactionCanceled:
        ctx.log.info("OAuth grant %s was revoked concurrently", grant_id)


def _revoked(grant: Any, reason: Any) -> OAuthGrantRevoked:
    return OAuthGrantRevoked(
        grant_id=str(grant["grant_id"]),
        client_id=str(grant["client_id"]),
        user_id=str(grant["user_id"]),
        reason=reason,
    )


@domain.get("/.well-known/openid-configuration", response=ProviderMetadata)
async def discovery(request: Request[None], ctx: Context) -> ProviderMetadata:
    """The provider's metadata: its endpoints, keys and what it supports."""
    base = issuer()
    return ProviderMetadata(
        issuer=base,
        authorization_endpoint=f"{base}/oauth/authorize",
        token_endpoint=f"{base}/oauth/token",
        revocation_endpoint=f"{base}/oauth/revoke",
        jwks_uri=f"{base}/oauth/jwks.json",
        response_types_supported=["code"],
        grant_types_supported=["authorization_code", "refresh_token", "client_credentials"],
        subject_types_supported=["public"],
        id_token_signing_alg_values_supported=[ALGORITHM],
        code_challenge_methods_supported=["S256"],
        token_endpoint_auth_methods_supported=["client_secret_basic", "client_secret_post", "none"],
        revocation_endpoint_auth_methods_supported=[
            "client_secret_basic",
            "client_secret_post",
            "none",
        ],
        scopes_supported=["openid", "profile"],
    )


@domain.get("/oauth/jwks.json", response=KeySet)
async def jwks(request: Request[None], ctx: Context) -> KeySet:
    """The public keys the provider's access and ID tokens are signed with."""
    return KeySet.model_validate(provider_keys().public_jwks())


async def _active_grants(ctx: Context, user_id: str) -> list[Any]:
    page = await ctx.table.query(
        Key("PK").eq(f"USER#{user_id}") & Key("SK").begins_with("GRANT#"),
        filter=Attr("status").eq("active"),
        consistent=True,
    )
    return list(page.items)


@domain.on(UserDisabled)
async def revoke_grants_of_disabled_user(event: UserDisabled, ctx: Context) -> None:
    """A disabled user's clients lose their refresh tokens at once."""
    for grant in await _active_grants(ctx, event.user_id):
        await _revoke_grant(ctx, event.user_id, str(grant["grant_id"]), "user_disabled")


@domain.on(UserDeleted)
async def erase_grants_of_deleted_user(event: UserDeleted, ctx: Context) -> None:
    """Erase the user's grants; their refresh tokens then find no grant."""
    page = await ctx.table.query(Key("PK").eq(f"USER#{event.user_id}"), consistent=True)
    async with ctx.unit_of_work() as uow:
        for item in page.items:
            uow.delete({"PK": item["PK"], "SK": item["SK"]})
            if item.get("status") == "active":
                uow.publish(_revoked(item, "user_deleted"), subject=event.user_id)
