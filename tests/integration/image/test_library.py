"""The image library end to end, as root on real snapshotters: bootstrap, load, save,
import, unpack, names and garbage collection, and hostile archives."""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard.image import platforms
from dockyard.image.archive.load import load
from dockyard.image.archive.save import save
from dockyard.image.errors import DigestMismatch, InvalidArgument, NotFound
from dockyard.image.imports import bootstrap, import_rootfs
from dockyard.image.library import ImageLibrary
from tests.conformance.snapshot_trees import mounted, scratch_dir, tree
from tests.integration.image.archives import docker_archive, layer_tar, oci_layout, sha256
from tests.schemas import validate

pytestmark = pytest.mark.root

BUSYBOX = "docker.io/library/busybox:latest"


@pytest.fixture
def work() -> Iterator[Path]:
    with scratch_dir("dyt-library-") as path:
        yield path


@pytest.fixture(params=["overlayfs", "native"])
def lib(request: pytest.FixtureRequest, work: Path) -> Iterator[ImageLibrary]:
    with ImageLibrary(work / "lib", request.param) as library:
        yield library


def view(lib: ImageLibrary, chain: str, under: Path) -> dict[str, tuple]:
    key = f"view-{uuid.uuid4().hex[:8]}"
    try:
        with mounted(lib.snapshotter.view(key, chain), under) as root:
            return tree(root, times=False)
    finally:
        lib.snapshotter.remove(key)


def oci_docs(layout: Path) -> None:
    """Every document of an OCI layout directory validates against the image-spec schemas."""
    validate(json.loads((layout / "oci-layout").read_text()), "image-layout-schema.json",
             folder="oci-image-schema")
    index = json.loads((layout / "index.json").read_text())
    validate(index, "image-index-schema.json", folder="oci-image-schema")
    for d in index["manifests"]:
        doc = json.loads((layout / "blobs" / d["digest"].replace(":", "/")).read_bytes())
        validate(doc, "image-manifest-schema.json", folder="oci-image-schema")
        config = json.loads((layout / "blobs" / doc["config"]["digest"].replace(":", "/"))
                            .read_bytes())
        validate(config, "config-schema.json", folder="oci-image-schema")


def test_bootstrap_makes_a_runnable_reproducible_busybox(lib: ImageLibrary, work: Path) -> None:
    target = bootstrap(lib, ["busybox:latest", "example.com/tools/busybox:1"])
    assert lib.get(BUSYBOX).target == target
    assert lib.get("example.com/tools/busybox:1").target == target
    resolved = lib.resolve(target)
    assert resolved.config.config["Cmd"] == ["sh"]
    [record] = lib.images.unpacked(target.digest)
    seen = view(lib, record.chain_id, work)
    assert seen["bin/busybox"][1] == 0o755 and seen["bin/sh"][4] == "busybox"
    assert seen["etc/passwd"][4].startswith(b"root:x:0:0")
    with ImageLibrary(work / "again", lib.snapshotter_name) as other:
        assert bootstrap(other, unpack=False) == target  # same busybox, same image


def test_save_and_load_round_trip_many_images_and_tags(lib: ImageLibrary, work: Path) -> None:
    busybox = bootstrap(lib)
    with open(work / "rootfs.tar.gz", "wb") as f:
        f.write(gzip.compress(layer_tar({"etc/": None, "etc/motd": b"hi\n"})))
    with open(work / "rootfs.tar.gz", "rb") as f:
        other = import_rootfs(lib, f, "example.com/motd:v1")
    lib.tag("example.com/motd:latest", other)
    names = [BUSYBOX, "example.com/motd:v1", "example.com/motd:latest"]
    save(lib, names, work / "images.tar")
    with tarfile.open(work / "images.tar") as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
        tar.extractall(work / "layout", filter="data")
    assert sorted(t for e in manifest for t in e["RepoTags"]) == [
        "busybox:latest", "example.com/motd:latest", "example.com/motd:v1"]
    oci_docs(work / "layout")
    with ImageLibrary(work / "second", lib.snapshotter_name) as second:
        loaded = load(second, work / "images.tar")
        assert sorted(loaded.names) == sorted(names)
        assert second.get(BUSYBOX).target.digest == busybox.digest
        assert second.get("example.com/motd:v1").target.digest == other.digest
        chain = loaded.unpacked[str(other.digest)]
        assert view(second, chain, work)["etc/motd"][4] == b"hi\n"


def test_oci_layout_directory_round_trip(lib: ImageLibrary, work: Path) -> None:
    target = bootstrap(lib, unpack=False)
    (work / "layout").mkdir()
    save(lib, [BUSYBOX], work / "layout", oci=True)
    oci_docs(work / "layout")
    assert not (work / "layout" / "manifest.json").exists()
    with ImageLibrary(work / "second", lib.snapshotter_name) as second:
        assert load(second, work / "layout").names == [BUSYBOX]
        assert second.get(BUSYBOX).target.digest == target.digest


def test_docker_20_archive_loads_plain_and_gzip_layers(lib: ImageLibrary, work: Path) -> None:
    base = layer_tar({"bin/": None, "bin/tool": b"#!/bin/sh\n", "etc/": None,
                      "etc/gone": b"x", "etc/kept": b"y"})
    top = layer_tar({"etc/.wh.gone": b"", "etc/new": b"new"})
    for gz in (False, True):
        archive = docker_archive(work / f"a{gz}.tar", [base, top], ["app:1", "app:2"],
                                 gzip_layers=gz)
        loaded = load(lib, archive)
        assert loaded.names == ["docker.io/library/app:1", "docker.io/library/app:2"]
        [chain] = loaded.unpacked.values()
        seen = view(lib, chain, work)
        assert sorted(p for p in seen if p.startswith("etc/")) == ["etc/kept", "etc/new"]
    gzipped = load(lib, docker_archive(work / "b.tar", [base], ["b:1"], gzip_layers=True),
                   unpack=False)
    assert gzipped.unpacked == {}
    manifest = lib.resolve(gzipped.targets["docker.io/library/b:1"]).manifest
    assert manifest.layers[0].media_type.endswith("diff.tar.gzip")


def test_compressed_archive_and_untagged_image(lib: ImageLibrary, work: Path) -> None:
    archive = docker_archive(work / "a.tar", [layer_tar({"f": b"1"})], [])
    (work / "a.tar.gz").write_bytes(gzip.compress(archive.read_bytes()))
    loaded = load(lib, work / "a.tar.gz")
    [name] = loaded.names
    assert name.startswith("sha256:") and lib.get(name).target.digest == name


def test_a_layer_that_is_not_what_the_config_says_is_refused(lib: ImageLibrary,
                                                              work: Path) -> None:
    real, claimed = layer_tar({"a": b"real"}), layer_tar({"a": b"claimed"})
    for gz, unpack in ((False, True), (True, True), (True, False)):
        archive = docker_archive(work / f"bad{gz}{unpack}.tar", [real], ["bad:1"],
                                 gzip_layers=gz, diff_layers=[claimed])
        with pytest.raises(DigestMismatch):
            load(lib, archive, unpack=unpack)
        with pytest.raises(NotFound):
            lib.get("docker.io/library/bad:1")
    assert [s.name for s in lib.snapshotter.walk()] == []
    removed = lib.gc()
    assert removed.content and list(lib.content.walk()) == []


@pytest.mark.parametrize("path", ["../../../etc/passwd", "/etc/passwd", "a/../../x"])
def test_paths_out_of_the_archive_are_refused(lib: ImageLibrary, work: Path, path: str) -> None:
    def edit(manifest: list[dict]) -> None:
        manifest[0]["Layers"] = [path]
    archive = docker_archive(work / "evil.tar", [layer_tar({"a": b"1"})], ["evil:1"], edit=edit)
    with pytest.raises(InvalidArgument, match=r"outside the archive|absolute"):
        load(lib, archive)


def test_links_in_the_archive_stay_in_the_archive(lib: ImageLibrary, work: Path) -> None:
    escape = tarfile.TarInfo("escape.tar")
    escape.type, escape.linkname = tarfile.SYMTYPE, "../../../../etc/passwd"

    def edit(manifest: list[dict]) -> None:
        manifest[0]["Layers"] = ["escape.tar"]
    archive = docker_archive(work / "link.tar", [layer_tar({"a": b"1"})], ["link:1"],
                             edit=edit, extra=[(escape, None)])
    with pytest.raises(InvalidArgument, match="outside the archive"):
        load(lib, archive)


def test_truncated_and_garbage_archives_are_clear_errors(lib: ImageLibrary, work: Path) -> None:
    archive = docker_archive(work / "a.tar", [layer_tar({"big": os.urandom(200_000)})], ["t:1"])
    data = archive.read_bytes()
    (work / "cut.tar").write_bytes(data[:150_000])
    with pytest.raises(InvalidArgument, match=r"truncated|EOF|not a tar"):
        load(lib, work / "cut.tar")
    (work / "junk.tar").write_bytes(b"hello" * 1000)
    with pytest.raises(InvalidArgument):
        load(lib, work / "junk.tar")
    empty = io.BytesIO()
    tarfile.open(fileobj=empty, mode="w").close()
    (work / "empty.tar").write_bytes(empty.getvalue())
    with pytest.raises(InvalidArgument, match=r"neither manifest\.json nor an OCI layout"):
        load(lib, work / "empty.tar")
    assert lib.list() == [] and [s.name for s in lib.snapshotter.walk()] == []


def test_gc_keeps_what_names_reach_and_removes_the_rest(lib: ImageLibrary, work: Path) -> None:
    target = bootstrap(lib)
    assert lib.gc().content == []
    kept = {i.digest for i in lib.content.walk()}
    assert target.digest in kept and len(kept) == 3
    assert [s.name for s in lib.snapshotter.walk()] != []
    lib.remove(BUSYBOX)
    removed = lib.gc()
    assert sorted(removed.content) == sorted(kept)
    assert [s.name for s in lib.snapshotter.walk()] == []
    assert lib.images.unpacked() == []


def test_import_of_a_plain_rootfs_tarball(lib: ImageLibrary, work: Path) -> None:
    data = layer_tar({"hello": b"world"})
    target = import_rootfs(lib, io.BytesIO(data), "imported", message="from a test")
    resolved = lib.resolve(target)
    assert resolved.config.rootfs_diff_ids == (sha256(data),)
    assert resolved.config.history[0].comment == "from a test"
    chain = lib.unpack("docker.io/library/imported:latest")
    assert view(lib, chain, work)["hello"][4] == b"world"


def test_multi_platform_layout_unpacks_the_host_platform_only(lib: ImageLibrary,
                                                               work: Path) -> None:
    layout = oci_layout(work / "layout", {
        "linux/arm64": [layer_tar({"arch": b"arm64"})],
        "linux/amd64": [layer_tar({"arch": b"amd64"})],
        "linux/s390x": [layer_tar({"arch": b"s390x"})]}, missing=("linux/s390x",))
    loaded = load(lib, layout, base_name="example.com/multi")
    assert loaded.names == ["example.com/multi:v1"]
    target = lib.get("example.com/multi:v1").target
    assert target.media_type == "application/vnd.oci.image.index.v1+json"
    [chain] = loaded.unpacked.values()
    assert view(lib, chain, work)["arch"][4] == platforms.host().architecture.encode()
    save(lib, ["example.com/multi:v1"], work / "again.tar")  # the index, without s390x
    with ImageLibrary(work / "second", lib.snapshotter_name) as second:
        assert load(second, work / "again.tar").names == ["example.com/multi:v1"]
        assert second.get("example.com/multi:v1").target.digest == target.digest


def test_sha512_layout_loads(lib: ImageLibrary, work: Path) -> None:
    host = platforms.format(platforms.host())
    layout = oci_layout(work / "layout", {host: [layer_tar({"f": b"512"})]},
                        algorithm="sha512")
    loaded = load(lib, layout, base_name="example.com/sha512")
    assert lib.get("example.com/sha512:v1").target.digest.algorithm == "sha512"
    [chain] = loaded.unpacked.values()
    assert view(lib, chain, work)["f"][4] == b"512"


def test_a_blob_cut_short_leaves_no_ingest_and_no_name(lib: ImageLibrary, work: Path) -> None:
    host = platforms.format(platforms.host())
    layout = oci_layout(work / "layout", {host: [layer_tar({"f": os.urandom(100_000)})]})
    blobs = sorted((layout / "blobs" / "sha256").iterdir(), key=lambda p: p.stat().st_size)
    biggest = blobs[-1]
    biggest.write_bytes(biggest.read_bytes()[:-10])
    with pytest.raises(DigestMismatch, match="size"):
        load(lib, layout, base_name="example.com/cut")
    assert lib.list() == [] and lib.content.list_statuses() == []
    assert [s.name for s in lib.snapshotter.walk()] == []


def test_the_diff_of_a_container_snapshot_is_a_layer_of_a_new_image(lib: ImageLibrary,
                                                                     work: Path) -> None:
    base = bootstrap(lib)
    resolved = lib.resolve(base)
    [record] = lib.images.unpacked(base.digest)
    with mounted(lib.snapshotter.prepare("container", record.chain_id), work) as root:
        (root / "etc" / "hostname").unlink()
        (root / "home" / "user" / "notes").write_text("committed\n")
        shutil.move(root / "usr", root / "usr-old")  # copy + delete, as mv does on EXDEV
    with lib.lease() as lease:
        layer, diff_id = lib.diff("container", lease)
        assert lib.content.info(layer.digest).labels["containerd.io/uncompressed"] == diff_id
        config = json.loads(lib.read_json(resolved.manifest.config))
        config["rootfs"]["diff_ids"].append(diff_id)
        target = lib.put_image(json.dumps(config).encode(),
                               [*resolved.manifest.layers, layer], lease)
        lib.tag("example.com/committed:1", target)
    lib.snapshotter.remove("container")
    seen = view(lib, lib.unpack("example.com/committed:1"), work)
    assert seen["home/user/notes"][4] == b"committed\n"
    assert "etc/hostname" not in seen and "usr" not in seen
    assert seen["usr-old/bin/env"][4] == "../../bin/busybox"
    assert "etc/passwd" in seen


def test_a_commit_leaves_its_image_labelled_and_no_ingest_or_lease(
        lib: ImageLibrary, work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What a build step does through the Diff service: the layer, config and manifest
    committed with every gc label, the step's snapshot taken over as the new chain, and
    nothing left in the ingest directory or the lease table."""
    from dockyard.containerd.services.diff import commit

    base = bootstrap(lib)
    resolved = lib.resolve(base)
    [record] = lib.images.unpacked(base.digest)
    with mounted(lib.snapshotter.prepare("step", record.chain_id), work) as root:
        (root / "added").write_bytes(os.urandom(1 << 20))
    config = json.loads(lib.read_json(resolved.manifest.config))
    target, config_digest, diff_id = commit(lib, "step", base, json.dumps(config).encode(),
                                            "", consume=True)
    assert lib.get(str(target.digest)).target == target
    new = lib.resolve(target)
    assert str(new.manifest.config.digest) == config_digest
    layer = new.manifest.layers[-1]
    assert lib.content.info(layer.digest).labels["containerd.io/uncompressed"] == diff_id
    manifest_labels = lib.content.info(target.digest).labels
    assert manifest_labels["containerd.io/gc.ref.content.config"] == config_digest
    assert manifest_labels["containerd.io/gc.ref.content.l.1"] == layer.digest
    [unpacked] = lib.images.unpacked(target.digest)
    snapshot_label = f"containerd.io/gc.ref.snapshot.{lib.snapshotter_name}"
    assert lib.content.info(config_digest).labels[snapshot_label] == unpacked.chain_id
    assert lib.snapshotter.stat(unpacked.chain_id).kind == "committed"
    assert list(lib.content.layout.ingests.iterdir()) == [] and lib.leases.list() == []

    # unpacked already: unpacking again takes no lease and rewrites no label
    before = {d.digest: lib.content.info(d.digest).updated_at
              for d in (*new.manifest.layers, new.manifest.config)}
    made: list[str] = []
    create = lib.leases.create
    monkeypatch.setattr(lib.leases, "create", lambda *a, **k: made.append(a[0]) or create(*a, **k))
    assert lib.unpack(target) == unpacked.chain_id
    assert made == []
    assert before == {d: lib.content.info(d).updated_at for d in before}
    assert lib.gc().content == []  # everything is reachable from the name


def test_a_config_only_commit_shares_the_parent_layers(lib: ImageLibrary) -> None:
    from dockyard.containerd.services.diff import commit

    base = bootstrap(lib)
    resolved = lib.resolve(base)
    config = json.loads(lib.read_json(resolved.manifest.config))
    config["config"]["Cmd"] = ["echo", "new"]
    target, _, diff_id = commit(lib, "", base, json.dumps(config).encode(),
                                "example.com/cmd:1")
    assert diff_id == "" and lib.get("example.com/cmd:1").target == target
    assert lib.resolve(target).manifest.layers == resolved.manifest.layers
    assert list(lib.content.layout.ingests.iterdir()) == [] and lib.leases.list() == []
    assert lib.gc().content == []
