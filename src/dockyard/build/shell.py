"""Dockerfile shell-word processing: quote removal and ``$VAR`` expansion as BuildKit's
``frontend/dockerfile/shell/lex.go`` does it, so a word means the same thing here as under
``docker build``.

Two entry points, as BuildKit has:

- ``process_word`` — one word in, one string out (quotes removed, spaces kept). Used for
  every instruction that expands variables (ENV, LABEL, ARG, COPY/ADD, WORKDIR, USER,
  VOLUME, STOPSIGNAL, FROM with the global args, RUN --mount values).
- ``process_words`` — expansion then word splitting on unquoted whitespace that came from
  the text *or* from an expanded variable. Only EXPOSE uses it (``EXPOSE $PORTS``).

Supported forms: ``$NAME``, ``${NAME}``, ``${NAME:-word}``, ``${NAME-word}``,
``${NAME:+word}``, ``${NAME+word}``, ``${NAME:?msg}``, ``${NAME?msg}``, ``${NAME#pat}``,
``${NAME##pat}``, ``${NAME%pat}``, ``${NAME%%pat}``, ``${NAME/pat/repl}``,
``${NAME//pat/repl}``. Errors carry BuildKit's wording, wrapped as
``failed to process "<word>": <reason>``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

_SPECIAL_PARAMS = frozenset("@*#?-$!0")


class ShellError(ValueError):
    """A word could not be processed (bad substitution, unmatched quote, ``${X:?}``)."""


@dataclass
class WordResult:
    """What ``Lexer.process`` found: the joined result, the split words, and which variable
    names were looked up and found (``matched``) or not (``unmatched``) — BuildKit uses the
    latter for its unused-argument warnings."""

    result: str
    words: list[str]
    matched: set[str] = field(default_factory=set)
    unmatched: set[str] = field(default_factory=set)


class _Words:
    """Word splitting as lex.go's wordsStruct: unquoted whitespace ends a word, quoted text
    and escaped characters never do."""

    def __init__(self) -> None:
        self.word = ""
        self.words: list[str] = []
        self.in_word = False

    def add_char(self, ch: str) -> None:
        if ch.isspace():
            if self.in_word and self.word:
                self.words.append(self.word)
                self.word = ""
                self.in_word = False
        else:
            self.add_raw(ch)

    def add_raw(self, text: str) -> None:
        self.word += text
        self.in_word = True

    def add_string(self, text: str) -> None:
        for ch in text:
            self.add_char(ch)

    def result(self) -> list[str]:
        if self.word:
            self.words.append(self.word)
            self.word = ""
            self.in_word = False
        return self.words


class Lexer:
    """One configured lexer (escape token plus BuildKit's Raw*/Skip* switches); cheap to
    build. The switches exist because heredoc detection and build-step names need the
    variants BuildKit uses internally."""

    def __init__(
        self,
        escape: str = "\\",
        *,
        raw_quotes: bool = False,
        raw_escapes: bool = False,
        skip_process_quotes: bool = False,
        skip_unset_env: bool = False,
    ) -> None:
        self.escape = escape
        self.raw_quotes = raw_quotes
        self.raw_escapes = raw_escapes
        self.skip_process_quotes = skip_process_quotes
        self.skip_unset_env = skip_unset_env

    def process(self, word: str, env: Mapping[str, str]) -> WordResult:
        state = _Scan(self, word, env)
        try:
            result, words = state.stop_on(None, self.raw_escapes)
        except ShellError as e:
            raise ShellError(f"failed to process {_go_quote(word)}: {e}") from None
        return WordResult(result, words, state.matched, state.unmatched)


class _Scan:
    """The scanning state of one ``Lexer.process`` call (lex.go's shellWord)."""

    def __init__(self, lex: Lexer, word: str, env: Mapping[str, str]) -> None:
        self.lex = lex
        self.src = word
        self.pos = 0
        self.env = env
        self.raw_escapes = lex.raw_escapes
        self.matched: set[str] = set()
        self.unmatched: set[str] = set()

    def peek(self) -> str | None:
        return self.src[self.pos] if self.pos < len(self.src) else None

    def next(self) -> str | None:
        ch = self.peek()
        if ch is not None:
            self.pos += 1
        return ch

    def stop_on(self, stop: str | None, raw_escapes: bool) -> tuple[str, list[str]]:
        saved, self.raw_escapes = self.raw_escapes, raw_escapes
        try:
            return self._stop_on(stop)
        finally:
            self.raw_escapes = saved

    def _stop_on(self, stop: str | None) -> tuple[str, list[str]]:
        out: list[str] = []
        words = _Words()
        quotes = not self.lex.skip_process_quotes
        while (ch := self.peek()) is not None:
            if stop is not None and ch == stop:
                self.next()
                return "".join(out), words.result()
            if ch == "$":
                text = self.dollar()
                out.append(text)
                words.add_string(text)
            elif quotes and ch in "'\"":
                text = self.single_quote() if ch == "'" else self.double_quote()
                out.append(text)
                words.add_raw(text)
            else:
                self.next()
                if ch == self.lex.escape:
                    if self.raw_escapes:
                        words.add_raw(ch)
                        out.append(ch)
                    nxt = self.next()
                    if nxt is None:
                        break
                    ch = nxt
                    words.add_raw(ch)
                else:
                    words.add_char(ch)
                out.append(ch)
        if stop is not None:
            raise ShellError(f"unexpected end of statement while looking for matching {stop}")
        return "".join(out), words.result()

    def single_quote(self) -> str:
        first = self.next()
        out = [first or ""] if self.lex.raw_quotes else []
        while True:
            ch = self.next()
            if ch is None:
                raise ShellError(
                    "unexpected end of statement while looking for matching single-quote"
                )
            if ch == "'":
                if self.lex.raw_quotes:
                    out.append(ch)
                return "".join(out)
            out.append(ch)

    def double_quote(self) -> str:
        first = self.next()
        out = [first or ""] if self.lex.raw_quotes else []
        while True:
            ch = self.peek()
            if ch is None:
                raise ShellError(
                    "unexpected end of statement while looking for matching double-quote"
                )
            if ch == '"':
                self.next()
                if self.lex.raw_quotes:
                    out.append(ch)
                return "".join(out)
            if ch == "$":
                out.append(self.dollar())
                continue
            self.next()
            if ch == self.lex.escape:
                if self.raw_escapes:
                    out.append(ch)
                nxt = self.peek()
                if nxt is None:
                    continue
                if nxt in ('"', "$", self.lex.escape):
                    ch = self.next() or ""
            out.append(ch)

    def get_env(self, name: str) -> tuple[str, bool]:
        if name in self.env:
            self.matched.add(name)
            return self.env[name], True
        self.unmatched.add(name)
        return "", False

    def name(self) -> str:
        out = ""
        while (ch := self.peek()) is not None:
            if not out and ch.isdigit():
                while (d := self.peek()) is not None and d.isdigit():
                    out += d
                    self.next()
                return out
            if not out and ch in _SPECIAL_PARAMS:
                self.next()
                return ch
            if not (ch.isalpha() or ch.isdigit() or ch == "_"):
                break
            out += ch
            self.next()
        return out

    def dollar(self) -> str:
        self.next()
        if self.peek() != "{":
            name = self.name()
            if not name:
                return "$"
            value, found = self.get_env(name)
            if not found and self.lex.skip_unset_env:
                return "$" + name
            return value
        self.next()
        ch = self.peek()
        if ch is None:
            raise ShellError("syntax error: missing '}'")
        if ch in "{}:":
            raise ShellError("syntax error: bad substitution")
        name = self.name()
        ch = self.next()
        if ch is None:
            raise ShellError("syntax error: missing '}'")
        if ch == "}":
            value, found = self.get_env(name)
            if not found and self.lex.skip_unset_env:
                return "${" + name + "}"
            return value
        if ch in (":", "+", "-", "?", "#", "%"):
            return self._modifier(name, ch)
        if ch == "/":
            return self._replace(name)
        raise ShellError(f"unsupported modifier ({ch}) in substitution")

    def _modifier(self, name: str, ch: str) -> str:
        chs = ch
        null_is_unset = False
        if ch == ":":
            null_is_unset = True
            ch = self.next() or ""
            chs += ch
        try:
            word, _ = self.stop_on("}", ch in ("#", "%"))
        except ShellError:
            if self.peek() is None:
                raise ShellError("syntax error: missing '}'") from None
            raise
        value, found = self.get_env(name)
        if self.lex.skip_unset_env and not found:
            return "${" + name + chs + word + "}"
        empty = not found or (null_is_unset and value == "")
        if ch == "-":
            return word if empty else value
        if ch == "+":
            return "" if empty else word
        if ch == "?":
            if not found:
                raise ShellError(f"{name}: {word or 'is not allowed to be unset'}")
            if null_is_unset and value == "":
                raise ShellError(f"{name}: {word or 'is not allowed to be empty'}")
            return value
        if ch in ("#", "%"):
            greedy = word.startswith(ch)
            if greedy:
                word = word[1:]
            if ch == "%":
                return _trim_suffix(word, value, greedy)
            return _trim_prefix(word, value, greedy)
        raise ShellError(f"unsupported modifier ({chs}) in substitution")

    def _replace(self, name: str) -> str:
        replace_all = self.peek() == "/"
        if replace_all:
            self.next()
        try:
            pattern, _ = self.stop_on("/", True)
        except ShellError:
            if self.peek() is None:
                raise ShellError("syntax error: missing '/' in ${}") from None
            raise
        try:
            replacement, _ = self.stop_on("}", True)
        except ShellError:
            if self.peek() is None:
                raise ShellError("syntax error: missing '}'") from None
            raise
        value, found = self.get_env(name)
        if self.lex.skip_unset_env and not found:
            return "${" + name + "/" + pattern + "/" + replacement + "}"
        regex = _pattern_regex(pattern, greedy=True, anchored=False)
        if replace_all:
            return regex.sub(lambda _m: replacement, value)
        return regex.sub(lambda _m: replacement, value, count=1)


def _pattern_regex(pattern: str, *, greedy: bool, anchored: bool) -> re.Pattern[str]:
    """A shell wildcard (``*``, ``?``, backslash escapes; no brackets) as a regex."""
    out = ["^"] if anchored else []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        i += 1
        if ch == "*":
            out.append(".*" if greedy else ".*?")
        elif ch == "?":
            out.append(".")
        elif ch == "\\":
            nxt = pattern[i] if i < len(pattern) else ""
            if nxt in ("}", "/"):
                continue
            i += 1
            if nxt not in ("*", "?", "\\"):
                raise ShellError(f"invalid pattern ({pattern}) in substitution: "
                                 f"invalid escape '\\{nxt}'")
            out.append(re.escape(nxt))
        else:
            out.append(re.escape(ch))
    return re.compile("".join(out), re.DOTALL)


def _trim_prefix(pattern: str, value: str, greedy: bool) -> str:
    m = _pattern_regex(pattern, greedy=greedy, anchored=True).search(value)
    return value[m.end():] if m else value


def _reverse_pattern(pattern: str) -> str:
    """Reverse a pattern keeping each backslash escape in front of what it escapes."""
    tokens: list[str] = []
    i = 0
    while i < len(pattern):
        if pattern[i] == "\\" and i + 1 < len(pattern):
            tokens.append(pattern[i:i + 2])
            i += 2
        else:
            tokens.append(pattern[i])
            i += 1
    return "".join(reversed(tokens))


def _trim_suffix(pattern: str, value: str, greedy: bool) -> str:
    # Regexes find leftmost matches only: reverse both sides to trim from the right.
    return _trim_prefix(_reverse_pattern(pattern), value[::-1], greedy)[::-1]


def _go_quote(text: str) -> str:
    """Go's %q for the common cases (quotes, backslashes, control characters)."""
    out = []
    for ch in text:
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def process_word(word: str, env: Mapping[str, str], escape: str = "\\") -> str:
    """Expand ``word`` with ``env`` and remove quotes (BuildKit's ``ProcessWord``)."""
    return Lexer(escape).process(word, env).result


def process_words(word: str, env: Mapping[str, str], escape: str = "\\") -> list[str]:
    """Expand ``word`` then split it on unquoted whitespace (BuildKit's ``ProcessWords``)."""
    return Lexer(escape).process(word, env).words


def env_from_list(env: list[str] | tuple[str, ...]) -> dict[str, str]:
    """``["K=V", "K2"]`` (an image config's Env) as a dict; a later key wins, as in
    ``BuildEnvs``."""
    out: dict[str, str] = {}
    for item in env:
        key, _, value = item.partition("=")
        out[key] = value
    return out
