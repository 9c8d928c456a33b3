"""Another domain's HTTP API over HTTPS: what `ctx.client(domain)` calls on AWS.

Each request is signed with SigV4 for service `execute-api` with the function's own
credentials, so the callee's API Gateway can authorize it by IAM; sent with urllib3 (which
botocore already brings into the function) in a worker thread, as the function's other AWS
calls are.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from bus.client import Client, Reply
from bus.errors import ConfigurationError

#: Seconds to connect and to read an answer: a caller waits inside its own request.
DEFAULT_TIMEOUT = 5.0


class HttpsClients:
    """Clients for the domains in `urls` (domain name -> its API's base URL).

    `credentials` are botocore credentials to sign with; None sends unsigned requests
    (a local endpoint without IAM authorization).
    """

    def __init__(
        self,
        urls: Mapping[str, str],
        *,
        region: str | None = None,
        credentials: Any | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        import urllib3

        if credentials is not None and region is None:
            raise ConfigurationError("signing calls to other domains needs the AWS region")
        self._urls = {name: url.rstrip("/") for name, url in urls.items()}
        self._region = region
        self._credentials = credentials
        self._pool = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=timeout, read=timeout), retries=False
        )

    def __call__(self, domain: str, correlation_id: str | None = None) -> Client:
        base = self._urls.get(domain)
        if base is None:
            known = ", ".join(sorted(self._urls)) or "none"
            raise ConfigurationError(
                f"no API URL for domain {domain!r} (known: {known}); "
                "TCTF_DOMAIN_URLS maps each called domain to its API"
            )

        async def send(
            method: str,
            path: str,
            query: Mapping[str, str],
            headers: Mapping[str, str],
            body: bytes,
        ) -> Reply:
            url = base + path + (f"?{urlencode(query)}" if query else "")
            return await asyncio.to_thread(self._send, method, url, dict(headers), body)

        return Client(domain, send, correlation_id=correlation_id)

    def _send(self, method: str, url: str, headers: dict[str, str], body: bytes) -> Reply:
        import urllib3

        if self._credentials is not None:
            headers = self._signed(method, url, headers, body)
        try:
            answer = self._pool.request(method, url, body=body or None, headers=headers)
        except urllib3.exceptions.HTTPError as error:
            raise ConnectionError(f"{method} {url}: {error}") from error
        return Reply(answer.status, answer.data, {k.lower(): v for k, v in answer.headers.items()})

    def _signed(
        self, method: str, url: str, headers: dict[str, str], body: bytes
    ) -> dict[str, str]:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        request = AWSRequest(method=method, url=url, data=body, headers=headers)
        SigV4Auth(self._credentials, "execute-api", self._region).add_auth(request)
        return dict(request.headers.items())
