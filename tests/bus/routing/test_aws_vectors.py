"""The matchers against vectors recorded against real AWS (and event-ruler's own test data)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from bus.routing import (
    InvalidEventPattern,
    InvalidFilterPolicy,
    compile_event_pattern,
    compile_filter_policy,
    filter_policy_matches,
    validate_event_pattern,
)
from tests.fixtures import AWS

EVENT_RULER = AWS / "event-ruler" / "src" / "test" / "data"
SNS_SNAPSHOT = (
    AWS
    / "localstack"
    / "tests"
    / "aws"
    / "services"
    / "sns"
    / "test_sns_filter_policy.snapshot.json"
)


def _load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


EVENTBRIDGE_CASES = _load(AWS / "derived" / "localstack_eventbridge_pattern_cases.json")["cases"]
SNS_VECTORS = _load(AWS / "derived" / "localstack_sns_filter_policy_unit_vectors.json")


def test_vector_files_are_all_there() -> None:
    assert len(EVENTBRIDGE_CASES) == 155
    assert len(SNS_VECTORS["message_attributes_scope"]) == 69
    assert len(SNS_VECTORS["message_body_scope"]) == 47


# --- EventBridge: TestEventPattern cases recorded against AWS ----------------------------------


@pytest.mark.parametrize("case", EVENTBRIDGE_CASES, ids=[c["name"] for c in EVENTBRIDGE_CASES])
def test_eventbridge_pattern_matches_as_aws_recorded(case: dict[str, Any]) -> None:
    if case["expected"] == "invalid_pattern":
        with pytest.raises(InvalidEventPattern) as raised:
            compile_event_pattern(case["event_pattern"])
        assert str(raised.value) == case["aws_error"]["Message"]
        return
    matched = compile_event_pattern(case["event_pattern"]).match(case["event"])
    assert matched is (case["expected"] == "match")


def test_duplicate_event_keys_keep_the_last_one_as_aws_does() -> None:
    folder = (
        AWS / "localstack" / "tests" / "aws" / "services" / "events" / "event_pattern_templates"
    )
    event = json.loads((folder / "complex_multi_key_event.json").read_text())
    pattern = json.loads((folder / "complex_multi_key_event_pattern.json").read_text())
    assert compile_event_pattern(pattern).match(event)


# --- event-ruler: $or rule files ----------------------------------------------------------------


@pytest.mark.parametrize("rule", _load(EVENT_RULER / "orRelationshipRules.json"))
def test_valid_or_rules_are_accepted(rule: dict[str, Any]) -> None:
    validate_event_pattern(rule)


@pytest.mark.parametrize("rule", _load(EVENT_RULER / "wrongOrRelationshipRules.json"))
def test_malformed_or_rules_are_rejected(rule: dict[str, Any]) -> None:
    with pytest.raises(InvalidEventPattern, match=r"\$or"):
        validate_event_pattern(rule)


@pytest.mark.parametrize("rule", _load(EVENT_RULER / "normalRulesWithOrWording.json"))
def test_or_that_is_not_an_or_relationship_is_an_ordinary_field(rule: dict[str, Any]) -> None:
    pattern = compile_event_pattern(rule)
    event_with_field = _event_satisfying(rule)
    assert pattern.match(event_with_field)
    without_field = {key: value for key, value in event_with_field.items() if key != "$or"}
    if "detail" in without_field:
        without_field["detail"] = {}
    assert not pattern.match(without_field)


def _event_satisfying(rule: dict[str, Any]) -> dict[str, Any]:
    """An event for the normalRulesWithOrWording rules, with `$or` as a real field name."""
    samples = {
        "source": "aws.cloudwatch",
        "time": "2017-10-02T00:00:00Z",
        "metricType": "MetricType",
        "namespace": "AWS/EC2",
    }
    event: dict[str, Any] = {}
    for key, value in rule.items():
        if key == "detail":
            event["detail"] = {"$or": 3}
        elif key == "$or" and isinstance(value, list):
            event["$or"] = "10.0.0.7"
        elif key == "$or":
            event["$or"] = {name: samples[name] for name in value}
        else:
            event[key] = samples[key]
    return event


def test_or_rule_matches_when_either_branch_matches() -> None:
    rule = _load(EVENT_RULER / "orRelationshipRules.json")[2]
    pattern = compile_event_pattern(rule)
    assert pattern.match({"source": "aws.cloudwatch", "metricName": "ReadLatency"})
    assert pattern.match({"source": "aws.cloudwatch", "scope": "Service"})
    assert pattern.match(
        {"source": "aws.cloudwatch", "metricType": "MetricType", "namespace": "AWS/ES"}
    )
    assert not pattern.match({"source": "aws.cloudwatch", "metricType": "MetricType"})
    assert not pattern.match({"source": "aws.other", "scope": "Service"})


# --- event-ruler: arrays, array-consistent (EventBridge) semantics ------------------------------

ARRAY_RULES = {f"rule{n}": _load(EVENT_RULER / f"arrayRule{n}.json") for n in (1, 2, 3)}
# GenericMachineTest.nestedArraysTest, rulesForJSONEvent (the array-consistent matcher
# EventBridge uses): arrayEvent3 matches rule3 only with the legacy rulesForEvent, because
# metricName and namespace come from different elements of one array.
ARRAY_EXPECTATIONS = {
    "arrayEvent1": {"rule1", "rule2"},
    "arrayEvent2": set(),
    "arrayEvent3": set(),
    "arrayEvent4": {"rule3"},
}


@pytest.mark.parametrize("event_name", sorted(ARRAY_EXPECTATIONS))
def test_array_events_match_the_rules_event_ruler_expects(event_name: str) -> None:
    event = _load(EVENT_RULER / f"{event_name}.json")
    matched = {
        name for name, rule in ARRAY_RULES.items() if compile_event_pattern(rule).match(event)
    }
    assert matched == ARRAY_EXPECTATIONS[event_name]


# --- SNS: LocalStack's unit vectors -------------------------------------------------------------


def _sns_ids(cases: list[dict[str, Any]]) -> list[str]:
    return [f"{i}-{c.get('name', '')}".strip("-") for i, c in enumerate(cases)]


ATTRIBUTE_CASES = SNS_VECTORS["message_attributes_scope"]
BODY_CASES = SNS_VECTORS["message_body_scope"]


@pytest.mark.parametrize("case", ATTRIBUTE_CASES, ids=_sns_ids(ATTRIBUTE_CASES))
def test_sns_attribute_scope_vectors(case: dict[str, Any]) -> None:
    policy = case["filter_policy"]
    if case.get("non_array_leaf_policy"):
        # LocalStack accepts a bare leaf ({"filter": "type1"}); real SNS rejects the policy at
        # Subscribe, so the message is never filtered by it. We do what SNS does.
        with pytest.raises(InvalidFilterPolicy) as raised:
            compile_filter_policy(policy)
        key = next(iter(policy))
        assert raised.value.reason == f'"{key}" must be an object or an array'
        return
    matched = filter_policy_matches(policy, message_attributes=case["message_attributes"])
    assert matched is case["expected_match"]


@pytest.mark.parametrize("case", BODY_CASES, ids=_sns_ids(BODY_CASES))
def test_sns_body_scope_vectors(case: dict[str, Any]) -> None:
    policy = compile_filter_policy(case["filter_policy"], scope="MessageBody")
    assert policy.match(body=case["message_body"]) is case["expected_match"]
    assert policy.match(body=json.dumps(case["message_body"])) is case["expected_match"]


# --- SNS: validation messages recorded against AWS ----------------------------------------------

_SOURCE = re.compile(r'at \[Source: \(String\)"(.*)"; line: \d+, column: \d+\]$', re.DOTALL)
_REASON = re.compile(r"FilterPolicy: (.*?)(\n|$)", re.DOTALL)

# Recorded errors whose message does not echo the policy; the policies are those of the
# recording test (localstack tests/aws/services/sns/test_sns_filter_policy.py).
_POLICIES_WITHOUT_SOURCE: dict[str, tuple[dict[str, Any], str]] = {
    "error-condition-bad-cidr-str": ({"key": [{"cidr": "bad-filter"}]}, "MessageAttributes"),
    "error-condition-bad-cidr-str-slash": (
        {"key": [{"cidr": "bad-filter/64"}]},
        "MessageAttributes",
    ),
    "error-condition-bad-cidr-str-slash-2": (
        {"key": [{"cidr": "bad-/64filter"}]},
        "MessageAttributes",
    ),
    "error-condition-bad-cidr-v4": ({"key": [{"cidr": "xx.11.xx/8"}]}, "MessageAttributes"),
    "error-condition-bad-cidr-v6": (
        {"key": [{"cidr": "xxxx:db8:1234:1a00::/64"}]},
        "MessageAttributes",
    ),
    "error-complexity-in-one-condition": (
        {"key": [f"value{i}" for i in range(151)]},
        "MessageAttributes",
    ),
    "error-complexity-in-two-conditions": (
        {"key1": [f"value{i}" for i in range(100)], "key2": [f"value{i}" for i in range(51)]},
        "MessageAttributes",
    ),
    "error-complexity-too-many-fields": (
        {f"key{i}": [f"value{i}"] for i in range(1, 7)},
        "MessageAttributes",
    ),
    "error-complexity-or-flat": (
        {
            "source": ["aws.cloudwatch", "aws.events", "aws.test", "aws.test2"],
            "$or": [
                {"metricName": ["CPUUtilization", "ReadLatency", "t1", "t2", "t3", "t4"]},
                {
                    "metricType": ["MetricType", "TestType", "TestType2", "TestType3"],
                    "$or": [{"metricId": [1234, 4321, 5678, 9012]}, {"spaceId": [1, 2, 3, 4]}],
                },
            ],
        },
        "MessageAttributes",
    ),
    "error-complexity-or-nested": (
        {
            "$or": [
                {"metricName": ["CPUUtilization", "ReadLatency", "TestValue"]},
                {"namespace": ["AWS/EC2", "AWS/ES"]},
            ],
            "detail": {
                "scope": ["Service", "Test"],
                "$or": [
                    {"source": ["aws.cloudwatch"]},
                    {"type": ["CloudWatch Alarm State Change", "TestValue", "TestValue2"]},
                ],
            },
        },
        "MessageBody",
    ),
    "sub-filter-policy-nested-error-too-many-combinations": (
        {
            "key_a": {"key_b": {"key_c": ["value_one", "value_two", "value_three", "value_four"]}},
            "key_d": {"key_e": ["value_one", "value_two", "value_three"]},
            "key_f": ["value_one", "value_two", "value_three"],
        },
        "MessageBody",
    ),
    "sub-filter-policy-max-attr-keys": (
        {f"key_{c}": ["value"] for c in "abcdef"},
        "MessageBody",
    ),
    "sub-filter-policy-nested-error": (
        {"object": {"key": [{"prefix": "auto-"}]}},
        "MessageAttributes",
    ),
}


def _recorded_sns_errors() -> list[tuple[str, dict[str, Any], str, str]]:
    snapshot = _load(SNS_SNAPSHOT)
    cases = []
    for test in snapshot.values():
        for step, content in test["recorded-content"].items():
            if not isinstance(content, dict) or "Error" not in content:
                continue
            message = content["Error"]["Message"]
            if step == "sub-attrs-filter-scope-error":
                continue  # an invalid FilterPolicyScope, covered below
            source = _SOURCE.search(message)
            if source:
                policy, scope = json.loads(source.group(1)), "MessageBody"
            else:
                policy, scope = _POLICIES_WITHOUT_SOURCE[step]
            cases.append((step, policy, scope, message))
    return cases


RECORDED_SNS_ERRORS = _recorded_sns_errors()


def test_every_recorded_sns_error_is_covered() -> None:
    assert len(RECORDED_SNS_ERRORS) == 46


@pytest.mark.parametrize(
    ("step", "policy", "scope", "message"),
    RECORDED_SNS_ERRORS,
    ids=[f"{i}-{case[0]}" for i, case in enumerate(RECORDED_SNS_ERRORS)],
)
def test_sns_rejects_policies_with_the_message_aws_recorded(
    step: str, policy: dict[str, Any], scope: Any, message: str
) -> None:
    with pytest.raises(InvalidFilterPolicy) as raised:
        compile_filter_policy(policy, scope)
    reason = _REASON.search(message)
    if reason:
        assert raised.value.reason == reason.group(1)
    else:
        assert str(raised.value) == message


def test_sns_accepts_an_or_policy_at_exactly_150_combinations() -> None:
    policy = {
        "source": ["aws.cloudwatch", "aws.events", "aws.test"],
        "$or": [
            {"metricName": ["CPUUtilization", "ReadLatency", "A", "B", "C", "D"]},
            {
                "metricType": ["MetricType", "TestType", "TestType2", "TestType3"],
                "$or": [{"metricId": [1234, 4321, 5678, 9012]}, {"spaceId": [1, 2, 3, 4, 5, 6, 7]}],
            },
        ],
    }
    compile_filter_policy(policy)


def test_sns_rejects_an_unknown_scope_with_aws_wording() -> None:
    with pytest.raises(InvalidFilterPolicy) as raised:
        compile_filter_policy({"a": ["b"]}, "RandomValue")  # type: ignore[arg-type]
    assert str(raised.value) == (
        "Invalid parameter: FilterPolicyScope: Invalid value [RandomValue]. "
        "Please use either MessageBody or MessageAttributes"
    )
