"""The .dockerignore rules, checked against moby/patternmatcher's own test tables."""

from __future__ import annotations

import pytest

from dockyard.build.dockerignore import (
    IgnoreMatcher,
    PatternError,
    clean,
    filepath_match,
    read_patterns,
)

# patternmatcher_test.go TestMatches: (pattern, text, matches with parents?)
MATCHES = [
    ("**", "file", True), ("**", "file/", True), ("**/", "file", True),
    ("**/", "file/", True), ("**", "/", True), ("**/", "/", True),
    ("**", "dir/file", True), ("**/", "dir/file", True), ("**", "dir/file/", True),
    ("**/", "dir/file/", True), ("**/**", "dir/file", True), ("**/**", "dir/file/", True),
    ("dir/**", "dir/file", True), ("dir/**", "dir/file/", True),
    ("dir/**", "dir/dir2/file", True), ("dir/**", "dir/dir2/file/", True),
    ("**/dir", "dir", True), ("**/dir", "dir/file", True),
    ("**/dir2/*", "dir/dir2/file", True), ("**/dir2/*", "dir/dir2/file/", True),
    ("**/dir2/**", "dir/dir2/dir3/file", True), ("**/dir2/**", "dir/dir2/dir3/file/", True),
    ("**file", "file", True), ("**file", "dir/file", True), ("**/file", "dir/file", True),
    ("**file", "dir/dir/file", True), ("**/file", "dir/dir/file", True),
    ("**/file*", "dir/dir/file", True), ("**/file*", "dir/dir/file.txt", True),
    ("**/file*txt", "dir/dir/file.txt", True), ("**/file*.txt", "dir/dir/file.txt", True),
    ("**/file*.txt*", "dir/dir/file.txt", True), ("**/**/*.txt", "dir/dir/file.txt", True),
    ("**/**/*.txt2", "dir/dir/file.txt", False), ("**/*.txt", "file.txt", True),
    ("**/**/*.txt", "file.txt", True), ("a**/*.txt", "a/file.txt", True),
    ("a**/*.txt", "a/dir/file.txt", True), ("a**/*.txt", "a/dir/dir/file.txt", True),
    ("a/*.txt", "a/dir/file.txt", False), ("a/*.txt", "a/file.txt", True),
    ("a/*.txt**", "a/file.txt", True), ("a[b-d]e", "ae", False), ("a[b-d]e", "ace", True),
    ("a[b-d]e", "aae", False), ("a[^b-d]e", "aze", True), (".*", ".foo", True),
    (".*", "foo", False), ("abc.def", "abcdef", False), ("abc.def", "abc.def", True),
    ("abc.def", "abcZdef", False), ("abc?def", "abcZdef", True), ("abc?def", "abcdef", False),
    ("**/foo/bar", "foo/bar", True), ("**/foo/bar", "dir/foo/bar", True),
    ("**/foo/bar", "dir/dir2/foo/bar", True), ("abc/**", "abc", False),
    ("abc/**", "abc/def", True), ("abc/**", "abc/def/ghi", True), ("**/.foo", ".foo", True),
    ("**/.foo", "bar.foo", False), ("a(b)c/def", "a(b)c/def", True),
    ("a(b)c/def", "a(b)c/xyz", False), ("a.|)$(}+{bc", "a.|)$(}+{bc", True),
    ("dist/*.whl", "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", True),
    ("a\\\\", "a\\", True), ("a\\*b", "a*b", True),
]


@pytest.mark.parametrize(("pattern", "text", "expected"), MATCHES)
def test_patternmatcher_table(pattern: str, text: str, expected: bool) -> None:
    assert IgnoreMatcher([pattern]).matches(text) is expected


@pytest.mark.parametrize(("patterns", "text", "expected"), [
    (["**", "!util/docker/web"], "util/docker/web/foo", False),
    (["**", "!util/docker/web", "util/docker/web/foo"], "util/docker/web/foo", True),
    (["**", "!dist/*.whl"], "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", False),
    (["*.go", "!fileutils.go"], "fileutils.go", False),
    (["!fileutils.go", "*.go"], "fileutils.go", True),
    (["docs", "!docs/README.md"], "docs/README.md", False),
    (["docs/", "!docs/README.md"], "docs/README.md", False),
    (["docs/*", "!docs/README.md"], "docs/README.md", False),
    (["docs", "!docs/README.md"], "docs/other.md", True),
    (["*.go"], ".", False),
])
def test_last_applying_pattern_wins(patterns: list[str], text: str, expected: bool) -> None:
    assert IgnoreMatcher(patterns).matches(text) is expected


def test_readall_table_from_ignorefile_tests() -> None:
    content = ("test1\n/test2\n/a/file/here\n\nlastfile\n# this is a comment\n"
               "! /inverted/abs/path\n!\n! ")
    assert read_patterns(content) == ["test1", "test2", "a/file/here", "lastfile",
                                      "!inverted/abs/path", "!", "!"]


def test_readall_drops_bom_and_cleans_and_keeps_indented_hash() -> None:
    assert read_patterns("\ufeffa/../b/\n  #x\n./c//d") == ["b", "#x", "c/d"]


def test_lone_exclamation_is_an_error() -> None:
    with pytest.raises(PatternError, match="illegal exclusion pattern"):
        IgnoreMatcher.from_text("!\n")


@pytest.mark.parametrize("bad", ["[", "a[", "[^bc", "[x-]", "[-x]", "\\", "[a-b-c]"])
def test_malformed_pattern_is_refused(bad: str) -> None:
    with pytest.raises(PatternError):
        IgnoreMatcher([bad])


# Go's filepath.Match tests (as copied into patternmatcher_test.go)
GO_MATCH = [
    ("abc", "abc", True), ("*", "abc", True), ("*c", "abc", True), ("a*", "a", True),
    ("a*", "abc", True), ("a*", "ab/c", False), ("a*/b", "abc/b", True),
    ("a*/b", "a/c/b", False), ("a*b*c*d*e*/f", "axbxcxdxe/f", True),
    ("a*b*c*d*e*/f", "axbxcxdxexxx/f", True), ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", False),
    ("a*b*c*d*e*/f", "axbxcxdxexxx/fff", False), ("a*b?c*x", "abxbbxdbxebxczzx", True),
    ("a*b?c*x", "abxbbxdbxebxczzy", False), ("ab[c]", "abc", True), ("ab[b-d]", "abc", True),
    ("ab[e-g]", "abc", False), ("ab[^c]", "abc", False), ("ab[^b-d]", "abc", False),
    ("ab[^e-g]", "abc", True), ("a\\*b", "a*b", True), ("a\\*b", "ab", False),
    ("a?b", "a☺b", True), ("a[^a]b", "a☺b", True), ("a???b", "a☺b", False),
    ("[a-ζ]*", "\u03b1", True), ("*[a-ζ]", "A", False), ("a?b", "a/b", False),
    ("a*b", "a/b", False), ("[\\]a]", "]", True), ("[\\-]", "-", True), ("[x\\-]", "x", True),
    ("[x\\-]", "-", True), ("[x\\-]", "z", False), ("[\\-x]", "x", True),
    ("[\\-x]", "-", True), ("[\\-x]", "a", False), ("*x", "xxx", True),
]


@pytest.mark.parametrize(("pattern", "name", "expected"), GO_MATCH)
def test_go_filepath_match(pattern: str, name: str, expected: bool) -> None:
    assert filepath_match(pattern, name) is expected


@pytest.mark.parametrize(("path", "cleaned"), [
    ("", "."), ("a//b/./c/..", "a/b"), ("/../a", "/a"), ("../../a", "../../a"),
    ("a/../..", ".."), ("//x/", "/x"),
])
def test_clean_is_go_filepath_clean(path: str, cleaned: str) -> None:
    assert clean(path) == cleaned


def test_excluded_directory_is_walked_only_when_an_exception_is_below_it() -> None:
    m = IgnoreMatcher.from_text("docs\n!docs/keep.md\nbuild\n")
    assert m.excluded("build", is_dir=True)
    assert not m.excluded("docs", is_dir=True)  # look inside: keep.md comes back
    assert m.excluded("docs/other.md")
    assert not m.excluded("docs/keep.md")
    assert m.excluded("build/x/y")
    assert not m.excluded("src/main.go")
