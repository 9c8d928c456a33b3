"""Live delivery over WebSocket, as `tctf run` serves it: a connection authorised by the
access token in its query string receives each new message to its user once; a refused
token closes it with 4401; a connection found gone is forgotten."""

from __future__ import annotations

from bus.access import Principal
from bus.errors import TransientError
from bus.websockets import CLOSE_UNAUTHENTICATED, Connection
from domains.auth_core.app import ACCESS_TOKEN_LIFETIME
from domains.user_message.app import remember_connection
from tests.asgi import asgi_websocket
from tests.domains.user_message import messaging_platform


async def test_a_connected_recipient_receives_the_message_as_it_is_sent() -> None:
    async with messaging_platform() as m:
        ada, ada_token = await m.user("ada@example.com")
        bob, bob_token = await m.user("bob@example.com")
        await m.befriend(ada, bob)
        async with m.live(bob_token) as bob_live, m.live(ada_token) as ada_live:
            assert (await bob_live.receive())["type"] == "websocket.accept"
            assert (await ada_live.receive())["type"] == "websocket.accept"
            sent = await m.send(ada_token, bob, "are you there?")
            assert sent.status == 201, sent.json()
            frame = await bob_live.receive_json()
            assert frame == {"type": "message", "message": sent.json()}
            assert ada_live.pending() == []  # the sender is not echoed
    assert frame["message"]["text"] == "are you there?"


async def test_an_expired_token_is_refused_at_connect_with_4401() -> None:
    async with messaging_platform() as m:
        _, token = await m.user("ada@example.com")
        m.clock.advance(ACCESS_TOKEN_LIFETIME + 1)
        async with m.live(token) as live:
            assert (await live.receive())["type"] == "websocket.accept"
            closed = await live.receive()
        assert m.items("USER#") == []  # no connection recorded
    assert closed["type"] == "websocket.close"
    assert closed["code"] == CLOSE_UNAUTHENTICATED == 4401
    assert closed["reason"] == "a valid access token is required"


async def test_a_missing_or_forged_token_is_refused_with_4401() -> None:
    async with messaging_platform() as m:
        _, token = await m.user("ada@example.com")
        for presented in (None, token[:-4] + "AAAA", "not-a-jwt"):
            async with m.live(presented) as live:
                await live.receive()
                closed = await live.receive()
            assert closed["code"] == 4401, presented
        assert m.items("USER#") == []


async def test_an_unknown_websocket_path_is_closed_as_a_policy_violation() -> None:
    async with messaging_platform() as m:
        _, token = await m.user("ada@example.com")
        async with asgi_websocket(m.client.app, "/nowhere", f"token={token}".encode()) as ws:
            closed = await ws.receive()
    assert closed == {"type": "websocket.close", "code": 1008}


async def test_disconnecting_forgets_the_connection() -> None:
    async with messaging_platform() as m:
        ada, token = await m.user("ada@example.com")
        async with m.live(token) as live:
            await live.receive()
            connected = m.items(f"USER#{ada}")
        assert m.items("USER#") == [] and m.items("CONNECTION#") == []
    assert [i["SK"].split("#")[0] for i in connected] == ["CONNECTION"]


async def test_a_connection_found_gone_is_forgotten_and_the_others_still_receive() -> None:
    async with messaging_platform() as m:
        ada, ada_token = await m.user("ada@example.com")
        bob, bob_token = await m.user("bob@example.com")
        await m.befriend(ada, bob)
        # A connection whose $disconnect never came (API Gateway sends it on a best-effort
        # basis): recorded, but no socket answers to it any more.
        bob_principal = Principal(subject=bob)
        await remember_connection(
            Connection("gone-connection", bob_principal), m.h.runtime.context("user_message")
        )
        async with m.live(bob_token) as bob_live:
            await bob_live.receive()
            sent = await m.send(ada_token, bob, "hello")
            frame = await bob_live.receive_json()
            remaining = [i["connection_id"] for i in m.items(f"USER#{bob}")]
    assert frame["message"]["message_id"] == sent.json()["message_id"]
    assert "gone-connection" not in remaining and len(remaining) == 1
    assert m.items("CONNECTION#gone-connection") == []
    assert [o.status for o in m.h.handled("user_message.deliver_message")] == ["handled"]


async def test_a_redelivered_delivery_pushes_the_message_once() -> None:
    async with messaging_platform() as m:
        ada, ada_token = await m.user("ada@example.com")
        bob, bob_token = await m.user("bob@example.com")
        await m.befriend(ada, bob)
        async with m.live(bob_token) as bob_live:
            await bob_live.receive()
            await m.send(ada_token, bob, "once")
            first = await bob_live.receive_json()
            delivery = m.h.published_of("DELIVER_MESSAGE")
            await m.h.runtime.publisher.send([*delivery, *delivery])
            await m.h.settle()
            again = bob_live.pending()
    assert first["message"]["text"] == "once"
    assert again == []
    statuses = [o.status for o in m.h.results(handler="user_message.deliver_message")]
    assert sorted(statuses) == ["handled", "skipped", "skipped"]


async def test_a_delivery_retried_after_a_failed_push_does_not_push_twice() -> None:
    async with messaging_platform() as m:
        ada, ada_token = await m.user("ada@example.com")
        bob, bob_token = await m.user("bob@example.com")
        await m.befriend(ada, bob)
        flaky: list[bytes] = []

        async def busy_once(data: bytes) -> None:
            if not flaky:
                flaky.append(b"")
                raise TransientError("the socket is busy")
            flaky.append(data)

        # A second session of bob's whose first write fails: its connection id sorts after
        # the live one's, so the delivery fails after pushing to the live one.
        m.h.runtime.connections.attach("zz-busy-session", busy_once)
        await remember_connection(
            Connection("zz-busy-session", Principal(subject=bob)),
            m.h.runtime.context("user_message"),
        )
        async with m.live(bob_token) as bob_live:
            await bob_live.receive()
            await m.send(ada_token, bob, "once")
            frames = [await bob_live.receive_json(), *bob_live.pending()]
    assert [f["message"]["text"] for f in frames] == ["once"]
    assert len(flaky) == 2 and b'"once"' in flaky[1]
