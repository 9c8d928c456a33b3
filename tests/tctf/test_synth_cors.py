"""`tctf synth --stage`: a stage's `cors_origins` become its HTTP APIs' CORS configuration,
so API Gateway answers a browser app's preflights as `tctf run --cors-origin` does; a stage
without them gets none, and an origin that is not one (a path, a wildcard) is refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from adapters.http.cors import ALLOW_HEADERS, EXPOSE_HEADERS, MAX_AGE_S
from bus import ConfigurationError
from domains.auth_password.app import domain as auth_password
from domains.users.app import domain as users
from tctf.stages import DEFAULT_CONFIG, load_deploy_config, parse_deploy_config
from tctf.synth import FunctionSettings, build_app, stack_name
from tests.tctf.synthesized import LAYER

APP_URL = "https://app.example.org"
API = "AWS::ApiGatewayV2::Api"


def http_api(domain: Any, tmp_path: Path, stage: str, stages: dict[str, Any]) -> dict[str, Any]:
    config = parse_deploy_config(
        {"stages": {name: {"app_url": APP_URL, **table} for name, table in stages.items()}}
    )
    app = build_app(
        [domain],
        {domain.name: tmp_path},
        settings=FunctionSettings(layers=(LAYER,)),
        stage=stage,
        config=config,
    )
    template = app.synth().get_stack_by_name(stack_name(f"tctf-{stage}", domain.name)).template
    (api,) = [r["Properties"] for r in template["Resources"].values() if r["Type"] == API]
    assert api["ProtocolType"] == "HTTP"
    result: dict[str, Any] = api
    return result


STAGES = {
    "dev": {"cors_origins": ["http://localhost:5173", "https://app.dev.example.org"]},
    "prod": {"cors_origins": ["https://App.Example.org"]},
    "internal": {},
}


@pytest.mark.parametrize(
    ("stage", "origins"),
    [
        ("dev", ["http://localhost:5173", "https://app.dev.example.org"]),
        ("prod", ["https://app.example.org"]),
    ],
)
def test_each_stage_s_api_allows_its_own_origins_with_the_routes_methods(
    tmp_path: Path, stage: str, origins: list[str]
) -> None:
    cors = http_api(users, tmp_path, stage, STAGES)["CorsConfiguration"]
    assert cors == {
        "AllowOrigins": origins,
        "AllowMethods": ["DELETE", "GET", "PATCH", "POST"],
        "AllowHeaders": list(ALLOW_HEADERS),
        "ExposeHeaders": list(EXPOSE_HEADERS),
        "MaxAge": MAX_AGE_S,
    }
    assert "AllowCredentials" not in cors
    assert {"authorization", "content-type", "x-correlation-id"} <= set(cors["AllowHeaders"])


def test_a_stage_without_origins_answers_no_cors(tmp_path: Path) -> None:
    assert "CorsConfiguration" not in http_api(users, tmp_path, "internal", STAGES)


def test_internal_routes_methods_are_not_offered_to_browsers(tmp_path: Path) -> None:
    """auth_password's only POST routes besides its internal check are public ones: the
    internal route adds nothing a browser could be allowed."""
    methods = {r.method for r in auth_password.http_routes if not r.access.internal}
    cors = http_api(auth_password, tmp_path, "dev", STAGES)["CorsConfiguration"]
    assert cors["AllowMethods"] == sorted(methods)


@pytest.mark.parametrize(
    ("origin", "reason"),
    [
        ("https://app.example.org/", "no path"),
        ("https://app.example.org/app", "no path"),
        ("https://app.example.org?x=1", "no path, query"),
        ("*", "wildcard"),
        ("https://*.example.org", "wildcard"),
        ("app.example.org", r"http\(s\)://host"),
        ("ftp://app.example.org", r"http\(s\)://host"),
        ("https://user@app.example.org", "or user"),
        ("https://app.example.org:99999", "port"),
    ],
)
def test_an_origin_that_is_not_a_scheme_and_host_is_refused(origin: str, reason: str) -> None:
    with pytest.raises(ConfigurationError, match=rf"stages\.qa\.cors_origins.*{reason}"):
        parse_deploy_config({"stages": {"qa": {"app_url": APP_URL, "cors_origins": [origin]}}})


@pytest.mark.parametrize(
    ("given", "sent"),
    [
        ("https://App.Example.org", "https://app.example.org"),
        ("https://app.example.org:443", "https://app.example.org"),
        ("http://localhost:80", "http://localhost"),
        ("http://localhost:5173", "http://localhost:5173"),
        ("http://[::1]:5173", "http://[::1]:5173"),
    ],
)
def test_an_origin_is_kept_as_a_browser_sends_it(given: str, sent: str) -> None:
    config = parse_deploy_config({"stages": {"qa": {"app_url": APP_URL, "cors_origins": [given]}}})
    assert config.stages["qa"].cors_origins == (sent,)


def test_the_checked_in_stages_allow_their_own_app() -> None:
    for name, stage in load_deploy_config(DEFAULT_CONFIG).stages.items():
        assert stage.app_url in stage.cors_origins, name
