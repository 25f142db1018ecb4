"""Image configs: typed fields, Docker's extra keys kept, and malformed configs refused."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from dockyard.image.config import MAX_CONFIG_SIZE, History, ImageConfig, parse_config
from dockyard.image.digest import of_bytes
from dockyard.image.errors import DigestMismatch, InvalidArgument
from dockyard.image.platforms import Platform

L1, L2 = ("sha256:" + c * 64 for c in "ab")


def docker_config() -> dict[str, Any]:
    """Shaped like what `docker build` writes, with the keys the OCI spec does not name."""
    return {
        "architecture": "arm",
        "variant": "v7",
        "os": "linux",
        "created": "2024-05-01T10:20:30.123456789Z",
        "author": "someone",
        "docker_version": "26.1.0",
        "container_config": {"Hostname": "", "Cmd": None},
        "config": {
            "Hostname": "", "User": "app", "ExposedPorts": {"80/tcp": {}},
            "Env": ["PATH=/usr/bin", "A=b"], "Entrypoint": ["/bin/sh", "-c"],
            "Cmd": ["run"], "Volumes": {"/data": {}}, "WorkingDir": "/srv",
            "Labels": {"org.example": "1"}, "StopSignal": "SIGTERM", "ArgsEscaped": True,
            "OnBuild": None, "Shell": ["/bin/sh", "-c"], "StopTimeout": 10,
            "Healthcheck": {"Test": ["CMD", "true"], "Interval": 30_000_000_000, "Retries": 3},
        },
        "rootfs": {"type": "layers", "diff_ids": [L1, L2]},
        "history": [
            {"created": "2024-05-01T10:20:00Z", "created_by": "ADD file:x in /"},
            {"created": "2024-05-01T10:20:30+02:00", "created_by": "ENV A=b",
             "empty_layer": True, "comment": "buildkit.dockerfile.v0"},
            {"created_by": "RUN make", "author": "someone"},
        ],
    }


def raw(obj: object) -> bytes:
    return json.dumps(obj).encode()


def test_docker_config_parses_into_typed_fields():
    c = parse_config(raw(docker_config()))
    assert (c.os, c.architecture, c.variant) == ("linux", "arm", "v7")
    assert c.platform == Platform("linux", "arm", "v7")
    assert c.rootfs_diff_ids == (L1, L2)
    assert c.created == "2024-05-01T10:20:30.123456789Z"
    assert c.config["Env"] == ["PATH=/usr/bin", "A=b"]
    assert c.history[1] == History("2024-05-01T10:20:30+02:00", "ENV A=b", None,
                                   "buildkit.dockerfile.v0", True)
    assert [h.empty_layer for h in c.history] == [False, True, False]


def test_round_trip_keeps_keys_we_do_not_model():
    obj = docker_config()
    c = parse_config(raw(obj))
    assert c.to_json() == obj
    again = parse_config(c.to_bytes())
    assert again == c and again.to_bytes() == c.to_bytes()


def test_a_changed_field_is_written_over_the_raw_object():
    c = parse_config(raw(docker_config()))
    moved = dataclasses.replace(c, architecture="arm64", variant=None,
                                rootfs_diff_ids=(L2,), history=())
    out = moved.to_json()
    assert out["architecture"] == "arm64" and "variant" not in out and "history" not in out
    assert out["rootfs"] == {"type": "layers", "diff_ids": [L2]}
    assert out["docker_version"] == "26.1.0"


def test_a_config_built_in_code_writes_only_what_it_has():
    c = ImageConfig("amd64", "linux", (L1,))
    assert c.to_json() == {"architecture": "amd64", "os": "linux",
                           "rootfs": {"type": "layers", "diff_ids": [L1]}}
    assert parse_config(c.to_bytes()) == c


def test_equality_ignores_the_raw_object():
    a = parse_config(raw(docker_config()))
    b = parse_config(raw(docker_config() | {"unknown": 1}))
    assert a == b
    assert parse_config(b.to_bytes()).raw["unknown"] == 1


def test_configs_are_hashable():
    assert len({parse_config(raw(docker_config())), parse_config(raw(docker_config()))}) == 1


def test_os_fields_and_null_runtime_values():
    obj = {"architecture": "amd64", "os": "windows", "os.version": "10.0.17763.1",
           "os.features": ["win32k"], "config": {"Cmd": None, "Env": None, "Labels": None,
                                                 "Entrypoint": None, "Volumes": None},
           "rootfs": {"type": "layers", "diff_ids": []}, "history": None}
    c = parse_config(raw(obj))
    assert c.platform == Platform("windows", "amd64", None, "10.0.17763.1", ("win32k",))
    assert c.history == () and c.config["Cmd"] is None


def test_a_lone_string_command_is_a_one_word_list_as_docker_reads_it():
    obj = docker_config()
    obj["config"]["Cmd"] = "serve"
    assert parse_config(raw(obj)).config["Cmd"] == ["serve"]


def test_digest_is_verified_when_given():
    data = raw(docker_config())
    assert parse_config(data, of_bytes(data)).architecture == "arm"
    with pytest.raises(DigestMismatch, match="digest mismatch"):
        parse_config(data, L1)


def with_(**fields: Any) -> bytes:
    obj = docker_config()
    for key, value in fields.items():
        key = key.replace("_", ".") if key.startswith("os_") else key
        if value is ...:
            obj.pop(key)
        else:
            obj[key] = value
    return raw(obj)


def with_runtime(**fields: Any) -> bytes:
    obj = docker_config()
    obj["config"].update(fields)
    return raw(obj)


@pytest.mark.parametrize(("data", "message"), [
    (b"[]", "image config: want a JSON object, got array"),
    (b"{,}", "image config: invalid JSON"),
    (b" " * (MAX_CONFIG_SIZE + 1), "image config: .* exceeds the limit"),
    (with_(architecture=...), "image config: architecture: required field missing"),
    (with_(architecture=""), "image config: architecture: must not be empty"),
    (with_(os=5), "image config: os: want a string, got number"),
    (with_(variant=7), "image config: variant: want a string"),
    (with_(os_features="x"), "image config: os.features: want an array"),
    (with_(created="yesterday"), "image config: created: invalid RFC 3339 date-time"),
    (with_(created="2024-05-01 10:20:30"), "invalid RFC 3339 date-time"),
    (with_(author=["x"]), "image config: author: want a string"),
    (with_(rootfs=...), "image config: rootfs: required field missing"),
    (with_(rootfs=[]), "image config: rootfs: want a JSON object, got array"),
    (with_(rootfs={"type": "layers+base", "diff_ids": []}),
     "image config: rootfs.type: want \"layers\", got 'layers\\+base'"),
    (with_(rootfs={"diff_ids": []}), "image config: rootfs.type: required field missing"),
    (with_(rootfs={"type": "layers"}), "image config: rootfs.diff_ids: required field missing"),
    (with_(rootfs={"type": "layers", "diff_ids": "x"}), "rootfs.diff_ids: want an array"),
    (with_(rootfs={"type": "layers", "diff_ids": ["sha256:1"]}),
     r"image config: rootfs.diff_ids\[0\]: invalid sha256 digest"),
    (with_(history={}), "image config: history: want an array, got object"),
    (with_(history=[5]), r"image config: history\[0\]: want a JSON object, got number"),
    (with_(history=[{"empty_layer": "yes"}]), r"history\[0\].empty_layer: want a boolean"),
    (with_(history=[{"created": "x"}]), r"history\[0\].created: invalid RFC 3339"),
    (with_(config=[]), "image config: config: want a JSON object, got array"),
    (with_runtime(User=0), "image config: config.User: want a string, got number"),
    (with_runtime(Env="A=b"), "image config: config.Env: want an array of strings"),
    (with_runtime(Env=[1]), r"image config: config.Env\[0\]: want a string"),
    (with_runtime(Cmd={"a": 1}), "config.Cmd: want an array of strings, got object"),
    (with_runtime(Entrypoint=[None]), r"config.Entrypoint\[0\]: want a string, got null"),
    (with_runtime(ExposedPorts=["80/tcp"]), "config.ExposedPorts: want a JSON object"),
    (with_runtime(ExposedPorts={"80/tcp": 1}), r"config.ExposedPorts\['80/tcp'\]: want a JSON"),
    (with_runtime(Volumes={"/d": "x"}), r"config.Volumes\['/d'\]: want a JSON object"),
    (with_runtime(Labels={"a": 1}), r"config.Labels\['a'\]: want a string"),
    (with_runtime(ArgsEscaped="true"), "config.ArgsEscaped: want a boolean"),
    (with_runtime(Healthcheck={"Retries": "3"}), "config.Healthcheck.Retries: want an integer"),
    (with_runtime(Healthcheck={"Test": "true"}), "config.Healthcheck.Test: want an array"),
    (with_runtime(StopTimeout=1.5), "config.StopTimeout: want an integer"),
])
def test_bad_configs_are_refused_by_field(data, message):
    with pytest.raises(InvalidArgument, match=message):
        parse_config(data)
