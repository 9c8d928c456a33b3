"""Achievement rules as data: what each rule counts, from which events, and when it awards.

A rule is a plain mapping (see `declarations.py`) validated here when the domain loads:
`load_rules` turns the mappings into `Rule`s or raises `InvalidRuleDeclaration` naming the
rule and the field. The events a rule may name are the facts in `SOURCES`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from bus.messages import Event
from domains.achievements.errors import InvalidRuleDeclaration
from domains.auth_core.contracts import SignedIn
from domains.billing.contracts import InvoicePaid
from domains.social.contracts import PostCreated, PostDeleted, UserFollowed, UserUnfollowed

#: The facts a rule may count, by type: adding one here is all a rule over a new fact needs.
SOURCES: dict[str, type[Event]] = {
    e.type: e
    for e in (PostCreated, PostDeleted, UserFollowed, UserUnfollowed, InvoicePaid, SignedIn)
}


class Source(BaseModel):
    """One fact a rule counts: `user` names the payload field of whose counter it moves,
    `item` the field telling one counted thing from another (a post, a follower), and
    `where` an EventBridge pattern over the payload that AWS applies before delivery."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event: str
    user: str
    item: str | None = None
    where: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _fields_exist(self) -> Source:
        event = SOURCES.get(self.event)
        if event is None:
            raise ValueError(
                f"event {self.event!r} is not one a rule may count (known: {', '.join(SOURCES)})"
            )
        for field in (self.user, self.item):
            if field is not None and field not in event.model_fields:
                raise ValueError(f"{self.event} has no field {field!r}")
        if self.where is not None:
            _check_pattern(self.where)
        return self

    @property
    def message(self) -> type[Event]:
        return SOURCES[self.event]


class Rule(BaseModel):
    """An achievement: awarded once, when the user's counter reaches `threshold`.

    `count` counts distinct items, added by `add` facts and taken away by `remove` facts
    (the latest fact about an item wins, so duplicates and reordering change nothing);
    `streak` counts consecutive UTC days on which an `add` fact happened.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")
    title: str = Field(min_length=1, max_length=100)
    kind: Literal["count", "streak"] = "count"
    threshold: int = Field(ge=1, le=10_000)
    add: tuple[Source, ...] = Field(min_length=1)
    remove: tuple[Source, ...] = ()

    @model_validator(mode="after")
    def _sources_fit_the_kind(self) -> Rule:
        if self.kind == "count":
            if any(s.item is None for s in (*self.add, *self.remove)):
                raise ValueError("a count rule names the `item` field telling counted things apart")
        else:
            if self.remove:
                raise ValueError("a streak rule has no `remove`: a day that happened stays")
            if any(s.item is not None for s in self.add):
                raise ValueError("a streak rule counts days; it takes no `item`")
        return self


def load_rules(declarations: Iterable[Mapping[str, Any]]) -> tuple[Rule, ...]:
    """Validate every declaration; `InvalidRuleDeclaration` names the first wrong one."""
    rules: list[Rule] = []
    for index, declaration in enumerate(declarations):
        name = declaration.get("id", f"#{index + 1}") if isinstance(declaration, Mapping) else index
        try:
            rule = Rule.model_validate(declaration)
        except ValidationError as error:
            problems = "; ".join(_problem(e) for e in error.errors(include_url=False))
            raise InvalidRuleDeclaration(f"achievement rule {name!r}: {problems}") from None
        if any(r.id == rule.id for r in rules):
            raise InvalidRuleDeclaration(f"achievement rule {rule.id!r} is declared twice")
        rules.append(rule)
    return tuple(rules)


def _problem(error: Any) -> str:
    """`add.0.item: POST_CREATED has no field 'post'`: where, then what."""
    where = ".".join(str(part) for part in error["loc"]) or "rule"
    return f"{where}: {str(error['msg']).removeprefix('Value error, ')}"


def _check_pattern(where: dict[str, Any]) -> None:
    """The pattern must mean the same to EventBridge and to SNS (as a body filter policy)."""
    from bus.routing import InvalidRoutingRule, compile_event_pattern, compile_filter_policy

    try:
        compile_event_pattern(where)
        compile_filter_policy({"data": where}, "MessageBody")
    except InvalidRoutingRule as error:
        raise ValueError(f"`where` is not a pattern AWS accepts: {error}") from None
