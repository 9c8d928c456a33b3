"""`tctf run --port`: the addresses the domains name for themselves (the OAuth issuer, the
unsubscribe links, like the password links) follow the port it serves, not port 8000."""

from __future__ import annotations

import os

import pytest

from domains.auth_oauth.app import issuer_from
from domains.communication.unsubscribe import app_url
from tctf.cli import _link_to_this_run


def test_a_run_on_another_port_names_that_port_in_its_issuer_and_its_links(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TCTF_APP_URL", "")  # unset, and restored after the run set it
    monkeypatch.delenv("TCTF_OAUTH_ISSUER", raising=False)
    _link_to_this_run("0.0.0.0", 8123)
    assert issuer_from(os.environ) == "http://localhost:8123"
    assert app_url() == "http://localhost:8123"


def test_a_run_keeps_the_app_url_it_was_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TCTF_APP_URL", "https://app.example.com")
    monkeypatch.delenv("TCTF_OAUTH_ISSUER", raising=False)
    _link_to_this_run("127.0.0.1", 8123)
    assert issuer_from(os.environ) == "https://app.example.com"
