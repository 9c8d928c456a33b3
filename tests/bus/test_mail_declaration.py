"""A domain that sends e-mail says so (`Domain(..., mail=Mail(...))`), and the topology
names what it gets deployed: its configuration set, its notifications topic and DLQ."""

from __future__ import annotations

import pytest

from bus import ConfigurationError, Context, Domain, Request
from bus.access import INTERNAL, PUBLIC, Access
from bus.domain import Mail
from bus.topology import MailSpec, Topology


def mailing(route_access: Access = INTERNAL, method: str = "post") -> Domain:
    domain = Domain("mailer", mail=Mail(notifications="/bounces"))
    register = domain.post if method == "post" else domain.put

    @register("/bounces", access=route_access)
    async def bounced(request: Request[None], ctx: Context) -> None: ...

    return domain


def test_a_mail_domain_gets_its_configuration_set_topic_and_dlq() -> None:
    topology = Topology.from_domains([mailing(), Domain("quiet")], app="shop")
    assert topology.mail == (
        MailSpec("mailer", "shop-mailer", "shop-mailer-mail-events", "/bounces"),
    )
    assert topology.mail[0].dlq == "shop-mailer-mail-events-dlq"


@pytest.mark.parametrize(
    "domain",
    [
        pytest.param(lambda: Domain("mailer", mail=Mail(notifications="/bounces")), id="no-route"),
        pytest.param(lambda: mailing(method="put"), id="not-post"),
        pytest.param(lambda: mailing(route_access=PUBLIC), id="public"),
    ],
)
def test_notifications_go_to_an_internal_post_route_the_domain_declares(domain: object) -> None:
    with pytest.raises(ConfigurationError, match="declares no INTERNAL POST route there"):
        Topology.from_domains([domain()], app="shop")  # type: ignore[operator]
