""".dockerignore rules as Docker applies them (moby/patternmatcher and its ignorefile.ReadAll),
and Go's filepath.Match, which the classic builder uses for COPY/ADD wildcards.

Reading a .dockerignore (ReadAll): a UTF-8 BOM on the first line is dropped; a line starting
with "#" (before any trimming) is a comment; the rest is trimmed, a leading "!" (itself
trimmed after) marks an exception; the pattern is cleaned as Go's filepath.Clean does and a
leading "/" dropped, so "/a/../b/" means "b".

Matching (MatchesOrParentMatches): patterns are tried in order and the last one that applies
wins; a pattern applies to a path when it matches the path or one of its parent directories,
so "docs" excludes "docs/a/b" and "!docs/README.md" brings one file back. Each pattern is
compiled to one of four kinds, as patternmatcher does: exact text, a prefix ("dir/**"), a
suffix ("**/name", "**name") or a regular expression ("*" and "?" never cross "/", "**"
crosses any number of directories, "[...]" as Go, "\\" escapes the next character).

The context walker (TarWithOptions) does not descend into an excluded directory unless an
exception pattern lies below it (`could_reinclude`); `excluded(path, is_dir=True)` folds both.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

_BOM = "\ufeff"
_REGEX_SPECIAL = frozenset(".+()|{}$")


class PatternError(ValueError):
    """A pattern Go's filepath.Match refuses ("syntax error in pattern"), or a lone "!"."""


def clean(path: str) -> str:
    """Go's path/filepath.Clean on a slash-separated path ("" is ".", "/.." is "/")."""
    if not path:
        return "."
    rooted = path.startswith("/")
    out: list[str] = []
    for c in path.split("/"):
        if c in ("", "."):
            continue
        if c == "..":
            if out and out[-1] != "..":
                out.pop()
            elif not rooted:
                out.append("..")
            continue
        out.append(c)
    text = "/".join(out)
    if rooted:
        return "/" + text
    return text or "."


def read_patterns(text: str) -> list[str]:
    """The patterns of a .dockerignore file, as ignorefile.ReadAll returns them."""
    patterns: list[str] = []
    for i, line in enumerate(text.splitlines()):
        if i == 0 and line.startswith(_BOM):
            line = line[1:]
        if line.startswith("#"):
            continue
        pattern = line.strip()
        if not pattern:
            continue
        invert = pattern.startswith("!")
        if invert:
            pattern = pattern[1:].strip()
        if pattern:
            pattern = clean(pattern)
            if len(pattern) > 1 and pattern.startswith("/"):
                pattern = pattern[1:]
        patterns.append("!" + pattern if invert else pattern)
    return patterns


@dataclass(frozen=True)
class Pattern:
    """One compiled pattern: `kind` is "exact", "prefix", "suffix" or "regexp"."""

    text: str  # cleaned, without the "!"
    exclusion: bool
    kind: str
    regex: re.Pattern[str] | None

    def match(self, path: str) -> bool:
        if self.kind == "exact":
            return path == self.text
        if self.kind == "prefix":
            return path.startswith(self.text[:-2])
        if self.kind == "suffix":
            suffix = self.text[2:]
            if path.endswith(suffix):
                return True
            return suffix.startswith("/") and path == suffix[1:]
        assert self.regex is not None
        return self.regex.match(path) is not None


def compile_pattern(text: str, exclusion: bool) -> Pattern:
    """patternmatcher's Pattern.compile, character for character."""
    regex, kind, i, n = "^", "exact", 0, len(text)
    first = True
    while i < n:
        ch = text[i]
        i += 1
        if ch == "*":
            if i < n and text[i] == "*":
                i += 1
                if i < n and text[i] == "/":
                    i += 1  # "**/" is "**"
                if i >= n:
                    if kind == "exact":
                        kind = "prefix"
                    else:
                        regex += ".*"
                        kind = "regexp"
                else:
                    regex += "(.*/)?"
                    kind = "regexp"
                if first:
                    kind = "suffix"
            else:
                regex += "[^/]*"
                kind = "regexp"
        elif ch == "?":
            regex += "[^/]"
            kind = "regexp"
        elif ch in _REGEX_SPECIAL:
            regex += "\\" + ch
        elif ch == "\\":
            if i < n:
                regex += re.escape(text[i])
                i += 1
                kind = "regexp"
            else:
                regex += "\\\\"
        elif ch in "[]":
            regex += ch
            kind = "regexp"
        else:
            regex += ch  # "^" too, raw as Go passes it (an anchor, or a class's negation)
        first = False
    compiled = None
    if kind == "regexp":
        try:
            compiled = re.compile(regex + r"\Z")
        except re.error as e:
            raise PatternError(f"syntax error in pattern {text!r}: {e}") from None
    return Pattern(text, exclusion, kind, compiled)


class IgnoreMatcher:
    """Docker's PatternMatcher over a list of patterns (first to last, the last that
    applies wins). Paths are slash-separated and relative to the context root."""

    def __init__(self, patterns: Iterable[str]) -> None:
        self.texts = tuple(patterns)
        compiled: list[Pattern] = []
        for p in self.texts:
            p = p.strip()
            if not p:
                continue
            p = clean(p)
            exclusion = p.startswith("!")
            if exclusion:
                if len(p) == 1:
                    raise PatternError('illegal exclusion pattern: "!"')
                p = p[1:]
            filepath_match(p, ".")  # Go's syntax check, as patternmatcher.New does
            compiled.append(compile_pattern(p, exclusion))
        self.patterns = tuple(compiled)

    @classmethod
    def from_text(cls, text: str) -> IgnoreMatcher:
        """The matcher of a .dockerignore file's text."""
        return cls(read_patterns(text))

    def keeping(self, *paths: str) -> IgnoreMatcher:
        """This matcher with `paths` made exceptions when it excludes them: the CLI's
        TrimBuildFilesFromExcludes, which always sends the Dockerfile and .dockerignore."""
        extra = [f"!{clean(p)}" for p in paths if self.matches(p)]
        return IgnoreMatcher((*self.texts, *extra)) if extra else self

    @property
    def has_exceptions(self) -> bool:
        return any(p.exclusion for p in self.patterns)

    def matches(self, path: str) -> bool:
        """MatchesOrParentMatches: whether `path` (or a parent directory) is excluded."""
        path = clean(path)
        if path == ".":
            return False  # "Don't let them exclude everything"
        parents = path.split("/")[:-1]
        matched = False
        for pattern in self.patterns:
            if pattern.exclusion != matched:
                continue
            hit = pattern.match(path)
            if not hit:
                hit = any(pattern.match("/".join(parents[:i + 1]))
                          for i in range(len(parents)))
            if hit:
                matched = not pattern.exclusion
        return matched

    def could_reinclude(self, directory: str) -> bool:
        """Whether an exception pattern names something below `directory`: the walker must
        then look inside an excluded directory (TarWithOptions' test, a text prefix)."""
        prefix = clean(directory) + "/"
        return any(p.exclusion and (p.text + "/").startswith(prefix) for p in self.patterns)

    def excluded(self, path: str, is_dir: bool = False) -> bool:
        """Whether `path` is left out of the context. A directory counts as excluded only
        when nothing below it can be brought back by an exception; otherwise the walker
        must look inside and ask for each entry."""
        if not self.matches(path):
            return False
        return not (is_dir and self.could_reinclude(path))


# Go's path/filepath.Match, for the classic builder's COPY/ADD wildcards.

def has_wildcards(pattern: str) -> bool:
    """The classic builder's containsWildcards (on Linux "\\" counts too)."""
    return any(c in "*?[\\" for c in pattern)


def filepath_match(pattern: str, name: str) -> bool:
    """Go's filepath.Match: "*" and "?" never match "/"; PatternError for a bad pattern."""
    while pattern:
        star, chunk, pattern = _scan_chunk(pattern)
        if star and not chunk:
            return "/" not in name
        rest, ok = _match_chunk(chunk, name)
        if ok and (not rest or pattern):
            name = rest
            continue
        if star:
            found = False
            i = 0
            while i < len(name) and name[i] != "/":
                rest, ok = _match_chunk(chunk, name[i + 1:])
                if ok and not (not pattern and rest):
                    name, found = rest, True
                    break
                i += 1
            if found:
                continue
        while pattern:  # the rest of the pattern must still be valid
            _, chunk, pattern = _scan_chunk(pattern)
            _match_chunk(chunk, "")
        return False
    return not name


def _scan_chunk(pattern: str) -> tuple[bool, str, str]:
    star = False
    while pattern.startswith("*"):
        pattern, star = pattern[1:], True
    inrange, i = False, 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            if i + 1 < len(pattern):
                i += 1
        elif c == "[":
            inrange = True
        elif c == "]":
            inrange = False
        elif c == "*" and not inrange:
            break
        i += 1
    return star, pattern[:i], pattern[i:]


def _match_chunk(chunk: str, s: str) -> tuple[str, bool]:
    failed = False
    while chunk:
        if not failed and not s:
            failed = True
        c = chunk[0]
        if c == "[":
            r = ""
            if not failed:
                r, s = s[0], s[1:]
            chunk = chunk[1:]
            negated = chunk.startswith("^")
            if negated:
                chunk = chunk[1:]
            match, nrange = False, 0
            while True:
                if chunk.startswith("]") and nrange > 0:
                    chunk = chunk[1:]
                    break
                lo, chunk = _get_esc(chunk)
                hi = lo
                if chunk[0] == "-":
                    hi, chunk = _get_esc(chunk[1:])
                if not failed and lo <= r <= hi:
                    match = True
                nrange += 1
            if match == negated:
                failed = True
        elif c == "?":
            if not failed:
                if s[0] == "/":
                    failed = True
                s = s[1:]
            chunk = chunk[1:]
        else:
            if c == "\\":
                chunk = chunk[1:]
                if not chunk:
                    raise PatternError("syntax error in pattern")
            if not failed:
                if chunk[0] != s[0]:
                    failed = True
                s = s[1:]
            chunk = chunk[1:]
    return ("", False) if failed else (s, True)


def _get_esc(chunk: str) -> tuple[str, str]:
    if not chunk or chunk[0] in "-]":
        raise PatternError("syntax error in pattern")
    if chunk[0] == "\\":
        chunk = chunk[1:]
        if not chunk:
            raise PatternError("syntax error in pattern")
    r, rest = chunk[0], chunk[1:]
    if not rest:
        raise PatternError("syntax error in pattern")
    return r, rest
