"""`bus.websockets.Connections` on AWS: posting to an API Gateway WebSocket API's
connections through its management API (`PostToConnection`), a `GoneException` told to the
caller as `ConnectionGone`.

The management endpoint is the API's stage URL (`https://<api-id>.execute-api.<region>.
amazonaws.com/<stage>`, which `tctf synth` hands the function as `TCTF_WEBSOCKET_ENDPOINT`);
the SDK is imported with the first post, not at import.
"""

from __future__ import annotations

from dataclasses import replace
from types import TracebackType

from adapters.aws.session import AwsClients, AwsSettings
from bus.errors import ConnectionGone, PermanentError, TransientError

SERVICE = "apigatewaymanagementapi"
#: What a later attempt may get through: throttling, and the service's own failures.
_RETRYABLE = frozenset(
    {"LimitExceededException", "TooManyRequestsException", "InternalServerError"}
)


class ApiGatewayConnections:
    """`async with ApiGatewayConnections(settings, endpoint) as connections:` then
    `await connections.post(connection_id, data)`."""

    def __init__(self, settings: AwsSettings, endpoint_url: str) -> None:
        self._clients = AwsClients(replace(settings, endpoint_url=endpoint_url))

    async def __aenter__(self) -> ApiGatewayConnections:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._clients.__aexit__(exc_type, exc, tb)

    async def post(self, connection_id: str, data: bytes) -> None:
        from botocore.exceptions import ClientError

        client = await self._clients.client(SERVICE)
        try:
            await client.post_to_connection(ConnectionId=connection_id, Data=data)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code == "GoneException":
                raise ConnectionGone(connection_id) from None
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            if code in _RETRYABLE or status >= 500:
                raise TransientError(
                    f"PostToConnection to {connection_id} failed ({code}); retried"
                ) from error
            # Forbidden (the function may not manage this API) or PayloadTooLarge: no
            # retry helps, the delivery is parked with the reason.
            raise PermanentError(
                f"PostToConnection to {connection_id} refused ({code or status})"
            ) from error
