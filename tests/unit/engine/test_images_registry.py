"""The registry settings and credentials a pull or push carries to the supervisor."""

from __future__ import annotations

import base64
import json

import pytest

from dockyard.engine.config import DaemonConfig
from dockyard.engine.errors import InvalidParameter
from dockyard.engine.images.registry import (
    auth_configs,
    decode_auth_header,
    host_of,
    registry_config,
)


def header(doc) -> str:
    return base64.urlsafe_b64encode(json.dumps(doc).encode()).decode().rstrip("=")


def test_daemon_settings_become_the_transfer_registry_config():
    cfg = DaemonConfig(registry_mirrors=["http://m:5000"], insecure_registries=["r:5000"],
                       registry_hosts={"docker.io": {"redirect": "127.0.0.1:5000",
                                                     "insecure": True}})
    rc = registry_config(cfg)
    assert list(rc.registry_mirrors) == ["http://m:5000"]
    assert list(rc.insecure_registries) == ["r:5000"]
    h = rc.hosts["docker.io"]
    assert h.redirect == "127.0.0.1:5000" and h.insecure and not h.fallback


def test_auth_header_is_base64url_json_padding_optional():
    assert decode_auth_header(header({"username": "u"})) == {"username": "u"}
    assert decode_auth_header(None) == {} and decode_auth_header("") == {}
    with pytest.raises(InvalidParameter):
        decode_auth_header("!!!")


def test_server_addresses_name_hosts():
    assert host_of("https://index.docker.io/v1/") == "docker.io"
    assert host_of("http://127.0.0.1:5000") == "127.0.0.1:5000"
    assert host_of("reg.example:5000/v2/") == "reg.example:5000"


def test_credentials_go_to_the_registry_and_where_it_is_redirected():
    cfg = DaemonConfig(registry_hosts={"docker.io": {"redirect": "http://127.0.0.1:5000"}})
    got = auth_configs({"username": "u", "password": "p"}, "docker.io", cfg)
    assert {"docker.io", "127.0.0.1:5000", "registry-1.docker.io"} <= set(got)
    assert got["docker.io"].username == "u" and got["docker.io"].password == "p"
    assert auth_configs({}, "docker.io", cfg) == {}


def test_a_pulled_image_for_another_platform_is_named_as_docker_says():
    from dockyard.api.types import platform_pb2
    from dockyard.engine.images.transfers import parse_platform, platform_mismatch

    assert platform_mismatch(None, {"os": "linux", "architecture": "amd64"}) == ""
    want = parse_platform("linux/arm64")
    assert platform_mismatch(want, {"os": "linux", "architecture": "amd64"}) == \
        "wanted linux/arm64, actual: linux/amd64"
    assert platform_mismatch(platform_pb2.Platform(os="linux"),
                             {"os": "linux", "architecture": "amd64"}) == ""
    with pytest.raises(InvalidParameter):
        parse_platform("linux//x")
