"""Instruction flags (``--from=x``, ``--link``, repeated ``--mount``) and the small value
grammars they use, as BuildKit's ``instructions/bflag.go`` and Go's ``time.ParseDuration``
read them — so a typo gets BuildKit's message, with its "did you mean" hint."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field


class FlagError(ValueError):
    """A flag BuildKit would reject; the message is BuildKit's."""


@dataclass
class ParsedFlags:
    """Values by flag name: bools are bools, strings ``str | None`` (None: not given),
    repeatable flags lists; ``used`` says which were written."""

    values: dict[str, object] = field(default_factory=dict)
    used: set[str] = field(default_factory=set)

    def string(self, name: str, default: str = "") -> str:
        value = self.values.get(name)
        return default if value is None else str(value)

    def boolean(self, name: str) -> bool:
        return bool(self.values.get(name))

    def strings(self, name: str) -> tuple[str, ...]:
        value = self.values.get(name) or []
        return tuple(value)  # type: ignore[arg-type]


def parse_flags(args: Iterable[str], spec: Mapping[str, str]) -> ParsedFlags:
    """Parse ``args`` against ``spec`` (name -> ``"bool"``, ``"string"`` or ``"strings"``)."""
    out = ParsedFlags({name: ([] if kind == "strings" else None) for name, kind in spec.items()})
    for kind_name, kind in spec.items():
        if kind == "bool":
            out.values[kind_name] = False
    for arg in args:
        if arg == "--":
            break
        if not arg.startswith("--"):
            raise FlagError(f"arg should start with -- : {arg}")
        flag_name, has_value, value = arg.partition("=")
        name = flag_name[2:]
        kind = spec.get(name)
        if kind is None:
            raise FlagError(suggest(f"unknown flag: {flag_name}", name, spec, True))
        if name in out.used and kind != "strings":
            raise FlagError(f"duplicate flag specified: {flag_name}")
        out.used.add(name)
        if kind == "bool":
            if has_value and value == "":
                raise FlagError(f"missing a value on flag: {flag_name}")
            if value.lower() not in ("", "true", "false"):
                raise FlagError(f"expecting boolean value for flag {flag_name}, not: {value}")
            out.values[name] = value.lower() != "false"
        elif not has_value:
            raise FlagError(f"missing a value on flag: {flag_name}")
        elif kind == "strings":
            out.values[name].append(value)  # type: ignore[union-attr]
        else:
            out.values[name] = value
    return out


def _levenshtein(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def suggest(message: str, value: str, options: Iterable[str], case_sensitive: bool) -> str:
    """BuildKit's util/suggest: append `` (did you mean X?)`` when one option is within a
    couple of edits of ``value`` (and is not ``value`` itself)."""
    probe = value if case_sensitive else value.lower()
    best, best_dist = "", -1
    for option in sorted(options):
        candidate = option if case_sensitive else option.lower()
        dist = _levenshtein(probe, candidate)
        if best_dist < 0 or dist < best_dist:
            best, best_dist = option, dist
    allowed = 2 if len(probe) > 3 else 1
    if best and 0 < best_dist <= allowed:
        return f"{message} (did you mean {best}?)"
    return message


_DURATION_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": 1_000_000,
                   "s": 1_000_000_000, "m": 60_000_000_000, "h": 3_600_000_000_000}
_DURATION_PART = re.compile(r"(\d*\.?\d*)([^\d.]*)")


def go_duration(text: str) -> int:
    """Go's ``time.ParseDuration`` in nanoseconds (``1m30s``, ``1.5h``, ``300ms``, ``0``)."""
    quoted = '"' + text + '"'
    rest, sign = text, 1
    if rest[:1] in ("+", "-"):
        sign, rest = (-1 if rest[0] == "-" else 1), rest[1:]
    if rest == "0":
        return 0
    if not rest:
        raise ValueError(f"time: invalid duration {quoted}")
    total = 0.0
    while rest:
        m = _DURATION_PART.match(rest)
        number, unit = (m.group(1), m.group(2)) if m else ("", "")
        if number in ("", ".") or number.count(".") > 1:
            raise ValueError(f"time: invalid duration {quoted}")
        if not unit:
            raise ValueError(f"time: missing unit in duration {quoted}")
        if unit not in _DURATION_UNITS:
            raise ValueError(f'time: unknown unit "{unit}" in duration {quoted}')
        total += float(number) * _DURATION_UNITS[unit]
        rest = rest[m.end():] if m else ""
    return sign * round(total)
