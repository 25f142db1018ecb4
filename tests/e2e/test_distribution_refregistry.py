"""Our distribution client against Debian's docker-registry on loopback: push what we
bootstrapped, pull it into another store, chunked uploads, cross-repository mounts, a
download resumed from a half-written ingest, and the spec's errors for what is not there."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from dockyard.distribution.client import Repository
from dockyard.distribution.errors import NotFound as RegistryNotFound
from dockyard.distribution.hosts import Endpoint, Redirect, RegistryHosts
from dockyard.distribution.transfer import pull, push
from dockyard.image.imports import bootstrap
from dockyard.image.library import ImageLibrary
from tests.conformance.snapshot_trees import scratch_dir
from tests.refregistry import RefRegistry, ref_registry, skip_unless_available

pytestmark = [pytest.mark.root, pytest.mark.interop]

BUSYBOX = "docker.io/library/busybox:latest"


@pytest.fixture
def work() -> Iterator[Path]:
    with scratch_dir("dyt-dist-") as path:
        yield path


@pytest.fixture
def registry(work: Path) -> Iterator[RefRegistry]:
    skip_unless_available()
    with ref_registry(work) as reg:
        yield reg


def run(coro_fn):  # type: ignore[no-untyped-def]
    async def main():  # type: ignore[no-untyped-def]
        async with aiohttp.ClientSession() as session:
            return await coro_fn(session)
    return asyncio.run(main())


def test_push_then_pull_into_another_store(work: Path, registry: RefRegistry) -> None:
    with ImageLibrary(work / "a") as a, ImageLibrary(work / "b") as b:
        target = bootstrap(a, unpack=False)
        dest = f"{registry.host}/tools/busybox:v1"
        events: list[tuple[str, int, int]] = []
        pushed = run(lambda s: push(a, BUSYBOX, dest, session=s,
                                    progress=lambda d, n, t: events.append((d, n, t))))
        assert pushed.digest == target.digest and events
        pulled = run(lambda s: pull(b, dest, session=s))
        assert pulled.name == dest and pulled.target.digest == target.digest
        assert b.snapshotter.stat(pulled.chain_id).kind == "committed"
        assert b.resolve(b.get(dest).target).config == a.resolve(target).config
        repo_tags = run(lambda s: Repository(s, Endpoint("http", registry.host),
                                             "tools/busybox").tags())
        assert repo_tags == ["v1"]
    if shutil.which("skopeo"):
        out = subprocess.run(["skopeo", "inspect", "--tls-verify=false", f"docker://{dest}"],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)["Digest"] == target.digest


def test_chunked_upload_and_cross_repository_mount(work: Path, registry: RefRegistry) -> None:
    with ImageLibrary(work / "a") as a:
        bootstrap(a, unpack=False)
        run(lambda s: push(a, BUSYBOX, f"{registry.host}/one/box:1", session=s,
                           chunk_size=64 << 10))
        run(lambda s: push(a, BUSYBOX, f"{registry.host}/two/box:1", session=s,
                           mount_from="one/box"))
        with ImageLibrary(work / "b") as b:
            pulled = run(lambda s: pull(b, f"{registry.host}/two/box:1", session=s,
                                        unpack=False))
            assert pulled.target == a.get(BUSYBOX).target


def test_an_interrupted_download_resumes(work: Path, registry: RefRegistry) -> None:
    with ImageLibrary(work / "a") as a, ImageLibrary(work / "b") as b:
        target = bootstrap(a, unpack=False)
        run(lambda s: push(a, BUSYBOX, f"{registry.host}/r/box:1", session=s))
        layer = a.resolve(target).manifest.layers[0]
        with a.content.reader_at(layer.digest) as r:
            half = r.read(layer.size // 2)
        with b.content.writer(f"fetch-{layer.digest}", expected=layer.digest,
                              total=layer.size) as w:
            w.write(half)  # as a download cut off halfway leaves it
        seen: list[int] = []
        run(lambda s: Repository(s, Endpoint("http", registry.host), "r/box").fetch_blob(
            layer, b.content, progress=lambda d, n, t: seen.append(n)))
        assert seen[0] > len(half) and seen[-1] == layer.size  # started where it stopped
        assert b.content.info(layer.digest).size == layer.size


def test_missing_tags_and_repositories_are_the_specs_errors(work: Path,
                                                            registry: RefRegistry) -> None:
    with ImageLibrary(work / "b") as b:
        with pytest.raises(RegistryNotFound, match="manifest unknown"):
            run(lambda s: pull(b, f"{registry.host}/nothing/here:v1", session=s))
        assert b.list() == [] and list(b.content.walk()) == []


def test_docker_io_redirected_to_a_loopback_registry(work: Path, registry: RefRegistry) -> None:
    """`busybox` means docker.io/library/busybox; a redirect without fallback sends every
    request to the loopback registry, so docker.io is never contacted."""
    hosts = RegistryHosts(redirects={"docker.io": Redirect(f"http://{registry.host}")})
    with ImageLibrary(work / "a") as a, ImageLibrary(work / "b") as b:
        target = bootstrap(a, unpack=False)
        run(lambda s: push(a, BUSYBOX, "busybox", session=s, hosts=hosts))
        pulled = run(lambda s: pull(b, "busybox", session=s, hosts=hosts))
        assert pulled.name == BUSYBOX and pulled.target.digest == target.digest
    assert (registry.root / "docker/registry/v2/repositories/library/busybox").is_dir()


def test_pulling_again_fetches_nothing_new(work: Path, registry: RefRegistry) -> None:
    with ImageLibrary(work / "a") as a, ImageLibrary(work / "b") as b:
        bootstrap(a, unpack=False)
        dest = f"{registry.host}/again/box:1"
        run(lambda s: push(a, BUSYBOX, dest, session=s))
        first = run(lambda s: pull(b, dest, session=s))
        fetched: list[str] = []
        second = run(lambda s: pull(b, dest, session=s,
                                    progress=lambda d, n, t: fetched.append(d)))
        assert second == first and fetched == []
        assert b.gc().content == []
