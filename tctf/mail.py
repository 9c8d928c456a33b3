"""`tctf mail`: the letters a running `tctf run` kept in its local mailbox for one address,
read from its `GET /mail` route (the mailbox lives in that process's table)."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from tctf.errors import UsageError


def read_mailbox(url: str, to: str, limit: int = 100) -> list[dict[str, Any]]:
    """Every letter kept for `to`, oldest first, following the route's cursors."""
    base = run_address(url)
    letters: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        query = {"to": to, "limit": str(limit), **({"cursor": cursor} if cursor else {})}
        page = _get(f"{base}/mail?{urllib.parse.urlencode(query)}", url)
        letters += page["items"]
        cursor = page["cursor"]
        if cursor is None:
            return letters


def run_address(url: str) -> str:
    """The base URL of a run given as `HOST:PORT` (as `tctf run` prints it) or as an
    `http://` or `https://` URL."""
    address = url.strip().rstrip("/")
    if "://" not in address:
        address = f"http://{address}"
    parts = urllib.parse.urlsplit(address)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"--url is HOST:PORT or an http(s):// URL, not {url!r}")
    return address


def _get(address: str, url: str) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(address, timeout=10) as answer:
            found: dict[str, Any] = json.load(answer)
            return found
    except urllib.error.HTTPError as error:
        detail = _detail(error)
        if error.code == 404:
            raise UsageError(f"{url} keeps no local mailbox ({detail})") from None
        raise UsageError(f"{url} refused: {error.code} {detail}") from None
    except urllib.error.URLError as error:
        raise UsageError(
            f"nothing answers at {url} ({error.reason}); start `tctf run` or give --url"
        ) from None


def _detail(error: urllib.error.HTTPError) -> str:
    try:
        return str(json.load(error).get("detail", ""))
    except ValueError:
        return ""


def render(letters: list[dict[str, Any]]) -> str:
    """Each letter as a mail reader shows it: headers, a blank line, the text."""
    shown = []
    for letter in letters:
        headers = {
            "Date": letter["sent_at"],
            "From": letter["sender"],
            "To": letter["to"],
            "Subject": letter["subject"],
            "Message-Id": letter["message_id"],
            **letter["headers"],
        }
        lines = [f"{name}: {value}" for name, value in headers.items()]
        shown.append("\n".join([*lines, "", letter["text"].rstrip("\n")]))
    return "\n\n".join(shown)
