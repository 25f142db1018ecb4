"""`dockyard-registry serve` against the clients people use: skopeo copies our saved busybox
in and out (docker archive -> registry -> OCI layout), the reference dockerd pulls from it
and pushes back to it, our client pulls what dockerd pushed; and our server serves a tree
that Debian's docker-registry wrote."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from dockyard.distribution.transfer import pull
from dockyard.image.library import ImageLibrary
from tests.refregistry import free_port, ref_registry
from tests.refregistry import unavailable as registry_unavailable
from tests.waiting import wait_http

pytestmark = [pytest.mark.interop, pytest.mark.root]

REPO = Path(__file__).resolve().parents[2]


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (scripts/install.sh installs it)")
    return path


def run(*args: str, timeout: float = 300) -> str:
    done = subprocess.run(args, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 0, f"{' '.join(args)}: {done.stderr}"
    return done.stdout


@contextlib.contextmanager
def our_registry(root: Path) -> Iterator[str]:
    """`dockyard-registry serve` on a free port; yields its host:port."""
    launcher = REPO / ".venv" / "bin" / "dockyard-registry"
    cmd = [str(launcher)] if launcher.exists() else [sys.executable, "-m",
                                                     "dockyard.registry.main"]
    host = f"127.0.0.1:{free_port()}"
    log = root.parent / f"{root.name}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([*cmd, "serve", "--addr", host, "--root", str(root)],
                                stdout=out, stderr=out, stdin=subprocess.DEVNULL,
                                env={**os.environ, "PYTHONPATH": str(REPO / "src")})
    try:
        wait_http(f"http://{host}/v2/", proc, what="dockyard-registry",
                  logs=lambda: log.read_text(errors="replace"))
        yield host
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def busybox_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("busybox")
    image = [str(REPO / ".venv" / "bin" / "dockyard-image"), "--root", str(work / "lib")]
    run(*image, "bootstrap")
    run(*image, "save", "-o", str(work / "busybox.tar"), "busybox:latest")
    return work / "busybox.tar"


def test_skopeo_copies_through_our_registry(tmp_path: Path, busybox_archive: Path) -> None:
    skopeo = tool("skopeo")
    with our_registry(tmp_path / "root") as host:
        run(skopeo, "--insecure-policy", "copy", "--dest-tls-verify=false",
            f"docker-archive:{busybox_archive}", f"docker://{host}/x/busybox:v1")
        run(skopeo, "--insecure-policy", "copy", "--src-tls-verify=false",
            f"docker://{host}/x/busybox:v1", f"oci:{tmp_path / 'oci'}:v1")
        info = json.loads(run(skopeo, "inspect", "--tls-verify=false",
                              f"docker://{host}/x/busybox:v1"))
        assert info["Name"] == f"{host}/x/busybox" and info["RepoTags"] == ["v1"]
        index = json.loads((tmp_path / "oci" / "index.json").read_text())
        assert index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"] == "v1"
        # a second copy to another repository reuses the blobs (mount or exists)
        run(skopeo, "--insecure-policy", "copy", "--src-tls-verify=false",
            "--dest-tls-verify=false", f"docker://{host}/x/busybox:v1",
            f"docker://{host}/y/busybox:v2")
        with urllib.request.urlopen(f"http://{host}/v2/_catalog") as r:
            assert json.loads(r.read()) == {"repositories": ["x/busybox", "y/busybox"]}


def test_dockerd_pulls_and_pushes(tmp_path: Path, busybox_archive: Path) -> None:
    from tests import refdocker

    reason = refdocker.unavailable()
    if reason:
        pytest.skip(reason)
    skopeo = tool("skopeo")
    with our_registry(tmp_path / "root") as host:
        run(skopeo, "--insecure-policy", "copy", "--dest-tls-verify=false",
            f"docker-archive:{busybox_archive}", f"docker://{host}/x/busybox:v1")
        with refdocker.ref_dockerd(tmp_path) as ref:
            ref.docker("pull", f"{host}/x/busybox:v1")
            ref.docker("tag", f"{host}/x/busybox:v1", f"{host}/back/busybox:v2")
            ref.docker("push", f"{host}/back/busybox:v2")
            pushed = ref.docker("image", "inspect", "--format", "{{json .RepoDigests}}",
                                f"{host}/back/busybox:v2").stdout
        assert f"{host}/back/busybox@sha256:" in pushed

        async def ours() -> None:
            with ImageLibrary(tmp_path / "lib") as lib:
                async with aiohttp.ClientSession() as s:
                    got = await pull(lib, f"{host}/back/busybox:v2", session=s, unpack=False)
                assert got.target.digest in pushed
        asyncio.run(ours())


def test_we_serve_a_tree_docker_registry_wrote(tmp_path: Path,
                                               busybox_archive: Path) -> None:
    skopeo = tool("skopeo")
    reason = registry_unavailable()
    if reason:
        pytest.skip(reason)
    with ref_registry(tmp_path) as reg:
        run(skopeo, "--insecure-policy", "copy", "--dest-tls-verify=false",
            f"docker-archive:{busybox_archive}", f"docker://{reg.host}/ref/busybox:v1")
        want = json.loads(run(skopeo, "inspect", "--tls-verify=false",
                              f"docker://{reg.host}/ref/busybox:v1"))["Digest"]
        shutil.copytree(reg.root, tmp_path / "tree", symlinks=True)
    with our_registry(tmp_path / "tree") as host:
        run(skopeo, "--insecure-policy", "copy", "--src-tls-verify=false",
            f"docker://{host}/ref/busybox:v1", f"oci:{tmp_path / 'oci'}:v1")
        got = json.loads(run(skopeo, "inspect", "--tls-verify=false",
                             f"docker://{host}/ref/busybox:v1"))["Digest"]
        assert got == want
