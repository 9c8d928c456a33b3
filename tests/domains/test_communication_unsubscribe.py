"""Unsubscribe links: each recipient's own signed, expiring link; GET only reads it (mail
scanners follow links), RFC 8058's one-click POST unsubscribes, and no later campaign goes
to that user; a forged, altered or expired link is refused with a problem and changes
nothing."""

from __future__ import annotations

import json
import secrets
from urllib.parse import parse_qs, urlsplit

import pytest

from bus.secrets import variable
from bus.storage.memory import InMemoryTable
from domains.communication.errors import InvalidUnsubscribeLink, UnsubscribeLinksMisconfigured
from domains.communication.unsubscribe import (
    LINK_LIFETIME,
    SECRET,
    app_url,
    read_token,
    signing_keys,
    unsubscribe_url,
)
from tests.domains.communication import (
    MINUTE,
    UNSUBSCRIBE_SECRET,
    Campaigns,
    campaign_platform,
)

ONE_CLICK = b"List-Unsubscribe=One-Click"
DEPLOYED = {"AWS_LAMBDA_FUNCTION_NAME": "tctf-prod-communication"}
CURRENT, PREVIOUS = secrets.token_urlsafe(48), secrets.token_urlsafe(48)
NOW = 1_800_000_000.0
FORM = "application/x-www-form-urlencoded"


def token_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)["token"][0]


async def first_campaign(c: Campaigns) -> tuple[str, dict[str, str]]:
    """An admin's token after a campaign to the free plan went out, and each user's token."""
    token = await c.admin()
    await c.sign_up("ada@example.com", "Ada")
    await c.create(token)
    await c.advance(MINUTE)
    links = {e["to"]: token_of(e["unsubscribe_url"]) for e in c.emails()}
    return token, links


async def one_click(c: Campaigns, link_token: str) -> int:
    answer = await c.call(
        "POST", f"/unsubscribe?token={link_token}", raw=ONE_CLICK, content_type=FORM
    )
    await c.h.settle()
    return answer.status


async def test_one_click_unsubscribes_from_later_campaigns(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with campaign_platform(monkeypatch) as c:
        token, links = await first_campaign(c)
        looked = await c.call("GET", f"/unsubscribe?token={links['ada@example.com']}")
        looked_again = await c.call("GET", f"/unsubscribe?token={links['ada@example.com']}")
        statuses = [await one_click(c, links["ada@example.com"]) for _ in range(2)]
        after = await c.call("GET", f"/unsubscribe?token={links['ada@example.com']}")
        await c.create(token, subject="Summer news")
        await c.advance(MINUTE)
    assert looked.status == 200 and looked.json()["unsubscribed"] is False
    assert looked_again.json()["unsubscribed"] is False  # reading changes nothing
    assert statuses == [200, 200]
    assert after.json()["unsubscribed"] is True
    summer = [e["to"] for e in c.emails() if e["subject"] == "Summer news"]
    assert summer == ["root@example.com"]


async def test_the_link_also_takes_a_json_confirmation(monkeypatch: pytest.MonkeyPatch) -> None:
    async with campaign_platform(monkeypatch) as c:
        _, links = await first_campaign(c)
        answer = await c.call(
            "POST",
            f"/unsubscribe?token={links['ada@example.com']}",
            {"List-Unsubscribe": "One-Click"},
        )
    assert answer.status == 200 and answer.json()["unsubscribed"] is True


async def test_an_expired_link_is_refused_and_changes_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with campaign_platform(monkeypatch) as c:
        _, links = await first_campaign(c)
        link = links["ada@example.com"]
        c.clock.advance(LINK_LIFETIME - 1)
        last_second = await c.call("GET", f"/unsubscribe?token={link}")
        c.clock.advance(2)
        read = await c.call("GET", f"/unsubscribe?token={link}")
        status = await one_click(c, link)
    assert last_second.status == 200
    assert read.status == 422
    assert read.headers["content-type"] == "application/problem+json"
    assert "expired" in read.json()["detail"]
    assert status == 422
    assert unsubscribed(c) == []


def unsubscribed(c: Campaigns) -> list[str]:
    """The users communication's projection holds as unsubscribed."""
    table = c.h.runtime.tables["communication"]
    assert isinstance(table, InMemoryTable)
    return [str(i["user_id"]) for i in table.scan() if "unsubscribed" in i]


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),  # signature altered
        lambda t: "not-a-token",
        lambda t: "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.",  # alg none
    ],
)
async def test_a_forged_link_is_refused_and_changes_nothing(
    monkeypatch: pytest.MonkeyPatch, mangle: object
) -> None:
    assert callable(mangle)
    async with campaign_platform(monkeypatch) as c:
        _, links = await first_campaign(c)
        status = await one_click(c, mangle(links["ada@example.com"]))
    assert status == 422
    assert unsubscribed(c) == []


async def test_a_link_signed_with_another_secret_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with campaign_platform(monkeypatch) as c:
        await first_campaign(c)
        [ada] = [e for e in c.emails() if e["to"] == "ada@example.com"]
        monkeypatch.setenv(variable(SECRET), json.dumps(["another-secret-of-enough-length-0123"]))
        forged = token_of(unsubscribe_url(ada["user_id"], ada["campaign_id"], c.clock.now()))
        monkeypatch.setenv(variable(SECRET), json.dumps([UNSUBSCRIBE_SECRET]))
        status = await one_click(c, forged)
    assert status == 422
    assert unsubscribed(c) == []


async def test_a_one_click_post_without_its_body_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with campaign_platform(monkeypatch) as c:
        _, links = await first_campaign(c)
        answer = await c.call(
            "POST", f"/unsubscribe?token={links['ada@example.com']}", raw=b"", content_type=FORM
        )
        missing = await c.call("POST", "/unsubscribe", raw=ONE_CLICK, content_type=FORM)
    assert answer.status == 422
    assert missing.status == 422
    assert answer.headers["content-type"] == "application/problem+json"


def test_a_deployed_communication_without_its_secret_or_app_url_refuses_to_start() -> None:
    with pytest.raises(UnsubscribeLinksMisconfigured, match=r"TCTF_SECRET_UNSUBSCRIBE.*other"):
        signing_keys(DEPLOYED)
    with pytest.raises(UnsubscribeLinksMisconfigured, match=r"TCTF_APP_URL.*app_url"):
        app_url(DEPLOYED)
    assert app_url({**DEPLOYED, "TCTF_APP_URL": "https://app.example.com/"}) == (
        "https://app.example.com"
    )


def test_two_containers_of_one_stage_honour_each_other_s_links(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "tctf-prod-communication")
    monkeypatch.setenv("TCTF_APP_URL", "https://app.example.com")
    monkeypatch.setenv(variable(SECRET), json.dumps([CURRENT]))
    link = unsubscribe_url("user-1", "campaign-1", NOW)
    assert link.startswith("https://app.example.com/unsubscribe?token=")
    [one] = signing_keys()
    [other] = signing_keys({variable(SECRET): json.dumps([CURRENT])})
    assert one.as_dict(private=True) == other.as_dict(private=True)
    assert read_token(token_of(link), NOW) == ("user-1", "campaign-1")


def test_after_a_rotation_links_mailed_before_still_work(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(variable(SECRET), json.dumps([PREVIOUS]))
    mailed = token_of(unsubscribe_url("user-1", "campaign-1", NOW))
    monkeypatch.setenv(variable(SECRET), json.dumps([CURRENT, PREVIOUS]))
    assert read_token(mailed, NOW) == ("user-1", "campaign-1")
    monkeypatch.setenv(variable(SECRET), json.dumps([secrets.token_urlsafe(48), CURRENT]))
    with pytest.raises(InvalidUnsubscribeLink):
        read_token(mailed, NOW)


def test_a_local_run_without_a_secret_signs_with_a_key_of_its_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(variable(SECRET), raising=False)
    monkeypatch.delenv("TCTF_APP_URL", raising=False)
    link = unsubscribe_url("user-1", "campaign-1", NOW)
    assert link.startswith("http://localhost:8000/unsubscribe?token=")
    assert read_token(token_of(link), NOW) == ("user-1", "campaign-1")
