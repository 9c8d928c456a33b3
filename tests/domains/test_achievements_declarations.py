"""Rule declarations are checked when the domain loads: a wrong one is refused with a message
naming the rule, the field and the fault; a right one needs no code to run."""

from __future__ import annotations

from typing import Any

import pytest

from bus import ConfigurationError
from domains.achievements.declarations import RULES
from domains.achievements.engine import achievements_domain
from domains.achievements.errors import InvalidRuleDeclaration
from domains.achievements.rules import load_rules
from domains.social.contracts import PostCreated, PostDeleted
from tests.domains.achievements import achievements_platform

FIVE_POSTS: dict[str, Any] = {
    "id": "five_posts",
    "title": "Five posts",
    "threshold": 5,
    "add": [{"event": "POST_CREATED", "user": "user_id", "item": "post_id"}],
    "remove": [{"event": "POST_DELETED", "user": "user_id", "item": "post_id"}],
}


def with_changes(changes: dict[str, Any], source: dict[str, Any] | None = None) -> dict[str, Any]:
    declaration = {**FIVE_POSTS, **changes}
    if source is not None:
        declaration["add"] = [{**FIVE_POSTS["add"][0], **source}]
    return declaration


@pytest.mark.parametrize(
    ("declaration", "message"),
    [
        (
            with_changes({}, {"event": "POST_LIKED"}),
            "'five_posts': add.0: event 'POST_LIKED' is not one a rule may count",
        ),
        (
            with_changes({}, {"item": "post"}),
            "'five_posts': add.0: POST_CREATED has no field 'post'",
        ),
        (
            with_changes({}, {"user": "author_id"}),
            "POST_CREATED has no field 'author_id'",
        ),
        (
            with_changes({}, {"item": None}),
            "a count rule names the `item` field telling counted things apart",
        ),
        (
            with_changes({}, {"where": {"text": [{"wildcard": "*hello*"}]}}),
            "add.0: `where` is not a pattern AWS accepts",
        ),
        (
            with_changes({}, {"where": {"text": "hello"}}),
            "`where` is not a pattern AWS accepts",
        ),
        (with_changes({"threshold": 0}), "'five_posts': threshold: Input should be greater"),
        (with_changes({"id": "Five Posts"}), "'Five Posts': id: String should match pattern"),
        (with_changes({"add": []}), "add: Tuple should have at least 1 item"),
        (with_changes({"title": ""}), "title: String should have at least 1 character"),
        (with_changes({"kind": "ladder"}), "kind: Input should be 'count' or 'streak'"),
        (with_changes({"kind": "streak"}), "a streak rule has no `remove`"),
        (
            with_changes({"kind": "streak", "remove": []}),
            "a streak rule counts days; it takes no `item`",
        ),
        (with_changes({"treshold": 5}), "treshold: Extra inputs are not permitted"),
    ],
)
def test_a_malformed_declaration_is_refused_at_load_saying_what_is_wrong(
    declaration: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidRuleDeclaration) as refused:
        load_rules([*RULES, declaration])
    assert message in str(refused.value)
    assert isinstance(refused.value, ConfigurationError)  # the platform refuses to start


def test_a_rule_declared_twice_is_refused() -> None:
    with pytest.raises(InvalidRuleDeclaration, match="'first_post' is declared twice"):
        load_rules([*RULES, RULES[0]])


def test_the_shipped_declarations_load() -> None:
    assert [r.id for r in load_rules(RULES)] == [
        "first_post",
        "ten_followers",
        "first_invoice_paid",
        "big_spender",
        "week_streak",
    ]


async def test_a_rule_declared_as_data_runs_with_no_code_changed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    engine = achievements_domain(load_rules([*RULES, FIVE_POSTS]))
    async with achievements_platform(monkeypatch, engine=engine) as a:
        ada, token = await a.customer("ada@example.com", payment_method=None)
        for n in range(4):
            await a.happen(PostCreated(post_id=f"p{n}", user_id=ada, text="hi", created_at="x"))
        await a.happen(PostDeleted(post_id="p0", user_id=ada))
        await a.happen(PostCreated(post_id="p4", user_id=ada, text="hi", created_at="x"))
        after_a_deletion = await a.earned(ada, token)  # four posts: p1 to p4
        await a.happen(PostCreated(post_id="p5", user_id=ada, text="hi", created_at="x"))
        earned = await a.earned(ada, token)
    assert after_a_deletion == ["first_post"]
    assert earned == ["first_post", "five_posts"]
