"""The one filter that keeps secrets and personal data out of log lines and span attributes.

A value is redacted when its name says it is a credential (password, token, secret,
authorization, cookie, API key, credential, and their spellings in any case, as part of a
longer name too: `refresh_token`, `Set-Cookie`, `x-api-key`), and e-mail addresses are masked
wherever they appear in a string, as are `name=value` credentials written into free text (an
error message quoting a query string or a header). The filter is generic: it knows no domain's
field names, so a new route or handler is covered the day it is written.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

#: What a redacted value becomes.
REDACTED = "[REDACTED]"
#: What an e-mail address becomes.
EMAIL_MASK = "[EMAIL]"

_SENSITIVE = (
    r"pass(?:word|wd|phrase)?|pwd|token|secret|authori[sz]ation|cookie|api[-_]?key|credential"
)
_SENSITIVE_NAME = re.compile(_SENSITIVE, re.IGNORECASE)
_EMAIL = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
#: `password=...`, `token: ...`, `"secret": "..."`, `Authorization: Bearer ...` inside text.
_CREDENTIAL_IN_TEXT = re.compile(
    rf"(?P<name>[\w-]*(?:{_SENSITIVE})[\w-]*)(?P<sep>[\"']?\s*[:=]\s*)"
    r"(?P<value>\"[^\"]*\"|'[^']*'|(?:bearer|basic|digest)\s+[^\s)\]}]+|[^\s,;&\"'()\[\]{}]+)",
    re.IGNORECASE,
)


_verdicts: dict[str, bool] = {}


def is_sensitive_name(name: str) -> bool:
    """Whether a field, header or attribute called `name` holds a credential."""
    verdict = _verdicts.get(name)
    if verdict is None:
        verdict = _SENSITIVE_NAME.search(name) is not None
        if len(_verdicts) < 4096:  # names repeat; a flood of new ones is not remembered
            _verdicts[name] = verdict
    return verdict


def redact_text(text: str) -> str:
    """`text` with its e-mail addresses and `name=value` credentials masked."""
    if not _may_hold_secrets(text.lower()):
        return text  # the common case, and a log line's hot path: no regex run
    if "@" in text:
        text = _EMAIL.sub(EMAIL_MASK, text)
    return _CREDENTIAL_IN_TEXT.sub(_mask_credential, text)


def _may_hold_secrets(lowered: str) -> bool:
    # Spelled out: several times faster than any() over a tuple or a case-blind regex.
    return (
        "@" in lowered
        or "pass" in lowered
        or "pwd" in lowered
        or "token" in lowered
        or "secret" in lowered
        or "auth" in lowered
        or "cookie" in lowered
        or "key" in lowered
        or "credential" in lowered
    )


def _mask_credential(match: re.Match[str]) -> str:
    return f"{match['name']}{match['sep']}{REDACTED}"


def redact(value: Any) -> Any:
    """A copy of a JSON-like value (mappings, lists, tuples, strings, numbers) with every
    member named like a credential replaced by `REDACTED` and every string scrubbed by
    `redact_text`. Other objects pass through as they are."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {
            key: REDACTED if isinstance(key, str) and is_sensitive_name(key) else redact(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(item) for item in value]
    return value


def redact_attributes(attributes: Mapping[str, Any]) -> dict[str, Any]:
    """Span or log attributes (a flat mapping of strings, numbers, booleans and sequences of
    them, as OpenTelemetry takes) redacted as `redact` does, the value types kept."""
    redacted: dict[str, Any] = {}
    for name, value in attributes.items():
        if is_sensitive_name(name):
            redacted[name] = REDACTED
        elif isinstance(value, str):
            redacted[name] = redact_text(value)
        elif isinstance(value, list | tuple):
            scrubbed = [redact_text(item) if isinstance(item, str) else item for item in value]
            redacted[name] = tuple(scrubbed) if isinstance(value, tuple) else scrubbed
        else:
            redacted[name] = value
    return redacted
