"""Registry credentials from the docker config, as X-Registry-Auth carries them."""

from __future__ import annotations

import base64
import json

from dockyard.client import auth


def test_credentials_are_found_by_registry_and_round_trip(tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    auth.store("localhost:5000", "me", "secret")
    doc = json.loads((tmp_path / "config.json").read_text())
    assert base64.b64decode(doc["auths"]["localhost:5000"]["auth"]) == b"me:secret"
    assert auth.credentials("localhost:5000") == {
        "serveraddress": "localhost:5000", "username": "me", "password": "secret"}
    header = auth.registry_auth_header("localhost:5000/app:1")["X-Registry-Auth"]
    assert json.loads(base64.urlsafe_b64decode(header))["username"] == "me"
    assert auth.erase("localhost:5000") and auth.credentials("localhost:5000") is None


def test_docker_hub_images_use_the_index_address(tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    assert auth.registry_of("busybox") == auth.INDEX_SERVER
    assert auth.registry_of("docker.io/me/x") == auth.INDEX_SERVER
    assert auth.registry_of("ghcr.io/me/x") == "ghcr.io"
    header = auth.registry_auth_header("busybox")["X-Registry-Auth"]
    assert json.loads(base64.urlsafe_b64decode(header)) == {}
