"""`tctf run --aws` sends e-mail through SES, as production does: a sign-up's welcome, then a
receipt once the user's first invoice is paid, each found in the embedded moto server's SES."""

from __future__ import annotations

import email
import email.policy
import json
import re
import time
import urllib.request
from pathlib import Path
from typing import Any

from tests.tctf.test_run_aws import RunAws, _free_port, run_aws


def call(port: int, method: str, path: str, body: Any = None, token: str | None = None) -> Any:
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=None if body is None else json.dumps(body).encode(),
        headers=headers,
        method=method,
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        text = answer.read()
        return json.loads(text) if text else None


def wait_for(run: RunAws, handler: str, count: int = 1) -> None:
    """Read the run's delivery log until `handler` has handled `count` records."""
    deadline = time.monotonic() + 60
    while (
        sum(
            1
            for line in run.log
            if line.get("handler") == handler and line.get("outcome") == "handled"
        )
        < count
    ):
        run.log.append(json.loads(run.stdout.next(deadline)))


def ses_letters(endpoint: str, to: str) -> list[email.message.EmailMessage]:
    with urllib.request.urlopen(f"{endpoint}/moto-api/data.json", timeout=30) as answer:
        sent = json.load(answer)["ses"]["RawMessage"]
    return [
        email.message_from_string(m["raw_data"], policy=email.policy.default)
        for m in sent
        if to in m["destinations"]
    ]


def test_sign_up_is_welcomed_and_a_paid_invoice_receipted_through_ses(tmp_path: Path) -> None:
    port = _free_port()
    address = "ada@example.com"
    with run_aws("--port", str(port), cwd=tmp_path) as run:
        run.banner()
        endpoint = (tmp_path / ".tctf" / "endpoint").read_text().strip()
        user_id = call(port, "POST", "/users", {"email": address, "name": "Ada", "locale": "de"})[
            "user_id"
        ]
        wait_for(run, "messaging_consumers.deliver", 2)  # the welcome and the password link
        letters = ses_letters(endpoint, address)
        invite = next((m for m in letters if m["Subject"] == "W\u00e4hle dein Passwort"), None)
        assert invite is not None, [str(m["Subject"]) for m in letters]
        token = re.search(r"#token=(\S+)", invite.get_content()).group(1)  # type: ignore[union-attr]
        call(port, "POST", "/auth/password/set", {"token": token, "password": "a long passphrase"})
        session = call(
            port, "POST", "/auth/sessions", {"email": address, "password": "a long passphrase"}
        )
        access = session["access_token"]
        wait_for(run, "billing.open_customer")
        base = f"/billing/customers/{user_id}"
        call(port, "PUT", f"{base}/payment-method", {"payment_method": "pm_card_visa"}, access)
        call(port, "POST", f"{base}/subscription", {"plan": "pro"}, access)
        wait_for(run, "messaging_consumers.deliver", 3)
        subjects = [str(m["Subject"]) for m in ses_letters(endpoint, address)]
    assert "Willkommen, Ada" in subjects
    assert any(subject.startswith("Quittung f\u00fcr Rechnung ") for subject in subjects)
    assert len(subjects) == 3
