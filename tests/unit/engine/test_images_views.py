"""GET /images/json, /images/{name}/json and /history documents, and the list filters."""

from __future__ import annotations

import json

import pytest

from dockyard.engine.errors import InvalidParameter
from dockyard.engine.images import filters, views
from dockyard.engine.images.service import EngineImage
from dockyard.image.config import ImageConfig
from dockyard.image.descriptor import Descriptor
from dockyard.image.digest import Digest
from dockyard.image.library import Resolved
from dockyard.image.manifest import parse_manifest

L1, L2 = "sha256:" + "1" * 64, "sha256:" + "2" * 64
CFG = "sha256:" + "c" * 64
TARGET = "sha256:" + "f" * 64
MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"


def make_image(names=("docker.io/library/busybox:latest",), labels=None,
               created="2024-05-01T10:00:00.123456789Z") -> EngineImage:
    config = {"architecture": "amd64", "os": "linux", "created": created,
              "config": {"Cmd": ["sh"], "Labels": labels},
              "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "d" * 64,
                                                        "sha256:" + "e" * 64]},
              "history": [{"created": "2024-05-01T09:00:00Z", "created_by": "ADD base"},
                          {"created": "2024-05-01T09:30:00Z", "created_by": "ENV x=1",
                           "empty_layer": True},
                          {"created": created, "created_by": "RUN make"}]}
    man = {"schemaVersion": 2, "mediaType": MANIFEST_TYPE,
           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                      "digest": CFG, "size": 400},
           "layers": [{"mediaType": LAYER_TYPE, "digest": L1, "size": 1000},
                      {"mediaType": LAYER_TYPE, "digest": L2, "size": 234}]}
    target = Descriptor(MANIFEST_TYPE, Digest(TARGET), 500)
    resolved = Resolved(target, parse_manifest(json.dumps(man).encode(), MANIFEST_TYPE),
                        ImageConfig.from_json(config))
    return EngineImage(CFG, target, resolved, tuple(names))


def test_summary_has_dockers_fields():
    doc = views.summary(make_image())
    assert doc["Id"] == CFG and doc["RepoTags"] == ["busybox:latest"]
    assert doc["RepoDigests"] == [f"busybox@{TARGET}"]
    assert doc["Size"] == 1234 and doc["Created"] == 1714557600
    assert doc["Containers"] == -1 and doc["ParentId"] == ""


def test_inspect_document_and_old_api_fields():
    doc = views.inspect(make_image())
    assert doc["Created"] == "2024-05-01T10:00:00.123456789Z"
    assert doc["RootFS"] == {"Type": "layers", "Layers": ["sha256:" + "d" * 64,
                                                         "sha256:" + "e" * 64]}
    assert doc["Config"] == {"Cmd": ["sh"], "Labels": None}
    assert "VirtualSize" not in doc and doc["Descriptor"]["digest"] == TARGET
    old = views.inspect(make_image(), (1, 43))
    assert old["VirtualSize"] == 1234 and old["Config"]["Hostname"] == ""


def test_history_is_newest_first_with_layer_sizes():
    rows = views.history(make_image())
    assert [r["CreatedBy"] for r in rows] == ["RUN make", "ENV x=1", "ADD base"]
    assert [r["Size"] for r in rows] == [234, 0, 1000]
    assert rows[0]["Id"] == CFG and rows[0]["Tags"] == ["busybox:latest"]
    assert rows[1]["Id"] == "<missing>" and rows[1]["Tags"] is None


def test_parse_time_takes_nanoseconds_and_zones():
    assert views.unix_seconds("1970-01-01T00:01:00.999999999Z") == 60
    assert views.unix_seconds("1970-01-01T01:00:00+01:00") == 0
    assert views.unix_seconds("garbage") == 0


def test_filters_dangling_label_reference_and_times():
    img = make_image(labels={"a": "1", "b": "2"})
    assert filters.matches(img, {"dangling": ["false"]})
    assert not filters.matches(img, {"dangling": ["true"]})
    assert filters.matches(make_image(names=(TARGET,)), {"dangling": ["true"]})
    assert not filters.matches(make_image(names=(f"docker.io/library/x@{TARGET}",)),
                               {"dangling": ["true"]})
    assert filters.matches(img, {"label": ["a", "b=2"]})
    assert not filters.matches(img, {"label": ["a=2"]})
    assert filters.matches(img, {"reference": ["busy*"]})
    assert filters.matches(img, {"reference": ["busybox:lat*"]})
    assert not filters.matches(img, {"reference": ["other"]})
    assert filters.matches(img, {}, before=1714557601)
    assert not filters.matches(img, {}, since=1714557600)
    with pytest.raises(InvalidParameter):
        filters.matches(img, {"dangling": ["maybe"]})


def test_until_takes_seconds_durations_and_rfc3339():
    assert filters.until_seconds("100.5") == 100.5
    assert filters.until_seconds("1h30m", now=10_000) == 10_000 - 5400
    assert filters.until_seconds("1970-01-01T00:00:10Z") == 10
    with pytest.raises(InvalidParameter):
        filters.until_seconds("soon")


def test_matching_names_are_familiar():
    img = make_image(names=("docker.io/library/busybox:latest", "docker.io/library/x:1"))
    assert filters.matching_names(img, ["x*"]) == ["x:1"]
