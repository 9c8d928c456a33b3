"""Unsubscribe links: a per-recipient token signed (HS256 JWT, joserfc) with a key only
this domain holds, naming the user and the campaign, and expiring; nothing is stored to
check one, so a campaign of any size writes no token items.

A deployed stage derives the keys from the domain's secret `unsubscribe` (`bus.secrets`:
random text Secrets Manager generates for the stage), one per version: the current one
signs, the previous one still verifies, so every container honours the links of the others
and a rotation of the secret breaks no link already mailed. The links lead to the app's
public URL (`TCTF_APP_URL`: the stage's `app_url`, the address `tctf run` serves). A
deployed function without either refuses to start; under `tctf run` and in tests, one
process, a key is made for it.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from functools import cache
from typing import Any
from urllib.parse import urlencode

from bus import secrets as domain_secrets
from domains.communication.errors import InvalidUnsubscribeLink, UnsubscribeLinksMisconfigured

#: The domain's secret the keys are derived from (`Domain(secrets=[SECRET])`).
SECRET = "unsubscribe"
#: The environment variable holding the app's public base URL the links point to.
APP_URL_VARIABLE = "TCTF_APP_URL"
#: Where links lead when `TCTF_APP_URL` is not set, as in tests: `tctf run`'s address.
LOCAL_APP_URL = "http://localhost:8000"
#: How long a link works: long enough for mail read weeks late (RFC 8058 asks that it keep
#: working for a reasonable time), short enough that an old forwarded mail stops working.
LINK_LIFETIME = 60 * 24 * 3600
AUDIENCE = "communication/unsubscribe"
ALGORITHM = "HS256"
#: HKDF's context: keys derived for unsubscribe links, never to be reused elsewhere.
_DERIVATION_INFO = b"tctf communication unsubscribe link key"


def signing_seeds(env: Mapping[str, str] | None = None) -> list[str] | None:
    """The secret's versions, current first; None outside a deployed function without
    them. Checked at init without deriving, which would import joserfc and cryptography
    into every cold start for the few invocations that sign or read a link."""
    env = os.environ if env is None else env
    return domain_secrets.shared_versions(
        SECRET,
        env,
        lambda variable: UnsubscribeLinksMisconfigured(
            f"no key to sign unsubscribe links with: a deployed communication needs {variable} "
            "(its stage's secret, read at init); a key of its own would not verify the links "
            "its other containers mailed"
        ),
    )


def signing_keys(env: Mapping[str, str] | None = None) -> list[Any]:
    """The keys of the secret's versions, current (signing) first; outside a deployed
    function without them, the one key made for this process."""
    from joserfc.jwk import OctKey

    seeds = signing_seeds(env)
    if seeds is None:
        return [_process_key()]
    return [
        OctKey.import_key(domain_secrets.derived_bytes(SECRET, seed, _DERIVATION_INFO))
        for seed in seeds
    ]


def app_url(env: Mapping[str, str] | None = None) -> str:
    """The app's public base URL the links lead to; a deployed function without it refuses
    to start rather than mail links to localhost."""
    env = os.environ if env is None else env
    configured = env.get(APP_URL_VARIABLE)
    if configured:
        return configured.rstrip("/")
    if domain_secrets.deployed(env):
        raise UnsubscribeLinksMisconfigured(
            f"{APP_URL_VARIABLE} is not set: a deployed communication needs the app's public "
            "URL for its unsubscribe links (the stage's `app_url` in deploy.toml)"
        )
    return LOCAL_APP_URL


def unsubscribe_url(user_id: str, campaign_id: str, now: float) -> str:
    """The link in a campaign e-mail (and its `List-Unsubscribe` header) for one recipient."""
    from joserfc import jwt

    claims = {
        "sub": user_id,
        "cid": campaign_id,
        "aud": AUDIENCE,
        "iat": int(now),
        "exp": int(now) + LINK_LIFETIME,
    }
    token = jwt.encode({"alg": ALGORITHM}, claims, signing_keys()[0], algorithms=[ALGORITHM])
    return f"{app_url()}/unsubscribe?{urlencode({'token': token})}"


def read_token(token: str, now: float) -> tuple[str, str]:
    """The user and campaign a token was made for; `InvalidUnsubscribeLink` if it is not one
    of ours or has expired."""
    from joserfc import jwt
    from joserfc.errors import JoseError

    for key in signing_keys():
        try:
            decoded = jwt.decode(token, key, algorithms=[ALGORITHM])
        except (JoseError, ValueError):
            continue
        break
    else:
        raise InvalidUnsubscribeLink("this unsubscribe link is not valid")
    try:
        jwt.JWTClaimsRegistry(
            now=int(now),
            aud={"essential": True, "value": AUDIENCE},
            sub={"essential": True},
            cid={"essential": True},
            exp={"essential": True},
        ).validate(decoded.claims)
    except (JoseError, ValueError) as error:
        raise InvalidUnsubscribeLink(
            "this unsubscribe link is not valid or has expired; use the link in a newer e-mail"
        ) from error
    claims = decoded.claims
    if not isinstance(claims["sub"], str) or not isinstance(claims["cid"], str):
        raise InvalidUnsubscribeLink("this unsubscribe link is not valid")
    return claims["sub"], claims["cid"]


@cache
def _process_key() -> Any:
    from joserfc.jwk import OctKey

    return OctKey.import_key(secrets.token_bytes(32))
