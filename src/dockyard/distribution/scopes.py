"""Token scopes as the Docker token specification writes them.

    scope    = type [ "(" class ")" ] ":" name ":" actions
    actions  = action *( "," action )

    repository:library/busybox:pull
    repository:user/app:pull,push
    repository(plugin):vieux/sshfs:pull
    registry:catalog:*

The name may itself hold a ":" (a resource of another type could), so the type ends at the
first ":" and the actions start after the last. Actions come out in a stable order (pull,
push, delete, then the rest sorted) so that equal scopes are equal strings: token caches key
on them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from dockyard.distribution.errors import ChallengeError

_ORDER = {"pull": 0, "push": 1, "delete": 2}
_TYPE = re.compile(r"^(?P<type>[a-z0-9]+)(?:\((?P<class>[a-zA-Z0-9]+)\))?$")
_ACTION = re.compile(r"^(?:\*|[a-z]+)$")


def _ordered(actions: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted(set(actions), key=lambda a: (_ORDER.get(a, len(_ORDER)), a)))


@dataclass(frozen=True)
class Scope:
    type: str
    name: str
    actions: tuple[str, ...]
    resource_class: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "actions", _ordered(self.actions))

    @property
    def key(self) -> tuple[str, str | None, str]:
        """What two scopes share when their actions may be merged."""
        return (self.type, self.resource_class, self.name)

    def __str__(self) -> str:
        kind = f"{self.type}({self.resource_class})" if self.resource_class else self.type
        return f"{kind}:{self.name}:{','.join(self.actions)}"


def repository(name: str, *actions: str, resource_class: str | None = None) -> Scope:
    """`repository:<name>:<actions>`; pull when no action is given."""
    return Scope("repository", name, actions or ("pull",), resource_class)


def catalog() -> Scope:
    """`registry:catalog:*`, for listing the registry's repositories."""
    return Scope("registry", "catalog", ("*",))


def parse(text: str) -> Scope:
    kind, sep, rest = text.partition(":")
    name, sep2, actions = rest.rpartition(":")
    m = _TYPE.match(kind)
    if not sep or not sep2 or not m or not name or not actions:
        raise ChallengeError(f"invalid scope {text!r}: want type:name:actions")
    parts = actions.split(",")
    if not all(_ACTION.match(part) for part in parts):
        raise ChallengeError(f"invalid scope {text!r}: bad action list {actions!r}")
    return Scope(m.group("type"), name, tuple(parts), m.group("class"))


def parse_all(text: str) -> list[Scope]:
    """A challenge's `scope` parameter: several scopes separated by spaces."""
    return [parse(part) for part in text.split()]


def merge(scopes: Iterable[Scope | str]) -> list[Scope]:
    """One scope per resource with the union of its actions, sorted by their text."""
    merged: dict[tuple[str, str | None, str], set[str]] = {}
    for scope in scopes:
        if isinstance(scope, str):
            scope = parse(scope)
        merged.setdefault(scope.key, set()).update(scope.actions)
    out = [Scope(kind, name, tuple(actions), cls) for (kind, cls, name), actions
           in merged.items()]
    return sorted(out, key=str)
