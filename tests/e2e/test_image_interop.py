"""Our archives and layouts against the reference tools: skopeo writes a layout we load; what
we save, skopeo inspects and copies, umoci unpacks, and Debian's dockerd loads."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard.image.archive.load import load
from dockyard.image.archive.save import save
from dockyard.image.imports import bootstrap
from dockyard.image.library import ImageLibrary
from tests.conformance.snapshot_trees import mounted, scratch_dir
from tests.integration.image.archives import docker_archive, layer_tar

pytestmark = [pytest.mark.root, pytest.mark.interop]

BUSYBOX = "docker.io/library/busybox:latest"


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} is not installed (scripts/install.sh installs it)")
    return path


def run(*args: str) -> str:
    done = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{' '.join(args)}: {done.stderr}"
    return done.stdout


@pytest.fixture
def work() -> Iterator[Path]:
    with scratch_dir("dyt-interop-") as path:
        yield path


@pytest.fixture
def lib(work: Path) -> Iterator[ImageLibrary]:
    with ImageLibrary(work / "lib") as library:
        yield library


def test_a_layout_skopeo_wrote_loads_and_unpacks(lib: ImageLibrary, work: Path) -> None:
    skopeo = need("skopeo")
    base = layer_tar({"etc/": None, "etc/a": b"a", "etc/b": b"b"})
    top = layer_tar({"etc/.wh.a": b"", "etc/c": b"c"})
    archive = docker_archive(work / "src.tar", [base, top], ["src:1"])
    run(skopeo, "--insecure-policy", "copy", f"docker-archive:{archive}",
        f"oci:{work / 'layout'}:v1")
    loaded = load(lib, work / "layout", base_name="example.com/from-skopeo")
    assert loaded.names == ["example.com/from-skopeo:v1"]
    [chain] = loaded.unpacked.values()
    key = "interop-view"
    try:
        with mounted(lib.snapshotter.view(key, chain), work) as root:
            assert sorted(p.name for p in (root / "etc").iterdir()) == ["b", "c"]
    finally:
        lib.snapshotter.remove(key)


def test_skopeo_inspects_and_copies_what_we_save(lib: ImageLibrary, work: Path) -> None:
    skopeo = need("skopeo")
    target = bootstrap(lib, unpack=False)
    save(lib, [BUSYBOX], work / "busybox.tar")
    info = json.loads(run(skopeo, "inspect", f"docker-archive:{work / 'busybox.tar'}"))
    config = lib.resolve(target).config
    assert info["Layers"] and info["Architecture"] == config.architecture
    assert info["Os"] == "linux"
    raw = json.loads(run(skopeo, "inspect", "--raw", f"oci-archive:{work / 'busybox.tar'}"))
    assert raw["config"]["digest"] == lib.resolve(target).manifest.config.digest
    run(skopeo, "--insecure-policy", "copy", f"docker-archive:{work / 'busybox.tar'}",
        f"oci:{work / 'copy'}:latest")
    assert (work / "copy" / "index.json").is_file()


def test_umoci_unpacks_our_layout(lib: ImageLibrary, work: Path) -> None:
    umoci = need("umoci")
    bootstrap(lib, unpack=False)
    (work / "layout").mkdir()
    save(lib, [BUSYBOX], work / "layout", oci=True)
    run(umoci, "unpack", "--image", f"{work / 'layout'}:latest", str(work / "bundle"))
    rootfs = work / "bundle" / "rootfs"
    assert (rootfs / "bin" / "busybox").stat().st_mode & 0o111
    assert (rootfs / "bin" / "sh").readlink() == Path("busybox")
    config = json.loads((work / "bundle" / "config.json").read_text())
    assert config["process"]["args"] == ["sh"]


def test_debian_dockerd_loads_what_we_save(lib: ImageLibrary, work: Path) -> None:
    from tests.refdocker import ref_dockerd, skip_unless_available

    skip_unless_available()
    target = bootstrap(lib, ["busybox:latest", "example.com/tools/box:1"], unpack=False)
    save(lib, [BUSYBOX, "example.com/tools/box:1"], work / "images.tar")
    config = lib.resolve(target).manifest.config.digest
    with ref_dockerd(work) as ref:
        out = ref.docker("load", "-i", str(work / "images.tar")).stdout
        assert "Loaded image: busybox:latest" in out
        assert "Loaded image: example.com/tools/box:1" in out
        inspect = json.loads(ref.docker("image", "inspect", "busybox:latest").stdout)[0]
        assert inspect["Id"] == config
        assert inspect["RootFS"]["Layers"] == list(lib.resolve(target).config.rootfs_diff_ids)
        assert inspect["Config"]["Cmd"] == ["sh"]
        ref.docker("save", "-o", str(work / "back.tar"), "busybox:latest")
    again = load(lib, work / "back.tar")
    assert again.names == [BUSYBOX]
    assert lib.resolve(lib.get(BUSYBOX).target).manifest.config.digest == config
