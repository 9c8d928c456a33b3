"""Cross-origin requests from a browser app, answered as API Gateway's HTTP API answers them.

The allowed origins are configuration (`deploy.toml`'s `cors_origins` per stage, `tctf run
--cors-origin`); `tctf synth` gives them to API Gateway as the API's `CorsConfiguration`
with the headers and lifetime below, and `CorsPolicy` does on localhost what API Gateway
does then: a preflight (`OPTIONS` naming an `Origin` and an `Access-Control-Request-Method`)
is answered 204 before any route sees it, with the allowing headers only for an allowed
origin; any other answer gets `Access-Control-Allow-Origin` for an allowed origin and
nothing for another. No wildcard origin is accepted: a bearer token is sent by the app's
code, never by a browser on every site's behalf.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from bus.http import CORRELATION_HEADER, HttpResponse

#: Request headers a browser app may send: a bearer token, a JSON or form body, and the
#: correlation id it wants its request to carry.
ALLOW_HEADERS = ("authorization", "content-type", CORRELATION_HEADER)
#: Answer headers a browser app may read besides the safelisted ones.
EXPOSE_HEADERS = (CORRELATION_HEADER,)
#: Seconds a browser may keep a preflight's answer (browsers cap it: Chromium at 7200).
MAX_AGE_S = 3600
_DEFAULT_PORTS = {"http": 80, "https": 443}


def cors_origin(origin: str) -> str:
    """`origin` as a browser sends it in `Origin` (scheme and host, a port if any, lower
    case), or ValueError saying what is wrong with it."""
    if "*" in origin:
        raise ValueError(f"{origin!r}: name each allowed origin; a wildcard allows every site")
    parts = urlsplit(origin.strip())
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"{origin!r}: the port is not a number from 0 to 65535") from None
    if parts.scheme.lower() not in _DEFAULT_PORTS or not parts.hostname:
        raise ValueError(f"{origin!r}: an origin is http(s)://host[:port]")
    if parts.path or parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError(
            f"{origin!r}: an origin is a scheme and a host (and a port), with no path, query "
            "or user: as the browser sends it in `Origin`"
        )
    scheme, host = parts.scheme.lower(), parts.hostname
    netloc = f"[{host}]" if ":" in host else host
    if port is None or _DEFAULT_PORTS[scheme] == port:  # a browser leaves it out then
        return f"{scheme}://{netloc}"
    return f"{scheme}://{netloc}:{port}"


@dataclass(frozen=True, slots=True)
class CorsPolicy:
    """Which origins may call the API, and with which methods (every route's)."""

    origins: frozenset[str]
    methods: tuple[str, ...]

    @classmethod
    def of(cls, origins: Iterable[str], methods: Iterable[str]) -> CorsPolicy:
        return cls(frozenset(cors_origin(o) for o in origins), tuple(sorted(set(methods))))

    def preflight(self, method: str, headers: Mapping[str, str]) -> HttpResponse | None:
        """The answer to a preflight (lower-case `headers`), None for any other request.

        As API Gateway: 204 whether or not the origin is allowed, the allowing headers only
        when it is (the browser then refuses the actual request itself)."""
        if method != "OPTIONS" or "access-control-request-method" not in headers:
            return None
        origin = headers.get("origin")
        if origin is None:
            return None
        answer = {"vary": "Origin"}
        if origin in self.origins:
            answer.update(
                {
                    "access-control-allow-origin": origin,
                    "access-control-allow-methods": ",".join(self.methods),
                    "access-control-allow-headers": ",".join(ALLOW_HEADERS),
                    "access-control-max-age": str(MAX_AGE_S),
                }
            )
        return HttpResponse(204, b"", answer)

    def answer(self, headers: Mapping[str, str], response: HttpResponse) -> HttpResponse:
        """`response` with the CORS headers an allowed origin gets, and `Vary: Origin`
        (whether the headers are there depends on it) for every origin."""
        added = {"vary": "Origin"}
        origin = headers.get("origin")
        if origin is not None and origin in self.origins:
            added["access-control-allow-origin"] = origin
            added["access-control-expose-headers"] = ",".join(EXPOSE_HEADERS)
        return HttpResponse(response.status, response.body, {**response.headers, **added})
