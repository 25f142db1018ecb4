"""The walk filter syntax."""

from __future__ import annotations

import pytest

from dockyard.image.content.filters import Clause, label_lookup, match, parse, parse_all
from dockyard.image.errors import InvalidArgument


def lookup(fields: dict[tuple[str, ...], str]):
    return lambda path: fields.get(path)


def test_clause_without_operator_tests_presence() -> None:
    assert parse("labels.a") == (Clause(("labels", "a")),)


def test_quoted_field_names_keep_their_dots() -> None:
    (clause,) = parse('labels."containerd.io/gc.root"=="yes, really"')
    assert clause.fieldpath == ("labels", "containerd.io/gc.root")
    assert clause.value == "yes, really"


def test_unquoted_dotted_label_key_joins_back() -> None:
    (clause,) = parse("labels.containerd.io/gc.root")
    assert label_lookup({"containerd.io/gc.root": ""}, clause.fieldpath[1:]) == ""


def test_commas_and_together_and_several_filters_or_together() -> None:
    fields = lookup({("a",): "1", ("b",): "2"})
    assert match(parse_all(["a==1,b==2"]), fields)
    assert not match(parse_all(["a==1,b==3"]), fields)
    assert match(parse_all(["a==9", "b==2"]), fields)
    assert match([], fields)


def test_regex_operator_searches() -> None:
    assert match(parse_all(["d~=^sha256:ab"]), lookup({("d",): "sha256:abc"}))
    assert not match(parse_all(["d~=^sha512"]), lookup({("d",): "sha256:abc"}))


def test_escaped_quotes_in_values() -> None:
    assert parse(r'a=="say \"hi\""')[0].value == 'say "hi"'


@pytest.mark.parametrize("text", ["", "a==b,", "==b", 'a=="open', "a~=(", "a b"])
def test_malformed_filters_are_invalid(text: str) -> None:
    with pytest.raises(InvalidArgument):
        parse(text)
