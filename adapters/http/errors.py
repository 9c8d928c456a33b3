"""Errors of local HTTP serving."""

from __future__ import annotations

from bus.access import Unauthenticated


class IssuerUnavailable(Unauthenticated):
    """The token issuer's JWK set could not be read: no token can be verified, so every
    signed-in route answers 401 until it can (closed, never open)."""
