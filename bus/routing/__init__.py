"""Routing: EventBridge event patterns and SNS filter policies, evaluated by AWS's rules.

Every transport that filters in process uses these matchers, so in-memory routing equals AWS.
"""

from bus.routing.errors import InvalidEventPattern, InvalidFilterPolicy, InvalidRoutingRule
from bus.routing.filter_policy import (
    FilterPolicy,
    FilterPolicyScope,
    compile_filter_policy,
    filter_policy_matches,
    validate_filter_policy,
)
from bus.routing.patterns import (
    EventPattern,
    compile_event_pattern,
    event_pattern_matches,
    validate_event_pattern,
)

__all__ = [
    "EventPattern",
    "FilterPolicy",
    "FilterPolicyScope",
    "InvalidEventPattern",
    "InvalidFilterPolicy",
    "InvalidRoutingRule",
    "compile_event_pattern",
    "compile_filter_policy",
    "event_pattern_matches",
    "filter_policy_matches",
    "validate_event_pattern",
    "validate_filter_policy",
]
