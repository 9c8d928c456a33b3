"""`bus.mail.MailProvider` on AWS: Amazon SES through SESv2's SendEmail with raw content
(so custom headers such as `List-Unsubscribe` survive), its errors told apart as
`MailRejected` (never) and `MailRefused` (later).

botocore's client, made on the first send and each call run in a worker thread: what a
function ships (decision 0008), and all one send at a time needs; a cold start imports
neither the SDK nor SES's model. Region, credentials and endpoint are the SDK's own
configuration (`AWS_REGION`, `AWS_ENDPOINT_URL_SESV2`).
"""

from __future__ import annotations

import asyncio
import os
import threading
from typing import Any

from bus.errors import MailRefused, MailRejected

#: The SES configuration set to send with (its event destinations publish bounces), if any.
CONFIGURATION_SET_VARIABLE = "TCTF_SES_CONFIGURATION_SET"

#: SES error codes that no retry changes (SESv2 SendEmail's documented errors).
_REJECTIONS = frozenset(
    {
        "MessageRejected",
        "MailFromDomainNotVerifiedException",
        "AccountSuspendedException",
        "SendingPausedException",
        "BadRequestException",
        "NotFoundException",
    }
)


class SesMailProvider:
    """Sends through SES, with `configuration_set` if given."""

    def __init__(self, configuration_set: str | None = None) -> None:
        self.configuration_set = configuration_set
        self._client: Any = None
        self._opening = threading.Lock()

    @classmethod
    def from_environment(cls) -> SesMailProvider:
        """The provider a deployed function sends through: its configuration set from
        `TCTF_SES_CONFIGURATION_SET`; nothing is imported or called yet."""
        return cls(os.environ.get(CONFIGURATION_SET_VARIABLE) or None)

    @property
    def opened(self) -> bool:
        """Whether the SDK's client is made (it is on the first send)."""
        return self._client is not None

    async def send(self, *, sender: str, to: str, message: bytes) -> str:
        request: dict[str, Any] = {
            "FromEmailAddress": sender,
            "Destination": {"ToAddresses": [to]},
            "Content": {"Raw": {"Data": message}},
        }
        if self.configuration_set:
            request["ConfigurationSetName"] = self.configuration_set
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            answer = await asyncio.to_thread(self._send, request)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            text = f"SES {code}: {error.response.get('Error', {}).get('Message', '')}"
            if code in _REJECTIONS:
                raise MailRejected(text) from error
            raise MailRefused(text) from error
        except BotoCoreError as error:
            raise MailRefused(f"SES unreachable: {type(error).__name__}") from error
        return str(answer["MessageId"])

    def _send(self, request: dict[str, Any]) -> Any:
        return self._sesv2().send_email(**request)

    def _sesv2(self) -> Any:
        with self._opening:  # sends run in worker threads: one client, made once
            if self._client is None:
                import botocore.session

                self._client = botocore.session.get_session().create_client("sesv2")
            return self._client
