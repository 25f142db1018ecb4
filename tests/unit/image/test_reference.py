"""Reference parsing and normalization, with Docker's words for what is wrong."""

from __future__ import annotations

import pytest

from dockyard.image import reference
from dockyard.image.errors import InvalidArgument

D = "sha256:" + "ab" * 32


@pytest.mark.parametrize(("text", "full", "familiar"), [
    ("busybox", "docker.io/library/busybox", "busybox"),
    ("busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36"),
    ("user/app", "docker.io/user/app", "user/app"),
    ("docker.io/busybox", "docker.io/library/busybox", "busybox"),
    ("index.docker.io/library/x:y", "docker.io/library/x:y", "x:y"),
    ("localhost/app", "localhost/app", "localhost/app"),
    ("localhost:5000/a/b:t", "localhost:5000/a/b:t", "localhost:5000/a/b:t"),
    ("127.0.0.1:5000/x", "127.0.0.1:5000/x", "127.0.0.1:5000/x"),
    (f"busybox@{D}", f"docker.io/library/busybox@{D}", f"busybox@{D}"),
    (f"a/b:t@{D}", f"docker.io/a/b:t@{D}", f"a/b:t@{D}"),
    ("Registry.Example/app", "Registry.Example/app", "Registry.Example/app"),
])
def test_parse_normalizes_like_docker(text, full, familiar):
    ref = reference.parse(text)
    assert str(ref) == full
    assert ref.familiar() == familiar
    assert reference.parse(str(ref)) == ref


def test_default_tag_only_without_tag_or_digest():
    assert reference.parse_tagged("busybox").tag == "latest"
    assert reference.parse_tagged("busybox:1").tag == "1"
    assert reference.parse_tagged(f"busybox@{D}").tag is None


@pytest.mark.parametrize(("text", "message"), [
    ("", "invalid reference format"),
    ("Busybox", "repository name (library/Busybox) must be lowercase"),
    ("a/B:x", "repository name (a/B) must be lowercase"),
    ("x:y:z", "invalid reference format"),
    ("a//b", "invalid reference format"),
    ("-a", "invalid reference format"),
    ("a:" + "t" * 129, "invalid reference format"),
    ("ab" * 32, "cannot specify 64-byte hexadecimal strings"),
    ("busybox@sha256:abc", "invalid reference format"),
    ("x/" + "a" * 260, "must not be more than 255 characters"),
])
def test_bad_references_are_refused_in_dockers_words(text, message):
    with pytest.raises(InvalidArgument, match=message.replace("(", r"\(").replace(")", r"\)")):
        reference.parse(text)
