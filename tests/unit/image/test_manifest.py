"""Manifests and indexes: OCI and Docker round trips, what we write against the OCI schemas,
and every malformed document refused with InvalidArgument naming the field."""

from __future__ import annotations

import json
import string
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tests.schemas
from dockyard.image import manifest as M
from dockyard.image import mediatypes as mt
from dockyard.image import platforms
from dockyard.image.descriptor import Descriptor, empty_descriptor
from dockyard.image.digest import of_bytes
from dockyard.image.errors import DigestMismatch, InvalidArgument
from dockyard.image.platforms import Platform

D1, D2, D3 = ("sha256:" + c * 64 for c in "123")


@pytest.fixture
def oci_validate():
    def validate(doc: object, schema_file: str) -> None:
        tests.schemas.validate(doc, schema_file, folder="oci-image-schema")
    return validate


def layer(digest: str = D2, size: int = 100, media_type: str = mt.OCI_LAYER_GZIP) -> Descriptor:
    return Descriptor(media_type, digest, size)


def oci_manifest() -> M.Manifest:
    return M.Manifest(
        config=Descriptor(mt.OCI_CONFIG, D1, 1234),
        layers=(layer(D2, 100), layer(D3, 200, mt.OCI_LAYER_ZSTD)),
        annotations={"org.opencontainers.image.created": "2024-01-01T00:00:00Z"},
    )


def docker_manifest_json() -> dict[str, Any]:
    return {
        "schemaVersion": 2,
        "mediaType": mt.DOCKER_MANIFEST,
        "config": {"mediaType": mt.DOCKER_CONFIG, "size": 1469, "digest": D1},
        "layers": [{"mediaType": mt.DOCKER_LAYER_GZIP, "size": 2000, "digest": D2},
                   {"mediaType": mt.DOCKER_LAYER_FOREIGN, "size": 3000, "digest": D3,
                    "urls": ["https://mcr.microsoft.com/v2/x/blobs/" + D3]}],
    }


def docker_list_json() -> dict[str, Any]:
    return {
        "schemaVersion": 2,
        "mediaType": mt.DOCKER_MANIFEST_LIST,
        "manifests": [
            {"mediaType": mt.DOCKER_MANIFEST, "size": 528, "digest": D1,
             "platform": {"architecture": "amd64", "os": "linux"}},
            {"mediaType": mt.DOCKER_MANIFEST, "size": 528, "digest": D2,
             "platform": {"architecture": "arm", "os": "linux", "variant": "v7"}},
            {"mediaType": mt.DOCKER_MANIFEST, "size": 528, "digest": D3,
             "platform": {"architecture": "amd64", "os": "windows",
                          "os.version": "10.0.17763.5576", "os.features": ["win32k"]}},
        ],
    }


def raw(obj: object) -> bytes:
    return json.dumps(obj).encode()


# Round trips

def test_oci_manifest_round_trips_through_bytes():
    m = oci_manifest()
    data = m.to_bytes()
    assert M.parse_manifest(data) == m
    assert M.parse(data) == m
    assert M.parse_manifest(data).to_bytes() == data


def test_to_bytes_is_canonical_json():
    data = oci_manifest().to_bytes()
    assert b" " not in data.replace(b"2024-01-01T00:00:00Z", b"")
    assert data == json.dumps(json.loads(data), sort_keys=True, separators=(",", ":")).encode()
    reordered = M.Manifest(oci_manifest().config, oci_manifest().layers,
                           annotations=dict(reversed(list(oci_manifest().annotations.items()))))
    assert reordered.to_bytes() == data


def test_docker_manifest_round_trips_with_its_media_types():
    obj = docker_manifest_json()
    m = M.parse_manifest(raw(obj), mt.DOCKER_MANIFEST)
    assert m.media_type == mt.DOCKER_MANIFEST
    assert m.config.media_type == mt.DOCKER_CONFIG
    assert m.layers[1].urls and m.layers[1].media_type == mt.DOCKER_LAYER_FOREIGN
    assert json.loads(m.to_bytes()) == obj
    assert M.parse(m.to_bytes()) == m


def test_docker_manifest_list_round_trips_and_chooses_a_platform():
    idx = M.parse_index(raw(docker_list_json()))
    assert idx.media_type == mt.DOCKER_MANIFEST_LIST
    assert json.loads(idx.to_bytes()) == docker_list_json()
    assert M.parse(idx.to_bytes()) == idx
    arm64 = platforms.choose(idx.manifests, want=platforms.parse("linux/arm64"))
    assert arm64 is not None and arm64.digest == D2
    amd64 = platforms.choose(idx.manifests, want=platforms.parse("linux/amd64"))
    assert amd64 is not None and amd64.digest == D1
    assert platforms.choose(idx.manifests, want=platforms.parse("linux/s390x")) is None


def test_docker_manifest_list_with_oci_only_fields_is_fine():
    obj = docker_list_json() | {"annotations": {"a": "b"}, "subject": {
        "mediaType": mt.OCI_MANIFEST, "digest": D1, "size": 1}}
    idx = M.parse_index(raw(obj), mt.DOCKER_MANIFEST_LIST)
    assert idx.subject is not None and idx.annotations == {"a": "b"}


def test_oci_index_with_subject_artifact_type_and_annotations_round_trips():
    idx = M.Index(
        manifests=(Descriptor(mt.OCI_MANIFEST, D1, 10, platform=Platform("linux", "amd64")),
                   Descriptor(mt.OCI_MANIFEST, D2, 11, artifact_type="application/x.sbom+json",
                              annotations={"vnd.docker.reference.type": "attestation"})),
        subject=Descriptor(mt.OCI_MANIFEST, D3, 12),
        annotations={"k": "v"},
        artifact_type="application/vnd.example+json",
    )
    assert M.parse_index(idx.to_bytes(), mt.OCI_INDEX, idx.descriptor().digest) == idx
    assert M.parse(idx.to_bytes()) == idx


def test_artifact_manifest_with_the_empty_config():
    m = M.Manifest(config=empty_descriptor(), layers=(empty_descriptor(embed=True),),
                   artifact_type="application/vnd.example.sig",
                   subject=Descriptor(mt.OCI_MANIFEST, D1, 7))
    assert M.parse(m.to_bytes()) == m


def test_descriptor_of_a_manifest_is_of_its_bytes():
    m = oci_manifest()
    d = m.descriptor(platform=Platform("linux", "amd64"))
    assert d.digest == of_bytes(m.to_bytes()) and d.size == len(m.to_bytes())
    assert d.media_type == mt.OCI_MANIFEST and d.platform == Platform("linux", "amd64")


def test_empty_fields_of_the_other_kind_are_let_through_as_containerd_does():
    assert M.parse_manifest(manifest_with(manifests=[])) == M.parse_manifest(manifest_with())
    assert M.parse_index(index_with(layers=[])) == M.parse_index(index_with())


def test_documents_are_hashable():
    assert len({oci_manifest(), oci_manifest()}) == 1
    data = raw(docker_list_json())
    assert len({M.parse_index(data), M.parse_index(data)}) == 1


def test_media_type_helpers():
    assert M.is_manifest(mt.OCI_MANIFEST) and M.is_manifest(mt.DOCKER_MANIFEST)
    assert M.is_index(mt.OCI_INDEX) and M.is_index(mt.DOCKER_MANIFEST_LIST)
    assert not M.is_manifest(mt.OCI_INDEX) and not M.is_index(mt.OCI_CONFIG)
    assert not M.is_manifest(None)


# Dispatch in parse()

def test_parse_tells_kinds_apart_without_a_media_type():
    bare_manifest = {"schemaVersion": 2, "config": GOOD_DESC, "layers": [GOOD_DESC]}
    m = M.parse(raw(bare_manifest))
    assert isinstance(m, M.Manifest) and m.media_type == mt.OCI_MANIFEST
    i = M.parse(raw({"schemaVersion": 2, "manifests": []}))
    assert isinstance(i, M.Index) and i.media_type == mt.OCI_INDEX and i.manifests == ()


def test_parse_follows_the_given_media_type_when_the_field_is_absent():
    bare_manifest = {"schemaVersion": 2, "config": GOOD_DESC, "layers": []}
    m = M.parse(raw(bare_manifest), mt.DOCKER_MANIFEST)
    assert isinstance(m, M.Manifest) and m.media_type == mt.DOCKER_MANIFEST
    i = M.parse(raw({"schemaVersion": 2, "manifests": []}), mt.DOCKER_MANIFEST_LIST)
    assert isinstance(i, M.Index) and i.media_type == mt.DOCKER_MANIFEST_LIST


def test_digest_is_verified_when_given():
    data = oci_manifest().to_bytes()
    assert M.parse_manifest(data, digest=of_bytes(data)) == oci_manifest()
    assert M.parse(data, digest=of_bytes(data, "sha512")) == oci_manifest()
    with pytest.raises(DigestMismatch, match="digest mismatch"):
        M.parse_manifest(data, digest=D1)
    with pytest.raises(DigestMismatch):
        M.parse_index(raw({"schemaVersion": 2, "manifests": []}), digest=D1)
    with pytest.raises(DigestMismatch):
        M.parse(data + b" ", digest=of_bytes(data))
    with pytest.raises(InvalidArgument, match="invalid digest"):
        M.parse(data, digest="nope")


# Negative cases

GOOD_DESC = {"mediaType": mt.OCI_LAYER_GZIP, "digest": D2, "size": 1}
GOOD_CONFIG = {"mediaType": mt.OCI_CONFIG, "digest": D1, "size": 1}


def manifest_with(**fields: Any) -> bytes:
    obj: dict[str, Any] = {"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST,
                           "config": GOOD_CONFIG, "layers": [GOOD_DESC]}
    for key, value in fields.items():
        if value is ...:
            obj.pop(key)
        else:
            obj[key] = value
    return raw(obj)


def index_with(**fields: Any) -> bytes:
    obj: dict[str, Any] = {"schemaVersion": 2, "mediaType": mt.OCI_INDEX,
                           "manifests": [GOOD_DESC | {"mediaType": mt.OCI_MANIFEST}]}
    for key, value in fields.items():
        if value is ...:
            obj.pop(key)
        else:
            obj[key] = value
    return raw(obj)


@pytest.mark.parametrize(("data", "message"), [
    (b"", "manifest: invalid JSON"),
    (b"not json", "manifest: invalid JSON"),
    (b'{"schemaVersion": 2,', "manifest: invalid JSON"),
    (b"[]", "manifest: want a JSON object, got array"),
    (b'"x"', "manifest: want a JSON object, got string"),
    (b"null", "manifest: want a JSON object, got null"),
    (b"\xff\xfe{}", "manifest: not UTF-8"),
    (b'{"schemaVersion": NaN}', "manifest: invalid JSON: NaN is not JSON"),
    (b"[" * 100_000 + b"]" * 100_000, "manifest: invalid JSON: nested too deeply"),
    (b'{"size": ' + b"9" * 5000 + b"}", "manifest: invalid JSON"),
    (b" " * (M.MAX_MANIFEST_SIZE + 1), "exceeds the limit of 4194304 bytes"),
    (manifest_with(schemaVersion=1), "manifest: schemaVersion: want 2, got 1 .Docker schema 1"),
    (manifest_with(schemaVersion=3), "manifest: schemaVersion: want 2, got 3"),
    (manifest_with(schemaVersion="2"), "manifest: schemaVersion: want an integer, got string"),
    (manifest_with(schemaVersion=2.0), "manifest: schemaVersion: want an integer, got number"),
    (manifest_with(schemaVersion=True), "manifest: schemaVersion: want an integer, got bool"),
    (manifest_with(schemaVersion=...), "manifest: schemaVersion: required field missing"),
    (manifest_with(mediaType=mt.OCI_INDEX), "manifest: mediaType: .*is not one of"),
    (manifest_with(mediaType="bogus"), "manifest: mediaType: invalid media type 'bogus'"),
    (manifest_with(mediaType=7), "manifest: mediaType: want a string, got number"),
    (manifest_with(config=...), "manifest: config: required field missing"),
    (manifest_with(config=None), "manifest: config: required field missing"),
    (manifest_with(config=[]), "manifest: config: want a JSON object, got array"),
    (manifest_with(config=GOOD_CONFIG | {"digest": "sha256:x"}), "manifest: config.digest"),
    (manifest_with(config=GOOD_CONFIG | {"digest": "crc32:" + "a" * 8}),
     "manifest: config.digest: unsupported digest algorithm 'crc32'"),
    (manifest_with(layers=...), "manifest: layers: required field missing"),
    (manifest_with(layers={}), "manifest: layers: want an array, got object"),
    (manifest_with(layers="x"), "manifest: layers: want an array, got string"),
    (manifest_with(layers=[1]), r"manifest: layers\[0\]: want a JSON object, got number"),
    (manifest_with(layers=[GOOD_DESC, GOOD_DESC | {"size": -1}]),
     r"manifest: layers\[1\].size: must be >= 0, got -1"),
    (manifest_with(layers=[GOOD_DESC | {"size": False}]),
     r"manifest: layers\[0\].size: want an integer, got boolean"),
    (manifest_with(layers=[GOOD_DESC | {"mediaType": "text"}]),
     r"manifest: layers\[0\].mediaType: invalid media type 'text'"),
    (manifest_with(layers=[GOOD_DESC | {"data": "e30="}]), r"manifest: layers\[0\].data: size"),
    (manifest_with(annotations={"a": 1}), r"manifest: annotations\['a'\]: want a string"),
    (manifest_with(annotations="a=b"), "manifest: annotations: want a JSON object"),
    (manifest_with(subject=5), "manifest: subject: want a JSON object"),
    (manifest_with(artifactType="nope"), "manifest: artifactType: invalid media type"),
    (manifest_with(manifests=[GOOD_DESC]), "manifest: has a 'manifests' field, which only an"),
])
def test_bad_manifests_are_refused_by_field(data, message):
    with pytest.raises(InvalidArgument, match=message):
        M.parse_manifest(data)


@pytest.mark.parametrize(("data", "message"), [
    (b"[1]", "index: want a JSON object, got array"),
    (index_with(schemaVersion=1), "index: schemaVersion: want 2, got 1"),
    (index_with(mediaType=mt.DOCKER_MANIFEST), "index: mediaType: .*is not one of"),
    (index_with(manifests=...), "index: manifests: required field missing"),
    (index_with(manifests={"a": 1}), "index: manifests: want an array, got object"),
    (index_with(manifests=[{"mediaType": mt.OCI_MANIFEST, "digest": D1}]),
     r"index: manifests\[0\].size: required field missing"),
    (index_with(manifests=[GOOD_DESC | {"platform": {"os": "linux"}}]),
     r"index: manifests\[0\].platform.architecture: required field missing"),
    (index_with(manifests=[GOOD_DESC | {"platform": {"os": "linux", "architecture": ""}}]),
     r"index: manifests\[0\].platform.architecture: must not be empty"),
    (index_with(layers=[GOOD_DESC]), "index: has a 'layers' field, which only an image manif"),
    (index_with(config=GOOD_CONFIG), "index: has a 'config' field"),
    (b"{" * 10 + b" " * (M.MAX_MANIFEST_SIZE), "index: .* exceeds the limit"),
])
def test_bad_indexes_are_refused_by_field(data, message):
    with pytest.raises(InvalidArgument, match=message):
        M.parse_index(data)


@pytest.mark.parametrize(("call", "message"), [
    (lambda: M.parse_manifest(manifest_with(), mt.DOCKER_MANIFEST),
     "manifest: mediaType 'application/vnd.oci.image.manifest.v1\\+json' does not match the "
     "expected 'application/vnd.docker.distribution.manifest.v2\\+json'"),
    (lambda: M.parse_index(index_with(), mt.DOCKER_MANIFEST_LIST), "does not match the expected"),
    (lambda: M.parse_manifest(manifest_with(), mt.OCI_INDEX), "unsupported manifest media type"),
    (lambda: M.parse_index(index_with(), mt.OCI_MANIFEST), "unsupported index media type"),
    (lambda: M.parse(manifest_with(), mt.OCI_CONFIG), "unsupported manifest or index media"),
    (lambda: M.parse(manifest_with(), mt.OCI_INDEX), "does not match the expected"),
    (lambda: M.parse(manifest_with(mediaType=mt.OCI_CONFIG)), "neither a manifest nor an index"),
    (lambda: M.parse(manifest_with(mediaType=[1])), "mediaType: want a string, got array"),
    (lambda: M.parse(raw({"schemaVersion": 2})), "no mediaType, and neither manifests nor"),
    (lambda: M.parse(raw({"schemaVersion": 1, "fsLayers": []})), "Docker schema 1"),
    (lambda: M.parse(raw({"schemaVersion": 2, "manifests": [], "layers": [GOOD_DESC]})),
     "index: has a 'layers' field"),
    (lambda: M.parse(b"[]"), "manifest or index: want a JSON object, got array"),
    (lambda: M.parse("{}"), "manifest or index: want bytes, got str"),  # type: ignore[arg-type]
])
def test_media_types_must_agree(call, message):
    with pytest.raises(InvalidArgument, match=message):
        call()


# What we write validates against the OCI schemas

def test_manifest_index_and_descriptor_json_validate(oci_validate):
    m = oci_manifest()
    oci_validate(m.to_json(), "image-manifest-schema.json")
    oci_validate(M.parse_manifest(raw(docker_manifest_json())).to_json(),
                 "image-manifest-schema.json")
    full = Descriptor(mt.OCI_MANIFEST, D1, 3, urls=("https://x.example/b",),
                      annotations={"a": "b"}, platform=Platform("linux", "arm64", "v8"),
                      artifact_type="application/x.y", data=b"abc")
    oci_validate(full.to_json(), "content-descriptor.json")
    oci_validate(empty_descriptor(embed=True).to_json(), "content-descriptor.json")
    idx = M.parse_index(raw(docker_list_json()))
    oci_validate(idx.to_json(), "image-index-schema.json")
    artifact = M.Manifest(empty_descriptor(), (empty_descriptor(),), artifact_type="a/b",
                          subject=full, annotations={"k": "v"})
    oci_validate(artifact.to_json(), "image-manifest-schema.json")


def test_config_json_validates(oci_validate):
    config = {
        "created": "2024-05-01T10:20:30.123456789Z", "author": "a", "architecture": "arm",
        "variant": "v7", "os": "linux", "os.version": "1", "os.features": ["f"],
        "docker_version": "26.1.0",
        "config": {"User": "app", "ExposedPorts": {"80/tcp": {}}, "Env": ["A=b"],
                   "Entrypoint": ["/bin/sh"], "Cmd": None, "Volumes": {"/d": {}},
                   "WorkingDir": "/", "Labels": {"k": "v"}, "StopSignal": "SIGTERM",
                   "ArgsEscaped": False, "Healthcheck": {"Test": ["NONE"]}},
        "rootfs": {"type": "layers", "diff_ids": [D1, D2]},
        "history": [{"created": "2024-05-01T10:20:30Z", "created_by": "x", "author": "a",
                     "comment": "c", "empty_layer": True}, {"created_by": "y"}],
    }
    parsed = M.parse_config(raw(config))
    oci_validate(parsed.to_json(), "config-schema.json")
    built = M.ImageConfig("amd64", "linux", (D1,), history=(M.History(created_by="x"),))
    oci_validate(built.to_json(), "config-schema.json")
    # The platform object's schema is the one inside an index's manifest descriptors.
    index = M.Index((Descriptor(mt.OCI_MANIFEST, D1, 1, platform=parsed.platform),))
    oci_validate(index.to_json(), "image-index-schema.json")


def test_the_schema_check_itself_refuses_a_bad_document(oci_validate):
    with pytest.raises(AssertionError, match="size"):
        oci_validate({"mediaType": "a/b", "digest": D1, "size": -1}, "content-descriptor.json")


# Property: anything we can build round-trips through bytes, and validates

_token = st.text(string.ascii_lowercase + string.digits, min_size=1, max_size=8)
media_types = st.one_of(
    st.sampled_from([*sorted(mt.LAYERS), mt.OCI_CONFIG, mt.DOCKER_CONFIG, mt.OCI_EMPTY]),
    st.builds(lambda a, b: f"{a}/{b}+json", _token, _token))
digests = st.one_of(
    st.binary(max_size=16).map(of_bytes),
    st.binary(max_size=16).map(lambda b: of_bytes(b, "sha512")))
texts = st.text(max_size=12)
annotations = st.dictionaries(st.text(min_size=1, max_size=10), texts, max_size=3)
platforms_st = st.builds(
    Platform, os=_token, architecture=_token, variant=st.none() | _token,
    os_version=st.none() | _token, os_features=st.lists(_token, max_size=2).map(tuple))


@st.composite
def descriptors(draw: st.DrawFn, with_platform: bool = False) -> Descriptor:
    data = draw(st.none() | st.binary(max_size=20))
    if data is not None:
        digest, size = of_bytes(data), len(data)
    else:
        digest, size = draw(digests), draw(st.integers(0, 2**63 - 1))
    return Descriptor(
        media_type=draw(media_types), digest=digest, size=size,
        urls=tuple(draw(st.lists(_token.map(lambda t: f"https://{t}.example/b"), max_size=2))),
        annotations=draw(annotations),
        platform=draw(st.none() | platforms_st) if with_platform else None,
        artifact_type=draw(st.none() | media_types), data=data)


manifests = st.builds(
    M.Manifest, config=descriptors(), layers=st.lists(descriptors(), min_size=1, max_size=3),
    media_type=st.sampled_from(sorted(mt.MANIFESTS)), subject=st.none() | descriptors(),
    annotations=annotations, artifact_type=st.none() | media_types)
indexes = st.builds(
    M.Index, manifests=st.lists(descriptors(with_platform=True), max_size=3),
    media_type=st.sampled_from(sorted(mt.INDEXES)), subject=st.none() | descriptors(),
    annotations=annotations, artifact_type=st.none() | media_types)

_property = settings(max_examples=150, deadline=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture])


@_property
@given(doc=st.one_of(manifests, indexes))
def test_random_documents_round_trip_through_bytes(doc, oci_validate):
    data = doc.to_bytes()
    parsed = M.parse(data, digest=of_bytes(data))
    assert parsed == doc
    assert parsed.to_bytes() == data
    typed = M.parse_manifest if isinstance(doc, M.Manifest) else M.parse_index
    assert typed(data, doc.media_type) == doc
    schema = ("image-manifest-schema.json" if isinstance(doc, M.Manifest)
              else "image-index-schema.json")
    oci_validate(doc.to_json(), schema)


@_property
@given(data=st.binary(max_size=200) | st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["schemaVersion", "mediaType", "config", "layers", "manifests",
                         "size", "digest", "platform", "annotations"]), inner, max_size=4),
    max_leaves=12).map(lambda o: json.dumps(o).encode()))
def test_any_input_either_parses_or_is_invalid_argument(data):
    try:
        M.parse(data)
    except InvalidArgument:
        pass
