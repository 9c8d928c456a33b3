"""The field tree that event patterns and filter policies compile to, and how it matches.

Both languages share AWS's JSON semantics: keys join with dots (`{"a": {"b": ...}}` and
`{"a.b": ...}` name the same field, in patterns and events alike), fields AND together, `$or`
forks alternatives, and matching is array-consistent: fields under an array of objects must
all match within one element.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Final

from bus.routing.errors import NestingNotAllowed, PatternError
from bus.routing.operators import MISSING, RESERVED_KEYWORDS, Dialect, Leaf, compile_leaf

OR_KEYWORD: Final = "$or"
_EMPTY: Final[Mapping[str, Any]] = {}


class Node:
    """One object level of a compiled pattern: leaves, nested objects and `$or` groups."""

    __slots__ = ("alternatives", "children", "joined_keys", "leaves")

    def __init__(
        self,
        leaves: tuple[tuple[str, Leaf], ...],
        children: tuple[tuple[str, Node], ...],
        alternatives: tuple[tuple[Node, ...], ...],
    ) -> None:
        self.leaves = leaves
        self.children = children
        self.alternatives = alternatives
        self.joined_keys = frozenset(_joined_keys(self))

    def match(self, obj: Mapping[str, Any]) -> bool:
        """Whether the JSON object `obj` satisfies every field and one branch of each `$or`."""
        if self.joined_keys and not obj.keys().isdisjoint(self.joined_keys):
            obj = expand_dotted_keys(obj)
        get = obj.get
        for key, leaf in self.leaves:
            if not leaf.match(get(key, MISSING)):
                return False
        for key, child in self.children:
            if not child.match_value(get(key, MISSING)):
                return False
        for group in self.alternatives:
            for alternative in group:
                if alternative.match(obj):
                    break
            else:
                return False
        return True

    def match_value(self, value: Any) -> bool:
        """Match an event value where this object is expected.

        An array matches if one of its objects matches (array consistency); an array without
        objects, a scalar, or a missing field is an object with no fields, so only
        `exists: false` conditions can hold under it.
        """
        kind = type(value)
        if kind is dict:
            return self.match(value)
        if kind is list or kind is tuple:
            saw_object = False
            for item in _objects_in(value):
                saw_object = True
                if self.match(item):
                    return True
            if saw_object:
                return False
        return self.match(_EMPTY)

    def paths(self) -> Iterator[tuple[str, ...]]:
        """Every field path below this node, alternatives included."""
        for key, _ in self.leaves:
            yield (key,)
        for key, child in self.children:
            yield (key,)
            for path in child.paths():
                yield (key, *path)
        for group in self.alternatives:
            for alternative in group:
                yield from alternative.paths()

    def branch_count(self) -> int:
        """How many plain AND rules this node expands to once every `$or` is forked."""
        count = 1
        for _, child in self.children:
            count *= child.branch_count()
        for group in self.alternatives:
            count *= sum(alternative.branch_count() for alternative in group)
        return count


def _joined_keys(node: Node) -> Iterator[str]:
    for path in node.paths():
        for end in range(2, len(path) + 1):
            yield ".".join(path[:end])


def _objects_in(values: Any) -> Iterator[Mapping[str, Any]]:
    """The objects inside a (possibly nested) array, in order; iterative, as arrays from the
    wire may nest deeper than Python's recursion limit."""
    stack = [iter(values)]
    while stack:
        for item in stack[-1]:
            kind = type(item)
            if kind is dict:
                yield item
            elif kind is list or kind is tuple:
                stack.append(iter(item))
                break
        else:
            stack.pop()


def expand_dotted_keys(obj: Mapping[str, Any]) -> dict[str, Any]:
    """Nest `{"a.b": v}` as `{"a": {"b": v}}`, merging with a sibling `"a"` if there is one."""
    expanded: dict[str, Any] = {}
    for key, value in obj.items():
        if "." in key:
            head, _, rest = key.partition(".")
            key, value = head, {rest: value}
        expanded[key] = _merge(expanded[key], value) if key in expanded else value
    return expanded


def _merge(first: Any, second: Any) -> Any:
    """Two values of one key: objects merged key by key (iteratively, however deep both
    nest), anything else paired in an array."""
    if not (type(first) is dict and type(second) is dict):
        return [first, second]
    root: dict[str, Any] = {}
    pending = [(root, first, second)]
    while pending:
        merged, left, right = pending.pop()
        merged.update(left)
        for key, value in right.items():
            if key not in merged:
                merged[key] = value
            elif type(merged[key]) is dict and type(value) is dict:
                inner: dict[str, Any] = {}
                pending.append((inner, merged[key], value))
                merged[key] = inner
            else:
                merged[key] = [merged[key], value]
    return root


# --- compiling ------------------------------------------------------------------------------


class _Draft:
    """A node under construction: later keys win, as in AWS's compiler."""

    def __init__(self) -> None:
        self.leaves: dict[str, Leaf] = {}
        self.children: dict[str, _Draft] = {}
        self.alternatives: list[list[_Draft]] = []

    def at(self, path: list[str]) -> _Draft:
        draft = self
        for segment in path:
            draft = draft.children.setdefault(segment, _Draft())
        return draft

    def freeze(self) -> Node:
        return Node(
            tuple(self.leaves.items()),
            tuple((key, child.freeze()) for key, child in self.children.items()),
            tuple(tuple(alt.freeze() for alt in group) for group in self.alternatives),
        )


def compile_tree(pattern: Any, dialect: Dialect, *, nesting: bool = True) -> Node:
    """Compile a pattern object, raising PatternError with AWS's wording."""
    if not isinstance(pattern, dict):
        raise PatternError("Filter is not an object")
    root = _Draft()
    _compile_object(pattern, root, [], dialect, nesting=nesting, inside_or=False)
    return root.freeze()


def is_or_relationship(value: Any) -> bool:
    """AWS reads `$or` as OR only for an array of objects that use no reserved keyword."""
    if not isinstance(value, list) or not any(isinstance(item, dict) for item in value):
        return False
    return all(not isinstance(item, dict) or RESERVED_KEYWORDS.isdisjoint(item) for item in value)


def _compile_object(
    obj: dict[str, Any],
    root: _Draft,
    prefix: list[str],
    dialect: Dialect,
    *,
    nesting: bool,
    inside_or: bool,
) -> None:
    if not obj:
        raise PatternError("Empty objects are not allowed")
    for key, value in obj.items():
        if key == OR_KEYWORD and is_or_relationship(value):
            _compile_or(value, root.at(prefix), dialect, nesting=nesting)
            continue
        if inside_or and key in RESERVED_KEYWORDS:
            raise PatternError(
                f"{key} is Ruler reserved fieldName which cannot be used inside {OR_KEYWORD}."
            )
        path = [*prefix, *key.split(".")]
        if isinstance(value, dict):
            # AWS reports what is wrong inside the object before refusing the nesting itself.
            _compile_object(value, root, path, dialect, nesting=nesting, inside_or=inside_or)
            if not nesting:
                raise NestingNotAllowed()
        else:
            root.at(path[:-1]).leaves[path[-1]] = compile_leaf(value, key, dialect)


def _compile_or(alternatives: list[Any], owner: _Draft, dialect: Dialect, *, nesting: bool) -> None:
    group: list[_Draft] = []
    for alternative in alternatives:
        if not isinstance(alternative, dict):
            raise PatternError(
                f"Only JSON object is allowed in array of {OR_KEYWORD} relationship."
            )
        draft = _Draft()
        _compile_object(alternative, draft, [], dialect, nesting=nesting, inside_or=True)
        group.append(draft)
    if len(group) < 2:
        raise PatternError(f"There must have at least 2 Objects in {OR_KEYWORD} relationship.")
    owner.alternatives.append(group)
