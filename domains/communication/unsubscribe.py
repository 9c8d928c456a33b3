"""Unsubscribe links: a per-recipient token signed (HS256 JWT, joserfc) with a secret only
this domain holds, naming the user and the campaign, and expiring; nothing is stored to
check one, so a campaign of any size writes no token items."""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlencode

from domains.communication.errors import InvalidUnsubscribeLink, UnsubscribeSecretMissing

#: The environment variable holding the signing secret (at least 32 bytes).
SECRET_VARIABLE = "COMMUNICATION_UNSUBSCRIBE_SECRET"
#: The environment variable holding the public base URL the links point to.
PUBLIC_URL_VARIABLE = "COMMUNICATION_PUBLIC_URL"
DEFAULT_PUBLIC_URL = "http://localhost:8000"
#: How long a link works: long enough for mail read weeks late (RFC 8058 asks that it keep
#: working for a reasonable time), short enough that an old forwarded mail stops working.
LINK_LIFETIME = 60 * 24 * 3600
AUDIENCE = "communication/unsubscribe"
ALGORITHM = "HS256"
MIN_SECRET_BYTES = 32


def _key() -> Any:
    from joserfc.jwk import OctKey

    secret = os.environ.get(SECRET_VARIABLE, "")
    if len(secret.encode()) < MIN_SECRET_BYTES:
        raise UnsubscribeSecretMissing(
            f"set {SECRET_VARIABLE} to a random secret of at least {MIN_SECRET_BYTES} bytes "
            "to sign unsubscribe links"
        )
    return OctKey.import_key(secret)


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
    token = jwt.encode({"alg": ALGORITHM}, claims, _key(), algorithms=[ALGORITHM])
    base = os.environ.get(PUBLIC_URL_VARIABLE, DEFAULT_PUBLIC_URL).rstrip("/")
    return f"{base}/unsubscribe?{urlencode({'token': token})}"


def read_token(token: str, now: float) -> tuple[str, str]:
    """The user and campaign a token was made for; `InvalidUnsubscribeLink` if it is not one
    of ours or has expired."""
    from joserfc import jwt
    from joserfc.errors import JoseError

    try:
        decoded = jwt.decode(token, _key(), algorithms=[ALGORITHM])
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
