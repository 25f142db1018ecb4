"""The reference-daemon harness (tests/refdocker.py): Debian's dockerd loads an image archive
built here by hand, lists, inspects and saves it; afterwards nothing of it is left on the
host: no process, no mount, no directory, no cgroup, no interface, rule or key file."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.refdocker import (
    cgroup_dirs,
    mounts_under,
    processes_naming,
    ref_dockerd,
    skip_unless_available,
)

pytestmark = [pytest.mark.root, pytest.mark.interop]

BUSYBOX = Path("/bin/busybox")
TAG = "dyref/busybox:smoke"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def busybox_layer() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        def add(name: str, kind: bytes, mode: int, data: bytes = b"", link: str = "") -> None:
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.mtime, info.linkname = kind, mode, 1_700_000_000, link
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data else None)

        add("bin", tarfile.DIRTYPE, 0o755)
        add("bin/busybox", tarfile.REGTYPE, 0o755, BUSYBOX.read_bytes())
        add("bin/sh", tarfile.SYMTYPE, 0o777, link="busybox")
    return buf.getvalue()


def docker_save_archive(path: Path, layer: bytes) -> str:
    """`docker save`'s format by hand: <id>/layer.tar (gzip, as docker load accepts), the
    config <sha256>.json, manifest.json and repositories. Returns the layer's diff_id."""
    diff_id = sha256(layer)
    config = json.dumps({
        "architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z",
        "config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/bin"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": "2024-01-01T00:00:00Z", "created_by": "busybox-static"}],
    }).encode()
    config_name = sha256(config).split(":")[1] + ".json"
    layer_dir = diff_id.split(":")[1]
    repo, tag = TAG.split(":")
    members = {
        f"{layer_dir}/VERSION": b"1.0",
        f"{layer_dir}/json": json.dumps({"id": layer_dir}).encode(),
        f"{layer_dir}/layer.tar": gzip.compress(layer, mtime=0),
        config_name: config,
        "manifest.json": json.dumps([{"Config": config_name, "RepoTags": [TAG],
                                      "Layers": [f"{layer_dir}/layer.tar"]}]).encode(),
        "repositories": json.dumps({repo: {tag: layer_dir}}).encode(),
    }
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return diff_id


def host_state() -> dict[str, object]:
    """What dockerd would change on the host if its flags did not stop it."""
    def out(*args: str) -> str:
        if shutil.which(args[0]) is None:
            return ""
        return subprocess.run(args, capture_output=True, text=True, timeout=30).stdout

    return {
        "links": sorted(line.split()[0] for line in out("ip", "-br", "link").splitlines()),
        "nftables": out("nft", "list", "ruleset"),
        "ip_forward": Path("/proc/sys/net/ipv4/ip_forward").read_text(),
        "/etc/docker/key.json": Path("/etc/docker/key.json").exists(),
        "/opt/containerd": Path("/opt/containerd").exists(),
        "/run/containerd": Path("/run/containerd").exists(),
    }


@pytest.fixture
def work() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="dyt-refdocker-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def test_reference_dockerd_loads_lists_saves_and_leaves_nothing(work: Path) -> None:
    skip_unless_available()
    if not BUSYBOX.exists():
        pytest.skip("busybox-static is not installed (scripts/install.sh installs it)")
    layer = busybox_layer()
    diff_id = docker_save_archive(work / "in.tar", layer)
    before = host_state()

    with ref_dockerd(work) as ref:
        owned = ref.owned_paths
        cgroup_parent = ref.cgroup_parent
        assert ref.host == f"unix://{ref.socket}"
        assert str(work) in str(ref.data_root)

        loaded = ref.docker("load", "-i", str(work / "in.tar")).stdout
        assert f"Loaded image: {TAG}" in loaded
        listed = ref.docker("images", "--format", "{{.Repository}}:{{.Tag}}").stdout.split()
        assert listed == [TAG]
        rootfs = json.loads(ref.docker("image", "inspect", "--format", "{{json .RootFS}}",
                                       TAG).stdout)
        assert rootfs == {"Type": "layers", "Layers": [diff_id]}

        ref.docker("save", "-o", str(work / "out.tar"), TAG)
        with tarfile.open(work / "out.tar") as tar:
            [manifest] = json.load(tar.extractfile("manifest.json"))
            assert manifest["RepoTags"] == [TAG]
            [layer_path] = manifest["Layers"]
            saved = tar.extractfile(layer_path).read()
            config = json.load(tar.extractfile(manifest["Config"]))
        assert sha256(saved) == diff_id  # docker save writes the layer uncompressed
        assert config["rootfs"]["diff_ids"] == [diff_id]

        running = {pid for pid, _ in processes_naming(owned)}
        assert {ref.dockerd.pid, ref.containerd.pid} <= running
        assert mounts_under(ref.data_root)  # dockerd bind-mounts its root on itself

    with pytest.raises(RuntimeError, match="stopped"):
        ref.docker("images")
    assert processes_naming(owned) == []
    for path in owned:
        assert mounts_under(path) == []
        assert not path.exists()
    assert cgroup_dirs(cgroup_parent) == []
    assert host_state() == before
