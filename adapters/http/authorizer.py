"""The local gateway's bearer-token check: `adapters.tokens`, which the Lambda adapter shares."""

from adapters.tokens import ALGORITHMS, JWKS_MAX_AGE, JwksSource, JwtAuthenticator

__all__ = ["ALGORITHMS", "JWKS_MAX_AGE", "JwksSource", "JwtAuthenticator"]
