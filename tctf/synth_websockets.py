"""A domain's WebSocket API in its CDK stack (`tctf synth`): an API Gateway WebSocket API
whose `$connect` and `$disconnect` routes invoke the domain's function, a stage deployed
automatically, and the function's leave to post to that API's connections and no other's.

`$connect` carries no authorizer: the function verifies the access token from the query
string itself, as `tctf run` does, and refuses the connection by answering 401 (API Gateway
then answers the handshake with it). The function learns where to post from
`TCTF_WEBSOCKET_ENDPOINT`, the stage's management endpoint.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import aws_cdk as cdk
    from aws_cdk import aws_lambda as lambda_

    from bus.topology import WebSocketSpec

#: The environment variable holding the management endpoint the function posts to.
ENDPOINT_VARIABLE = "TCTF_WEBSOCKET_ENDPOINT"
STAGE = "live"


def websocket_api(
    stack: cdk.Stack, spec: WebSocketSpec, function: lambda_.Function, live: lambda_.IFunction
) -> None:
    """The WebSocket API of `spec`, invoking `live` (the function's released alias) and
    letting `function`'s role post to its connections."""
    import aws_cdk as cdk
    from aws_cdk import aws_apigatewayv2 as apigateway
    from aws_cdk import aws_iam as iam

    api = apigateway.CfnApi(
        stack,
        "WebSocketApi",
        name=spec.name,
        protocol_type="WEBSOCKET",
        route_selection_expression="$request.body.action",
    )
    integration = apigateway.CfnIntegration(
        stack,
        "WebSocketIntegration",
        api_id=api.ref,
        integration_type="AWS_PROXY",
        integration_uri=(
            f"arn:{cdk.Aws.PARTITION}:apigateway:{cdk.Aws.REGION}:lambda:path/2015-03-31"
            f"/functions/{live.function_arn}/invocations"
        ),
    )
    routes = [
        apigateway.CfnRoute(
            stack,
            f"WebSocketRoute{route.strip('$').capitalize()}",
            api_id=api.ref,
            route_key=route,
            authorization_type="NONE",
            target=f"integrations/{integration.ref}",
        )
        for route in spec.routes
    ]
    stage = apigateway.CfnStage(
        stack, "WebSocketStage", api_id=api.ref, stage_name=STAGE, auto_deploy=True
    )
    for route in routes:
        stage.node.add_dependency(route)
    api_arn = f"arn:{cdk.Aws.PARTITION}:execute-api:{cdk.Aws.REGION}:{cdk.Aws.ACCOUNT_ID}:{api.ref}"
    live.add_permission(
        "WebSocketInvoke",
        principal=iam.ServicePrincipal("apigateway.amazonaws.com"),
        source_arn=f"{api_arn}/*",
    )
    function.add_to_role_policy(
        iam.PolicyStatement(
            actions=["execute-api:ManageConnections"],
            resources=[f"{api_arn}/{STAGE}/POST/@connections/*"],
        )
    )
    endpoint = f"https://{api.ref}.execute-api.{cdk.Aws.REGION}.{cdk.Aws.URL_SUFFIX}/{STAGE}"
    function.add_environment(ENDPOINT_VARIABLE, endpoint)
    cdk.CfnOutput(stack, "WebSocketUrl", value=f"wss://{endpoint.removeprefix('https://')}")
