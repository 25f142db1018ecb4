"""ChainIDs, checked against the image-spec's definition worked by hand."""

from __future__ import annotations

import hashlib

import pytest

from dockyard.image.errors import InvalidArgument
from dockyard.image.layers.chain import chain_id, chain_ids

A = "sha256:" + "a" * 64
B = "sha256:" + "b" * 64
C = "sha256:" + "c" * 64


def test_one_layer_is_its_own_chain() -> None:
    assert chain_id([A]) == A
    assert chain_ids([A]) == [A]


def test_each_layer_hashes_the_chain_below_a_space_and_its_diff_id() -> None:
    ab = "sha256:" + hashlib.sha256(f"{A} {B}".encode()).hexdigest()
    abc = "sha256:" + hashlib.sha256(f"{ab} {C}".encode()).hexdigest()
    assert chain_ids([A, B, C]) == [A, ab, abc]
    assert chain_id([A, B, C]) == abc


def test_a_known_vector() -> None:
    # printf %s "sha256:aaa…a sha256:bbb…b" | sha256sum
    assert chain_id([A, B]) == (
        "sha256:ccd722928bd92476ba1745586fed6e45a102504185ad88cd89e01ff116fd146c")
    assert chain_id([A, B]) != chain_id([B, A])


def test_no_layers_have_no_chain() -> None:
    assert chain_ids([]) == []
    with pytest.raises(InvalidArgument):
        chain_id([])


def test_a_bad_diff_id_is_refused() -> None:
    with pytest.raises(InvalidArgument):
        chain_ids([A, "sha256:short"])
