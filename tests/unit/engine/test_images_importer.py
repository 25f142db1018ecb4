"""`docker import`: the changes it applies and the archive it hands the supervisor."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile

import pytest

from dockyard.engine.errors import InvalidParameter
from dockyard.engine.images.importer import apply_changes, build_archive


def test_changes_as_dockerfile_instructions():
    config = apply_changes(['CMD ["/bin/sh", "-c", "x"]', "ENTRYPOINT run me",
                            "ENV A=1 B=2", "ENV C 3", "WORKDIR /w", "USER u",
                            "LABEL k=v", "EXPOSE 80 53/udp"])
    assert config["Cmd"] == ["/bin/sh", "-c", "x"]
    assert config["Entrypoint"] == ["/bin/sh", "-c", "run me"]
    assert config["Env"] == ["A=1", "B=2", "C=3"]
    assert config["WorkingDir"] == "/w" and config["User"] == "u"
    assert config["Labels"] == {"k": "v"}
    assert config["ExposedPorts"] == {"80/tcp": {}, "53/udp": {}}


def test_an_unknown_change_is_refused():
    with pytest.raises(InvalidParameter, match="RUN is not a valid change command"):
        apply_changes(["RUN true"])


def rootfs() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("etc/hostname")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"box"))
    return buf.getvalue()


def test_a_gzipped_rootfs_becomes_a_one_layer_docker_save_archive(tmp_path):
    plain = rootfs()
    body = tmp_path / "body"
    body.write_bytes(gzip.compress(plain))
    out = io.BytesIO()
    image_id = build_archive(body, out, repo_tag="docker.io/library/x:1", message="",
                             changes=["CMD /x"])
    out.seek(0)
    with tarfile.open(fileobj=out) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))
        config_bytes = tar.extractfile(manifest[0]["Config"]).read()
        layer = tar.extractfile(manifest[0]["Layers"][0]).read()
    assert image_id == "sha256:" + hashlib.sha256(config_bytes).hexdigest()
    assert manifest[0]["RepoTags"] == ["docker.io/library/x:1"] and layer == plain
    config = json.loads(config_bytes)
    assert config["rootfs"]["diff_ids"] == ["sha256:" + hashlib.sha256(plain).hexdigest()]
    assert config["history"][0]["comment"] == "Imported from -"
    assert config["config"]["Cmd"] == ["/bin/sh", "-c", "/x"]


def test_what_is_not_a_tarball_is_refused(tmp_path):
    body = tmp_path / "body"
    body.write_bytes(b"garbage" * 200)
    with pytest.raises(InvalidParameter):
        build_archive(body, io.BytesIO(), repo_tag=None, message="", changes=[])
