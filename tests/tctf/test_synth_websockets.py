"""`tctf synth` of a domain with a WebSocket route: an API Gateway WebSocket API whose
`$connect` and `$disconnect` invoke the domain's function, and the function's leave to post
to that API's connections and to no other's; and `tctf topology` showing it."""

from __future__ import annotations

from typing import Any

import pytest

from bus.topology import Topology, WebSocketSpec
from domains.user_message.app import domain as user_message
from tctf.synth_websockets import ENDPOINT_VARIABLE
from tests.tctf.synthesized import Templates
from tests.tctf.test_synth import resolve, resources


@pytest.fixture(scope="module")
def template(sns_app: Templates) -> dict[str, Any]:
    return sns_app["tctf-user-message"]


def websocket_api(template: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The one WebSocket API of the stack (its HTTP API is the other `Api`)."""
    ((api_id, api),) = [
        (logical, api)
        for logical, api in resources(template, "AWS::ApiGatewayV2::Api").items()
        if api.get("ProtocolType") == "WEBSOCKET"
    ]
    return api_id, api


def of_api(template: dict[str, Any], kind: str, api_id: str) -> dict[str, dict[str, Any]]:
    return {
        logical: p
        for logical, p in resources(template, f"AWS::ApiGatewayV2::{kind}").items()
        if p["ApiId"] == {"Ref": api_id}
    }


def test_the_topology_declares_the_domains_websocket_api() -> None:
    topology = Topology.from_domains([user_message])
    assert topology.websockets == (
        WebSocketSpec("user_message", "tctf-user_message-live", "/messages/live"),
    )
    table = topology.render_table()
    assert "tctf-user_message-live" in table and "$connect, $disconnect" in table


def test_a_websocket_api_routes_connect_and_disconnect_to_the_live_alias(
    template: dict[str, Any],
) -> None:
    api_id, api = websocket_api(template)
    assert api["Name"] == "tctf-user_message-live"
    ((integration_id, integration),) = of_api(template, "Integration", api_id).items()
    assert integration["IntegrationType"] == "AWS_PROXY"
    (live_id,) = resources(template, "AWS::Lambda::Alias")
    assert {"Ref": live_id} in integration["IntegrationUri"]["Fn::Join"][1]
    routes = of_api(template, "Route", api_id).values()
    assert sorted(r["RouteKey"] for r in routes) == ["$connect", "$disconnect"]
    assert all(r["Target"]["Fn::Join"][1][1] == {"Ref": integration_id} for r in routes)
    (stage,) = of_api(template, "Stage", api_id).values()
    assert stage["AutoDeploy"] is True
    invoke = [
        str(resolve(p["SourceArn"]))
        for p in resources(template, "AWS::Lambda::Permission").values()
        if p["Principal"] == "apigateway.amazonaws.com" and api_id in str(p["SourceArn"])
    ]
    assert invoke == [f"arn:aws:execute-api:us-east-1:123456789012:{{'Ref': '{api_id}'}}/*"]


def test_the_function_may_post_to_its_own_apis_connections_only(template: dict[str, Any]) -> None:
    api_id, _ = websocket_api(template)
    statements = [
        s
        for p in resources(template, "AWS::IAM::Policy").values()
        for s in p["PolicyDocument"]["Statement"]
        if s["Action"] == "execute-api:ManageConnections"
    ]
    assert [str(resolve(s["Resource"])) for s in statements] == [
        f"arn:aws:execute-api:us-east-1:123456789012:{{'Ref': '{api_id}'}}/live/POST/@connections/*"
    ]
    (function,) = resources(template, "AWS::Lambda::Function").values()
    endpoint = resolve(function["Environment"]["Variables"][ENDPOINT_VARIABLE])
    assert str(endpoint).startswith("https://") and str(endpoint).endswith("/live")
