"""Walk filters: the small part of containerd's filter syntax that content and leases need.

    filter     := clause ("," clause)*        every clause must hold (AND)
    clause     := fieldpath [op value]        no operator: the field is present
    fieldpath  := name ("." name)*            name: [A-Za-z0-9_/:-]+ or a "quoted string"
    op         := "==" | "!=" | "~="          "~=" is a regular expression search
    value      := "quoted string" | text up to the next ","

Several filter strings passed together match if any one matches (OR), as in containerd.
`labels.<key>` joins the rest of the path with dots, so both `labels."containerd.io/gc.root"`
and `labels.containerd.io/gc.root` name the label `containerd.io/gc.root`.

Examples: `labels.app==web`, `digest~=^sha256:ab`, `labels."containerd.io/gc.root"`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from dockyard.image.errors import InvalidArgument

Lookup = Callable[[tuple[str, ...]], "str | None"]

_NAME = re.compile(r"[A-Za-z0-9_/:\-]+")
_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"')
_BARE_VALUE = re.compile(r"[^,]*")
_OPERATORS = ("==", "!=", "~=")


@dataclass(frozen=True)
class Clause:
    fieldpath: tuple[str, ...]
    op: str | None = None
    value: str = ""
    pattern: re.Pattern[str] | None = None

    def holds(self, lookup: Lookup) -> bool:
        found = lookup(self.fieldpath)
        if self.op is None:
            return found is not None
        if self.op == "==":
            return found == self.value
        if self.op == "!=":
            return found != self.value
        return found is not None and self.pattern is not None and bool(
            self.pattern.search(found))


Filter = tuple[Clause, ...]


def parse(text: str) -> Filter:
    clauses: list[Clause] = []
    i = 0
    while True:
        path, i = _fieldpath(text, i)
        i = _skip_space(text, i)
        op = next((o for o in _OPERATORS if text.startswith(o, i)), None)
        if op is None:
            clauses.append(Clause(path))
        else:
            value, i = _value(text, i + 2)
            pattern = None
            if op == "~=":
                try:
                    pattern = re.compile(value)
                except re.error as e:
                    raise InvalidArgument(f"filter {text!r}: bad pattern {value!r}: {e}") from e
            clauses.append(Clause(path, op, value, pattern))
        i = _skip_space(text, i)
        if i == len(text):
            return tuple(clauses)
        if text[i] != ",":
            raise InvalidArgument(f"filter {text!r}: unexpected {text[i]!r} at offset {i}")
        i += 1


def parse_all(filters: Iterable[str]) -> list[Filter]:
    return [parse(f) for f in filters]


def match(filters: list[Filter], lookup: Lookup) -> bool:
    """No filters match everything; otherwise any filter whose clauses all hold."""
    if not filters:
        return True
    return any(all(c.holds(lookup) for c in f) for f in filters)


def label_lookup(labels: Mapping[str, str], rest: tuple[str, ...]) -> str | None:
    """`labels` alone is present when there are any; `labels.a.b` is the label `a.b`."""
    if not rest:
        return "" if labels else None
    return labels.get(".".join(rest))


def _fieldpath(text: str, i: int) -> tuple[tuple[str, ...], int]:
    parts: list[str] = []
    while True:
        i = _skip_space(text, i)
        if text.startswith('"', i):
            part, i = _quoted(text, i)
        else:
            m = _NAME.match(text, i)
            if not m:
                raise InvalidArgument(f"filter {text!r}: expected a field name at offset {i}")
            part, i = m.group(), m.end()
        parts.append(part)
        if not text.startswith(".", i):
            return tuple(parts), i
        i += 1


def _value(text: str, i: int) -> tuple[str, int]:
    i = _skip_space(text, i)
    if text.startswith('"', i):
        return _quoted(text, i)
    m = _BARE_VALUE.match(text, i)
    assert m is not None  # matches the empty string at worst
    return m.group().strip(), m.end()


def _quoted(text: str, i: int) -> tuple[str, int]:
    m = _QUOTED.match(text, i)
    if not m:
        raise InvalidArgument(f"filter {text!r}: unterminated quoted string at offset {i}")
    return re.sub(r"\\(.)", r"\1", m.group(1)), m.end()


def _skip_space(text: str, i: int) -> int:
    while i < len(text) and text[i].isspace():
        i += 1
    return i
