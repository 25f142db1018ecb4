"""Shell-word processing, checked against BuildKit's own shell/lex_test.go tables."""

from __future__ import annotations

import pytest

from dockyard.build.shell import (
    Lexer,
    ShellError,
    env_from_list,
    process_word,
    process_words,
)

# lex_test.go TestProcessWithMatches: (input, env, expected, matched, unmatched)
MATCHES = [
    ("x", {"DUMMY": "dummy"}, "x", set(), set()),
    ("x ${UNUSED}", {"DUMMY": "dummy"}, "x ", set(), {"UNUSED"}),
    ("x ${FOO}", {"FOO": "y"}, "x y", {"FOO"}, set()),
    ("${FOO-aaa} ${BAR-bbb} ${BAZ-ccc}", {"FOO": "xxx", "BAR": ""}, "xxx  ccc",
     {"FOO", "BAR"}, {"BAZ"}),
    ("${FOO:-aaa} ${BAR:-bbb} ${BAZ:-ccc}", {"FOO": "xxx", "BAR": ""}, "xxx bbb ccc",
     {"FOO", "BAR"}, {"BAZ"}),
    ("${FOO:-}", {"FOO": "xxx", "BAR": ""}, "xxx", {"FOO"}, set()),
    ("${FOO:-}", {}, "", set(), {"FOO"}),
    ("${FOO+aaa} ${BAR+bbb} ${BAZ+ccc}", {"FOO": "xxx", "BAR": ""}, "aaa bbb ",
     {"FOO", "BAR"}, {"BAZ"}),
    ("${FOO:+aaa} ${BAR:+bbb} ${BAZ:+ccc}", {"FOO": "xxx", "BAR": ""}, "aaa  ",
     {"FOO", "BAR"}, {"BAZ"}),
    ("${FOO?aaa}", {"FOO": "xxx", "BAR": ""}, "xxx", {"FOO"}, set()),
    ("${BAR?bbb}", {"FOO": "xxx", "BAR": ""}, "", {"BAR"}, set()),
    ("${FOO:?aaa}", {"FOO": "xxx", "BAR": ""}, "xxx", {"FOO"}, set()),
    ("${FOO#()[]{\\}^$.\\*\\?|\\\\}", {"FOO": "()[]{}^$.*?|\\x"}, "x", {"FOO"}, set()),
    ("${FOO%%\\**}", {"FOO": "xx**"}, "xx", {"FOO"}, set()),
    ("${FOO#*x*y}", {"FOO": "xxyy"}, "y", {"FOO"}, set()),
    ("${FOO#*}", {"FOO": "xxyy"}, "xxyy", {"FOO"}, set()),
    ("${FOO#$BAR}", {"FOO": "xxyy", "BAR": "x"}, "xyy", {"FOO", "BAR"}, set()),
    ("${FOO#$BAR}", {"FOO": "xxyy", "BAR": ""}, "xxyy", {"FOO", "BAR"}, set()),
    ("${FOO##*x}", {"FOO": "xxyy"}, "yy", {"FOO"}, set()),
    ("${FOO#?\\?}", {"FOO": "???y"}, "?y", {"FOO"}, set()),
    ("${ABC:-.}${FOO%x}${ABC:-.}", {"FOO": "xxyy"}, ".xxyy.", {"FOO"}, {"ABC"}),
    ("${FOO%%\\**\\*}", {"FOO": "a***yy*"}, "a", {"FOO"}, set()),
    ("${FOO/$NEEDLE/.} - ${FOO//$NEEDLE/.}", {"FOO": "/foo*/*/*.txt", "NEEDLE": "\\*/"},
     "/foo.*/*.txt - /foo..*.txt", {"FOO", "NEEDLE"}, set()),
    ("${FOO/$NEEDLE/} - ${FOO//$NEEDLE/}", {"FOO": "/tmp/tmp/bar.txt", "NEEDLE": "/tmp"},
     "/tmp/bar.txt - /bar.txt", {"FOO", "NEEDLE"}, set()),
    ("${FOO/$NEEDLE/$REPLACEMENT} - ${FOO//$NEEDLE/$REPLACEMENT}",
     {"FOO": "/a/foo/b/c.txt", "NEEDLE": "/?/", "REPLACEMENT": "/"},
     "/foo/b/c.txt - /foo/c.txt", {"FOO", "NEEDLE", "REPLACEMENT"}, set()),
    ("${FOO//\\//\\/}", {"FOO": "/tmp/foo.txt"}, "\\/tmp\\/foo.txt", {"FOO"}, set()),
    ("${FOO///}", {"FOO": "xxyy"}, "xxyy", {"FOO"}, set()),
]


@pytest.mark.parametrize(("word", "env", "expected", "matched", "unmatched"), MATCHES)
def test_process_matches_buildkit_table(word, env, expected, matched, unmatched):
    result = Lexer().process(word, env)
    assert result.result == expected
    assert result.matched == matched
    assert result.unmatched == unmatched


@pytest.mark.parametrize("word", [
    "${BAZ?ccc}", "${BAR:?bbb}", "${BAZ:?ccc}", "${BAZ:?}", "${FOO=aaa}", "${FOO=:aaa}",
    "${FOO=}", "${FOO//ww}", "${FOO//}",
])
def test_process_rejects_what_buildkit_rejects(word):
    with pytest.raises(ShellError):
        process_word(word, {"FOO": "xxx", "BAR": ""})


def test_mandatory_variables_use_the_given_message():
    with pytest.raises(ShellError, match=r'failed to process "\$\{VAR:\?message here\$ARG\}": '
                                         r"VAR: message herex"):
        process_word("${VAR:?message here$ARG}", {"VAR": "", "ARG": "x"})
    assert process_word("${VAR?message here$ARG}", {"VAR": "", "ARG": "x"}) == ""
    with pytest.raises(ShellError, match="VAR: is not allowed to be unset"):
        process_word("${VAR?}", {})
    with pytest.raises(ShellError, match="VAR: is not allowed to be empty"):
        process_word("${VAR:?}", {"VAR": ""})


@pytest.mark.parametrize(("word", "expected"), [
    ("$PWD", "/home"), ("${PWD}", "/home"), ("he$PWD", "he/home"), ("'$PWD'", "$PWD"),
    ('"$PWD"', "/home"), ("\\$PWD", "$PWD"), ('"\\$PWD"', "$PWD"), ("a\\ b", "a b"),
    ('"a\\"b"', 'a"b'), ('"a\\b"', "a\\b"), ("'a\\b'", "a\\b"), ("a'b c'd", "ab cd"),
    ("$", "$"), ("$1x", "x"), ("${NULL:-def}", "def"), ("${NULL-def}", ""),
    ("$KOREAN", "한국어"), ("${UNSET:+x}", ""), ("${PWD:+x}", "x"),
    ("${SHELL:+$PWD}", "/home"),
])
def test_process_word_removes_quotes_and_expands(word, expected):
    env = env_from_list(["PWD=/home", "SHELL=bash", "KOREAN=한국어", "NULL="])
    assert process_word(word, env) == expected


@pytest.mark.parametrize(("word", "message"), [
    ("'abc", "unexpected end of statement while looking for matching single-quote"),
    ('"abc', "unexpected end of statement while looking for matching double-quote"),
    ("${}", "syntax error: bad substitution"),
    ("${:x}", "syntax error: bad substitution"),
    ("${A", "syntax error: missing '}'"),
    ("${A:-x", "syntax error: missing '}'"),
    ("${A:x}", "unsupported modifier (:x) in substitution"),
])
def test_errors_are_worded_as_buildkit(word, message):
    with pytest.raises(ShellError) as e:
        process_word(word, {"A": "a"})
    assert str(e.value).endswith(message)
    assert str(e.value).startswith("failed to process ")


def test_backtick_escape_replaces_backslash():
    env = {"A": "a"}
    assert process_word("`$A", env, "`") == "$A"
    assert process_word("c:\\dir\\$A", env, "`") == "c:\\dir\\a"
    assert process_word('"x`"y"', env, "`") == 'x"y'


def test_process_words_splits_after_expansion():
    env = {"PORTS": "80 443/udp", "EMPTY": ""}
    assert process_words("$PORTS 8080", env) == ["80", "443/udp", "8080"]
    assert process_words('"$PORTS" x', env) == ["80 443/udp", "x"]
    assert process_words("a\\ b c", env) == ["a b", "c"]
    assert process_words("$EMPTY", env) == []


def test_raw_lexers_keep_what_heredoc_detection_needs():
    lex = Lexer(raw_quotes=True, raw_escapes=True, skip_unset_env=True)
    assert lex.process("<<'EOF' $X ${Y:-z}", {}).words == ["<<'EOF'", "$X", "${Y:-z}"]
    raw = Lexer(skip_process_quotes=True)
    assert raw.process("'$A' \"$A\"", {"A": "1"}).result == "'1' \"1\""


def test_later_env_entries_win():
    assert env_from_list(["A=1", "B", "A=2=3"]) == {"A": "2=3", "B": ""}
