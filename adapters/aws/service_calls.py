"""Other domains' HTTP APIs over HTTPS, each request signed with the function's own
credentials (SigV4 for `execute-api`), as API Gateway's IAM authorization checks them:
the service client (`ctx.services`) of a function on AWS.

Signing is botocore's; the request goes out with the standard library in a worker thread,
as the function's other botocore calls do, so no HTTP library joins its package.
"""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from adapters.aws.errors import ServiceUnreachable
from bus.errors import ConfigurationError
from bus.http import CORRELATION_HEADER, HttpResponse
from bus.middleware import current_correlation_id

if TYPE_CHECKING:
    from pydantic import BaseModel

#: Seconds a call may take: a sign-in waits on it, well inside API Gateway's 30 s.
CALL_TIMEOUT = 5.0

Credentials = Callable[[], Any]


class SignedServiceCalls:
    """`base_urls` maps a domain to its API's base URL (`https://<id>.execute-api.<region>.
    amazonaws.com`); `credentials` returns botocore credentials, refreshed as they expire."""

    def __init__(
        self,
        base_urls: Mapping[str, str],
        region: str,
        credentials: Credentials | None = None,
        timeout: float = CALL_TIMEOUT,
    ) -> None:
        self.base_urls = {domain: url.rstrip("/") for domain, url in base_urls.items()}
        self.region = region
        self._credentials = credentials or _session_credentials
        self.timeout = timeout

    async def request(
        self, domain: str, method: str, path: str, body: BaseModel | None = None
    ) -> HttpResponse:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        base = self.base_urls.get(domain)
        if base is None:
            raise ConfigurationError(
                f"no URL for domain {domain}'s API: add it to TCTF_SERVICE_URLS "
                f"(known: {', '.join(sorted(self.base_urls)) or 'none'})"
            )
        headers = {"content-type": "application/json"}
        correlation_id = current_correlation_id.get()
        if correlation_id:
            headers[CORRELATION_HEADER] = correlation_id
        raw = b"" if body is None else body.__pydantic_serializer__.to_json(body)
        signed = AWSRequest(method=method, url=f"{base}{path}", data=raw, headers=headers)
        SigV4Auth(self._credentials(), "execute-api", self.region).add_auth(signed)
        prepared = signed.prepare()
        return await asyncio.to_thread(
            _send, method, prepared.url, raw, dict(prepared.headers.items()), self.timeout
        )


def _send(
    method: str, url: str, body: bytes, headers: dict[str, str], timeout: float
) -> HttpResponse:
    request = urllib.request.Request(url, data=body or None, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return HttpResponse(answer.status, answer.read(), _lower(answer.headers))
    except urllib.error.HTTPError as error:
        return HttpResponse(error.code, error.read(), _lower(error.headers))
    except (urllib.error.URLError, TimeoutError, OSError) as error:
        raise ServiceUnreachable(f"{method} {url} could not be reached: {error}") from error


def _lower(headers: Any) -> dict[str, str]:
    return {str(k).lower(): str(v) for k, v in headers.items()}


def _session_credentials() -> Any:
    import botocore.session

    credentials = botocore.session.get_session().get_credentials()
    if credentials is None:
        raise ConfigurationError("no AWS credentials to sign a service call with")
    return credentials.get_frozen_credentials()
