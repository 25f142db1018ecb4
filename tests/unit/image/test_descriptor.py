"""Descriptors: OCI keys both ways, and every malformed field refused by name."""

from __future__ import annotations

import base64

import pytest

from dockyard.image import mediatypes as mt
from dockyard.image.descriptor import EMPTY_DIGEST, Descriptor, empty_descriptor
from dockyard.image.digest import of_bytes
from dockyard.image.errors import DigestMismatch, InvalidArgument
from dockyard.image.platforms import Platform

D = "sha256:" + "ab" * 32
GOOD = {"mediaType": mt.OCI_LAYER_GZIP, "digest": D, "size": 10}


def with_(**fields: object) -> dict[str, object]:
    out = dict(GOOD)
    for key, value in fields.items():
        key = {"media_type": "mediaType", "artifact_type": "artifactType"}.get(key, key)
        if value is ...:
            out.pop(key)
        else:
            out[key] = value
    return out


def test_minimal_round_trip():
    d = Descriptor.from_json(GOOD)
    assert d == Descriptor(mt.OCI_LAYER_GZIP, D, 10)
    assert d.to_json() == GOOD


def test_full_round_trip_with_oci_keys():
    data = b"hello"
    obj = {
        "mediaType": mt.OCI_MANIFEST, "digest": of_bytes(data), "size": 5,
        "urls": ["https://example.com/blob"], "annotations": {"org.example": "x"},
        "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"},
        "artifactType": "application/vnd.example+json",
        "data": base64.b64encode(data).decode(),
    }
    d = Descriptor.from_json(obj)
    assert d.platform == Platform("linux", "arm64", "v8")
    assert d.data == data and d.urls == ("https://example.com/blob",)
    assert d.artifact_type == "application/vnd.example+json"
    assert d.to_json() == obj


def test_constructor_takes_a_str_digest_and_a_list_of_urls():
    d = Descriptor(mt.OCI_CONFIG, D, 1, urls=["https://x/y"])  # type: ignore[arg-type]
    assert d.urls == ("https://x/y",) and type(d.digest).__name__ == "Digest"


def test_descriptors_are_hashable_and_equal_by_value():
    a = Descriptor(mt.OCI_CONFIG, D, 1, annotations={"k": "v"})
    b = Descriptor(mt.OCI_CONFIG, D, 1, annotations={"k": "v"})
    assert a == b and len({a, b}) == 1
    assert a != Descriptor(mt.OCI_CONFIG, D, 1)


def test_of_describes_bytes():
    d = Descriptor.of(mt.OCI_CONFIG, b"{}")
    assert (d.digest, d.size) == (EMPTY_DIGEST, 2)


def test_empty_descriptor_is_the_specs():
    d = empty_descriptor()
    assert d.to_json() == {"mediaType": "application/vnd.oci.empty.v1+json",
                           "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e831"
                                     "0c060f61caaff8a", "size": 2}
    assert of_bytes(b"{}") == d.digest
    assert empty_descriptor(embed=True).to_json()["data"] == "e30="
    assert Descriptor.from_json(empty_descriptor(embed=True).to_json()).data == b"{}"


@pytest.mark.parametrize(("obj", "message"), [
    (["x"], "descriptor: want a JSON object, got array"),
    (None, "descriptor: want a JSON object, got null"),
    (with_(mediaType=...), "descriptor: mediaType: required field missing"),
    (with_(mediaType=5), "descriptor: mediaType: want a string, got number"),
    (with_(mediaType="notatype"), "invalid media type 'notatype'"),
    (with_(mediaType="a/b\n"), "invalid media type"),
    (with_(mediaType="/b"), "invalid media type"),
    (with_(mediaType="a/" + "b" * 128), "invalid media type"),
    (with_(digest=...), "descriptor: digest: required field missing"),
    (with_(digest="sha256:abc"), "descriptor: digest: invalid sha256 digest 'sha256:abc'"),
    (with_(digest="sha256:" + "AB" * 32), "descriptor: digest: invalid sha256 digest"),
    (with_(digest="md5:" + "ab" * 16), "unsupported digest algorithm 'md5'"),
    (with_(digest="nocolon"), "descriptor: digest: invalid digest"),
    (with_(digest=1), "descriptor: digest: want a string"),
    (with_(size=...), "descriptor: size: required field missing"),
    (with_(size=-1), "descriptor: size: must be >= 0, got -1"),
    (with_(size=True), "descriptor: size: want an integer, got boolean True"),
    (with_(size=10.0), "descriptor: size: want an integer, got number 10.0"),
    (with_(size="10"), "descriptor: size: want an integer, got string"),
    (with_(size=2**63), "descriptor: size: must be <= 9223372036854775807"),
    (with_(urls="https://x"), "descriptor: urls: want an array, got string"),
    (with_(urls=[1]), r"descriptor: urls\[0\]: want a string"),
    (with_(urls=["not a url"]), r"descriptor: urls\[0\]: 'not a url' is not an absolute URI"),
    (with_(annotations=[]), "descriptor: annotations: want a JSON object, got array"),
    (with_(annotations={"k": 1}), r"descriptor: annotations\['k'\]: want a string, got number"),
    (with_(platform="linux"), "descriptor: platform: want a JSON object"),
    (with_(platform={"os": "linux"}), "descriptor: platform.architecture: required field"),
    (with_(artifactType="x"), "descriptor: artifactType: invalid media type 'x'"),
    (with_(data="!!!"), "descriptor: data: invalid base64"),
    (with_(data=3), "descriptor: data: want a string"),
])
def test_bad_descriptors_are_refused_by_field(obj, message):
    with pytest.raises(InvalidArgument, match=message):
        Descriptor.from_json(obj)


def test_embedded_data_must_match_digest_and_size():
    data = base64.b64encode(b"abc").decode()
    with pytest.raises(DigestMismatch, match="descriptor: data: size mismatch"):
        Descriptor.from_json({"mediaType": "a/b", "digest": of_bytes(b"abc"), "size": 4,
                              "data": data})
    with pytest.raises(DigestMismatch, match="descriptor: data: digest mismatch"):
        Descriptor.from_json({"mediaType": "a/b", "digest": of_bytes(b"abd"), "size": 3,
                              "data": data})


def test_errors_name_the_path_given():
    with pytest.raises(InvalidArgument, match=r"manifest: layers\[3\].size"):
        Descriptor.from_json(with_(size=-5), "manifest: layers[3]")
