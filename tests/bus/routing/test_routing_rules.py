"""Specific AWS rules the vector files do not pin down on their own."""

from __future__ import annotations

import pytest

from bus.routing import (
    InvalidEventPattern,
    InvalidFilterPolicy,
    compile_event_pattern,
    compile_filter_policy,
    event_pattern_matches,
    filter_policy_matches,
)


def test_numbers_match_by_value_not_by_spelling() -> None:
    assert event_pattern_matches({"n": [300]}, {"n": 300.0})
    assert event_pattern_matches({"n": [3.0e2]}, {"n": 300})
    assert not event_pattern_matches({"n": [300]}, {"n": "300"})
    assert not event_pattern_matches({"n": ["300"]}, {"n": 300})


def test_booleans_are_not_numbers() -> None:
    assert not event_pattern_matches({"n": [1]}, {"n": True})
    assert not event_pattern_matches({"n": [True]}, {"n": 1})
    assert not event_pattern_matches({"n": [{"numeric": [">", 0]}]}, {"n": True})


def test_objects_are_not_leaf_values_so_exists_false_holds_on_them() -> None:
    # event-ruler: "Exists match only works on the leaf nodes."
    assert event_pattern_matches({"c": [{"exists": False}]}, {"c": {"c1": 100}})
    assert not event_pattern_matches({"c": [{"exists": True}]}, {"c": {"c1": 100}})


def test_an_empty_array_is_an_absent_field() -> None:
    assert event_pattern_matches({"r": [{"exists": False}]}, {"r": []})
    assert not event_pattern_matches({"r": [{"exists": True}]}, {"r": []})


def test_fields_under_an_array_of_objects_match_within_one_element() -> None:
    pattern = compile_event_pattern({"people": {"first": ["Anna"], "last": ["Smith"]}})
    assert pattern.match(
        {"people": [{"first": "John", "last": "Doe"}, {"first": "Anna", "last": "Smith"}]}
    )
    assert not pattern.match(
        {"people": [{"first": "Anna", "last": "Doe"}, {"first": "Peter", "last": "Smith"}]}
    )


def test_dotted_keys_in_event_and_pattern_name_the_same_field() -> None:
    nested = {"detail": {"state": {"status": "running"}}}
    dotted = {"detail": {"state.status": "running"}}
    for pattern in (
        {"detail": {"state": {"status": ["running"]}}},
        {"detail.state.status": ["running"]},
    ):
        assert event_pattern_matches(pattern, nested)
        assert event_pattern_matches(pattern, dotted)


def test_cidr_matches_ipv4_and_ipv6_and_only_ip_strings() -> None:
    v4 = compile_event_pattern({"ip": [{"cidr": "10.0.0.0/24"}]})
    assert v4.match({"ip": "10.0.0.255"})
    assert not v4.match({"ip": "10.0.1.0"})
    assert not v4.match({"ip": "not-an-ip"})
    v6 = compile_event_pattern({"ip": [{"cidr": "2001:db8::/32"}]})
    assert v6.match({"ip": "2001:db8:ffff::1"})
    assert not v6.match({"ip": "2001:db9::1"})


def test_an_exact_ip_matches_any_spelling_of_that_address() -> None:
    assert event_pattern_matches({"ip": ["2001:db8::1"]}, {"ip": "2001:0db8:0:0:0:0:0:1"})


def test_ignore_case_operators() -> None:
    assert event_pattern_matches({"s": [{"equals-ignore-case": "AbC"}]}, {"s": "aBc"})
    assert event_pattern_matches(
        {"s": [{"prefix": {"equals-ignore-case": "EVENTB"}}]}, {"s": "eventbridge"}
    )
    assert event_pattern_matches(
        {"s": [{"suffix": {"equals-ignore-case": ".PNG"}}]}, {"s": "a.png"}
    )
    assert not event_pattern_matches(
        {"s": [{"anything-but": {"equals-ignore-case": "X"}}]}, {"s": "x"}
    )


def test_wildcard_escapes_and_limits() -> None:
    assert event_pattern_matches({"s": [{"wildcard": "a\\*b*"}]}, {"s": "a*bc"})
    assert not event_pattern_matches({"s": [{"wildcard": "a\\*b*"}]}, {"s": "axbc"})
    with pytest.raises(InvalidEventPattern, match="Consecutive wildcard characters at pos 2"):
        compile_event_pattern({"s": [{"wildcard": "a**"}]})


def test_numeric_ranges_validate_like_aws() -> None:
    assert event_pattern_matches({"n": [{"numeric": [">=", 1, "<", 2]}]}, {"n": 1})
    assert not event_pattern_matches({"n": [{"numeric": [">=", 1, "<", 2]}]}, {"n": 2})
    with pytest.raises(InvalidEventPattern, match="Bottom must be less than top"):
        compile_event_pattern({"n": [{"numeric": [">", 3, "<", 1]}]})


def test_or_needs_two_alternatives_and_reserved_words_stay_outside_it() -> None:
    with pytest.raises(InvalidEventPattern, match="at least 2 Objects"):
        compile_event_pattern({"$or": [{"a": ["b"]}]})
    with pytest.raises(InvalidEventPattern, match="prefix is Ruler reserved fieldName"):
        compile_event_pattern({"$or": [{"a": {"prefix": ["b"]}}, {"c": ["d"]}]})


def test_or_combinations_are_bounded() -> None:
    branches = [{f"k{i}": ["v"]} for i in range(40)]
    with pytest.raises(InvalidEventPattern, match="too complex"):
        compile_event_pattern({"a": {"$or": branches}, "b": {"$or": branches}})


def test_sns_attributes_are_read_in_every_wire_form() -> None:
    policy = compile_filter_policy({"color": ["red"], "size": [{"numeric": [">", 2]}]})
    publish_form = {
        "color": {"Type": "String", "Value": "red"},
        "size": {"Type": "Number", "Value": "3"},
    }
    sqs_form = {
        "color": {"DataType": "String", "StringValue": "red"},
        "size": {"DataType": "Number", "StringValue": "3"},
    }
    lambda_form = {
        "color": {"dataType": "String", "stringValue": "red"},
        "size": {"dataType": "Number", "stringValue": "3e0"},
    }
    for attributes in (publish_form, sqs_form, lambda_form):
        assert policy.match(message_attributes=attributes)


def test_sns_ignores_binary_attributes_and_splits_string_arrays() -> None:
    assert not filter_policy_matches(
        {"b": [{"exists": True}]}, message_attributes={"b": {"Type": "Binary", "Value": "AAE="}}
    )
    assert filter_policy_matches(
        {"tags": [{"prefix": "ru"}]},
        message_attributes={"tags": {"Type": "String.Array", "Value": '["soccer", "rugby"]'}},
    )
    assert filter_policy_matches(
        {"price": [{"anything-but": [100, 500]}]},
        message_attributes={"price": {"Type": "Number.Array", "Value": "[100, 50]"}},
    )


def test_sns_has_no_wildcard_and_no_anything_but_suffix() -> None:
    with pytest.raises(InvalidFilterPolicy, match="Unrecognized match type wildcard"):
        compile_filter_policy({"a": [{"wildcard": "*"}]})
    with pytest.raises(InvalidFilterPolicy, match="Unsupported anything-but pattern: suffix"):
        compile_filter_policy({"a": [{"anything-but": {"suffix": "x"}}]})


def test_sns_body_scope_needs_a_json_object_body() -> None:
    policy = compile_filter_policy({"a": ["b"]}, scope="MessageBody")
    assert policy.match(body='{"a": "b"}')
    assert not policy.match(body="plain text")
    assert not policy.match(body="[1, 2]")


def test_an_empty_sns_policy_accepts_every_message() -> None:
    assert compile_filter_policy({}).match(message_attributes={})
    assert compile_filter_policy({}, scope="MessageBody").match(body="plain text")
