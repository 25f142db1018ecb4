"""Platform specifiers, normalization and matching, checked against containerd's rules."""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass

import pytest

from dockyard.image import platforms as P
from dockyard.image.errors import InvalidArgument
from dockyard.image.platforms import Platform


def fmt(text: str) -> str:
    return P.format(P.parse(text))


@pytest.mark.parametrize(("text", "parsed", "normalized"), [
    ("linux/amd64", "linux/amd64", "linux/amd64"),
    ("linux/x86_64", "linux/amd64", "linux/amd64"),
    ("linux/x86-64", "linux/amd64", "linux/amd64"),
    ("Linux/AMD64", "linux/amd64", "linux/amd64"),
    ("linux/amd64/v1", "linux/amd64", "linux/amd64"),
    ("linux/amd64/v3", "linux/amd64/v3", "linux/amd64/v3"),
    ("linux/aarch64", "linux/arm64", "linux/arm64"),
    ("linux/arm64", "linux/arm64", "linux/arm64"),
    ("linux/arm64/v8", "linux/arm64/v8", "linux/arm64"),
    ("linux/aarch64/8", "linux/arm64/v8", "linux/arm64"),
    ("linux/arm64/v9.0", "linux/arm64/v9", "linux/arm64/v9"),
    ("linux/arm", "linux/arm", "linux/arm/v7"),
    ("linux/arm/7", "linux/arm/v7", "linux/arm/v7"),
    ("linux/arm/v6", "linux/arm/v6", "linux/arm/v6"),
    ("linux/arm/5", "linux/arm/v5", "linux/arm/v5"),
    ("linux/armhf", "linux/arm", "linux/arm/v7"),
    ("linux/armel", "linux/arm/v6", "linux/arm/v6"),
    ("linux/i386", "linux/386", "linux/386"),
    ("linux/i686", "linux/386", "linux/386"),
    ("linux/ppc64le", "linux/ppc64le", "linux/ppc64le"),
    ("linux/s390x", "linux/s390x", "linux/s390x"),
    ("linux/riscv64", "linux/riscv64", "linux/riscv64"),
    ("macos/arm64", "darwin/arm64", "darwin/arm64"),
    ("windows/amd64", "windows/amd64", "windows/amd64"),
    ("freebsd/unknownarch", "freebsd/unknownarch", "freebsd/unknownarch"),
])
def test_parse_and_normalize_follow_containerd(text, parsed, normalized):
    p = P.parse(text)
    assert P.format(p) == parsed
    assert P.format(P.normalize(p)) == normalized
    assert P.normalize(P.normalize(p)) == P.normalize(p)


def test_lone_architecture_means_the_host_os():
    assert P.parse("amd64") == Platform(P.host().os, "amd64")
    assert P.parse("aarch64") == Platform(P.host().os, "arm64")
    assert P.parse("armhf") == Platform(P.host().os, "arm")
    assert P.parse("armel") == Platform(P.host().os, "arm", "v6")


def test_lone_os_means_the_host_architecture():
    here = P.host()
    p = P.parse("linux")
    assert (p.os, p.architecture) == ("linux", here.architecture)
    assert P.parse("windows").architecture == here.architecture
    assert P.parse("macos").os == "darwin"


def test_os_version_in_parentheses():
    p = P.parse("windows(10.0.17763)/amd64")
    assert p == Platform("windows", "amd64", os_version="10.0.17763")
    assert P.format(p) == "windows/amd64"


@pytest.mark.parametrize(("text", "message"), [
    ("", "is not an os"),
    ("linux/", "is not a valid component"),
    ("/amd64", "is not an os"),
    ("linux/amd 64", "is not a valid component"),
    ("linux/amd64/v8/extra", "want os/arch"),
    ("linux/*", "wildcards"),
    ("notanos", "unknown operating system or architecture"),
    ("lin ux", "is not an os"),
])
def test_bad_specifiers_are_refused_with_the_text(text, message):
    with pytest.raises(InvalidArgument, match=message) as e:
        P.parse(text)
    assert repr(text) in str(e.value)


def test_host_is_this_machine():
    here = P.host()
    assert here.os == "linux"
    assert here == P.from_uname(os.uname().sysname, os.uname().machine)


@pytest.mark.parametrize(("sysname", "machine", "want"), [
    ("Linux", "x86_64", "linux/amd64"),
    ("Linux", "aarch64", "linux/arm64/v8"),
    ("Linux", "armv7l", "linux/arm/v7"),
    ("Linux", "armv6l", "linux/arm/v6"),
    ("Linux", "armv8l", "linux/arm/v8"),
    ("Linux", "i686", "linux/386"),
    ("Linux", "ppc64le", "linux/ppc64le"),
    ("Darwin", "arm64", "darwin/arm64/v8"),
])
def test_from_uname(sysname, machine, want):
    assert P.format(P.from_uname(sysname, machine)) == want


def test_json_round_trip_keeps_what_was_written():
    obj = {"architecture": "arm64", "os": "linux", "variant": "v8", "os.version": "1",
           "os.features": ["a"], "features": ["b"]}
    p = Platform.from_json(obj)
    assert p == Platform("linux", "arm64", "v8", "1", ("a",), ("b",))
    assert p.to_json() == obj
    assert Platform("linux", "amd64").to_json() == {"architecture": "amd64", "os": "linux"}


@pytest.mark.parametrize(("obj", "message"), [
    ([], "platform: want a JSON object, got array"),
    ("linux/amd64", "platform: want a JSON object, got string"),
    ({"architecture": "amd64"}, "platform: os: required field missing"),
    ({"os": "linux"}, "platform: architecture: required field missing"),
    ({"os": "", "architecture": "amd64"}, "platform: os: must not be empty"),
    ({"os": "linux", "architecture": 64}, "platform: architecture: want a string, got number"),
    ({"os": "linux", "architecture": "arm", "variant": 7}, "platform: variant: want a string"),
    ({"os": "linux", "architecture": "a", "os.features": "x"}, "os.features: want an array"),
    ({"os": "linux", "architecture": "a", "os.features": [1]}, r"os.features\[0\]: want a str"),
])
def test_from_json_refuses_bad_objects(obj, message):
    with pytest.raises(InvalidArgument, match=message):
        Platform.from_json(obj)


@pytest.mark.parametrize(("want", "other", "matches"), [
    ("linux/arm64", "linux/arm64/v8", True),
    ("linux/arm64/v8", "linux/arm64", True),
    ("linux/aarch64", "linux/arm64", True),
    ("linux/arm64", "linux/arm/v8", True),
    ("linux/arm64", "linux/arm/v7", True),
    ("linux/arm64", "linux/arm/v5", True),
    ("linux/arm64", "linux/amd64", False),
    ("linux/arm/v7", "linux/arm/v7", True),
    ("linux/arm/v7", "linux/arm", True),
    ("linux/arm/v7", "linux/arm/v6", True),
    ("linux/arm/v7", "linux/arm/v5", True),
    ("linux/arm/v7", "linux/arm/v8", False),
    ("linux/arm/v7", "linux/arm64", False),
    ("linux/arm/v6", "linux/arm/v7", False),
    ("linux/arm/v5", "linux/arm/v6", False),
    ("linux/amd64", "linux/386", True),
    ("linux/amd64", "linux/x86_64", True),
    ("linux/amd64", "linux/amd64/v2", False),
    ("linux/amd64/v3", "linux/amd64/v2", True),
    ("linux/amd64/v3", "linux/amd64", True),
    ("linux/amd64/v2", "linux/amd64/v3", False),
    ("linux/386", "linux/amd64", False),
    ("linux/amd64", "windows/amd64", False),
    ("linux/arm64/v9.2", "linux/arm64/v8.7", True),
    ("linux/arm64/v9.2", "linux/arm64/v8.8", False),
    ("linux/arm64/v8.2", "linux/arm64/v8.1", True),
    ("linux/arm64/v8.2", "linux/arm64", True),
    ("linux/arm64", "linux/arm64/v8.1", False),
])
def test_matcher_accepts_what_containerds_only_accepts(want, other, matches):
    assert P.matcher(P.parse(want)).match(P.parse(other)) is matches


def test_only_strict_refuses_older_variants_but_not_other_spellings():
    m = P.only_strict(P.parse("linux/amd64"))
    assert m.match(P.parse("linux/x86_64"))
    assert not m.match(P.parse("linux/386"))
    arm = P.only_strict(P.parse("linux/arm/v7"))
    assert arm.match(P.parse("linux/armhf")) and not arm.match(P.parse("linux/arm/v6"))


def test_less_prefers_exact_then_newer_variants():
    m = P.matcher(P.parse("linux/arm/v7"))
    v7, v6, v5, v8 = (P.parse(f"linux/arm/{v}") for v in ("v7", "v6", "v5", "v8"))
    assert m.less(v7, v6) and m.less(v6, v5) and m.less(v7, v5)
    assert not m.less(v6, v7) and not m.less(v7, v7)
    assert m.less(v5, v8)  # a match sorts before a platform that does not match
    assert not m.less(v8, v5) and not m.less(v8, v8)
    by_preference = functools.cmp_to_key(lambda a, b: -1 if m.less(a, b) else m.less(b, a))
    assert sorted([v5, v8, v7, v6], key=by_preference) == [v7, v6, v5, v8]


def test_ordered_prefers_in_the_order_given():
    m = P.ordered(P.parse("linux/arm64"), P.parse("linux/amd64"))
    assert m.less(P.parse("linux/arm64"), P.parse("linux/amd64"))
    assert not m.match(P.parse("linux/386"))


@dataclass(frozen=True)
class Entry:
    name: str
    platform: Platform | None


def entries(*specs: str | None) -> list[Entry]:
    return [Entry(s or "none", P.parse(s) if s else None) for s in specs]


@pytest.mark.parametrize(("specs", "want", "chosen"), [
    (("linux/amd64", "linux/arm64", "linux/arm/v7"), "linux/arm64", "linux/arm64"),
    (("linux/arm/v5", "linux/arm/v7", "linux/arm/v6"), "linux/arm/v7", "linux/arm/v7"),
    (("linux/arm/v5", "linux/arm/v6"), "linux/arm/v7", "linux/arm/v6"),
    (("linux/arm/v8", "linux/arm/v7"), "linux/arm/v7", "linux/arm/v7"),
    (("linux/arm/v7", "linux/arm64/v8"), "linux/arm64", "linux/arm64/v8"),
    (("linux/arm/v7", "linux/arm/v6"), "linux/arm64", "linux/arm/v7"),
    (("linux/386", "linux/amd64"), "linux/amd64", "linux/amd64"),
    (("linux/386",), "linux/amd64", "linux/386"),
    (("linux/amd64", "linux/amd64/v3", "linux/amd64/v2"), "linux/amd64/v2", "linux/amd64/v2"),
    (("linux/arm/v8",), "linux/arm/v7", None),
    (("windows/amd64",), "linux/amd64", None),
    ((None, "linux/arm64"), "linux/amd64", None),
    ((None, "linux/amd64"), "linux/amd64", "linux/amd64"),
    ((None, None), "linux/amd64", "none"),
    ((), "linux/amd64", None),
])
def test_choose_picks_the_best_entry(specs, want, chosen):
    got = P.choose(entries(*specs), want=P.parse(want))
    assert (got.name if got else None) == chosen


def test_choose_takes_the_first_of_equals_and_a_key_and_a_matcher():
    items = [("a", "linux/amd64"), ("b", "linux/x86_64")]
    got = P.choose(items, want=P.only_strict(P.parse("linux/amd64")),
                   key=lambda i: P.parse(i[1]))
    assert got == ("a", "linux/amd64")


def test_choose_defaults_to_the_host():
    here = P.host()
    items = entries("windows/amd64", P.format(here))
    assert P.choose(items) == items[1]
