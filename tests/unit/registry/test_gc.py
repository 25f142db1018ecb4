"""registry/gc.py: what a collection keeps (tagged images and all they reference, index
children, referrers of kept subjects, anything written within the grace period) and what it
deletes (unreferenced blobs with their layer links; untagged revisions when asked), on
repositories written with RegistryStore; and that docker-registry still serves every tag
after our collection ran on its own tree."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dockyard.image import mediatypes as mt
from dockyard.image.descriptor import Descriptor
from dockyard.image.digest import of_bytes
from dockyard.image.manifest import Index, Manifest
from dockyard.registry import gc
from dockyard.registry.storage import paths as p
from dockyard.registry.storage.blobs import RegistryStore, UploadUnknown
from dockyard.registry.storage.driver import PathNotFound, StorageDriver
from dockyard.registry.storage.filesystem import FilesystemDriver
from tests.integration.image.archives import docker_archive, layer_tar
from tests.refregistry import ref_registry, skip_unless_available

LATER = datetime.now(UTC) + timedelta(hours=3)  # everything written so far is old by then


@pytest.fixture
def store(tmp_path: Path) -> RegistryStore:
    return RegistryStore(FilesystemDriver(tmp_path / "registry"))


def image(store: RegistryStore, repo: str, layers: list[bytes], tag: str | None = None,
          subject: Descriptor | None = None) -> tuple[Descriptor, list[str]]:
    config = json.dumps({"architecture": "amd64", "os": "linux", "n": len(layers),
                         "layers": [of_bytes(x) for x in layers]}).encode()
    blobs = [store.put_blob(repo, b) for b in (config, *layers)]
    man = Manifest(Descriptor.of(mt.OCI_CONFIG, config),
                   tuple(Descriptor.of(mt.OCI_LAYER_GZIP, x) for x in layers), subject=subject)
    data = man.to_bytes()
    store.put_manifest(repo, data, tag=tag)
    return Descriptor.of(mt.OCI_MANIFEST, data), list(blobs)


def stored(store: RegistryStore, digest: str) -> bool:
    try:
        store.driver.stat(p.path_for(p.BlobData(digest)))
        return True
    except PathNotFound:
        return False


def tree(root: Path) -> list[str]:
    return sorted(str(x.relative_to(root)) for x in root.rglob("*"))


def test_reachable_blobs_stay_and_unreferenced_ones_go_with_their_links(
        store: RegistryStore) -> None:
    top, blobs = image(store, "app", [b"layer one", b"layer two"], tag="v1")
    orphan = store.put_blob("app", b"pushed, never referenced")
    report = gc.collect(store.driver, now=LATER)
    assert report.deleted_blobs == (orphan,)
    assert report.deleted_layer_links == (("app", orphan),)
    assert report.bytes_freed == len(b"pushed, never referenced")
    assert report.marked == {top.digest, *blobs}
    assert not stored(store, orphan) and not store.blob_exists("app", orphan)
    assert all(store.blob_exists("app", b) for b in blobs)
    assert store.get_manifest("app", "v1")[0] == top.digest


def test_dry_run_reports_and_deletes_nothing(store: RegistryStore, tmp_path: Path) -> None:
    image(store, "app", [b"layer"], tag="v1")
    image(store, "app", [b"old layer"], tag="v1")  # v1 moved on: one untagged revision
    orphan = store.put_blob("app", b"orphan")
    before = tree(tmp_path / "registry")
    report = gc.collect(store.driver, dry_run=True, delete_untagged=True, now=LATER)
    assert report.dry_run and orphan in report.deleted_blobs
    assert len(report.deleted_manifests) == 1 and report.bytes_freed > 0
    assert tree(tmp_path / "registry") == before


def test_blobs_written_within_the_grace_period_stay(store: RegistryStore) -> None:
    orphan = store.put_blob("app", b"a push in progress")
    report = gc.collect(store.driver)
    assert report.deleted_blobs == () and report.kept_recent == (orphan,)
    assert store.blob_exists("app", orphan)
    assert gc.collect(store.driver, grace=timedelta(0), now=LATER).deleted_blobs == (orphan,)


def test_an_old_blob_linked_again_recently_stays(store: RegistryStore, tmp_path: Path) -> None:
    orphan = store.put_blob("app", b"mounted by a push just now")
    data = tmp_path / "registry" / p.path_for(p.BlobData(orphan)).lstrip("/")
    old = time.time() - 7200
    os.utime(data, (old, old))
    assert gc.collect(store.driver).kept_recent == (orphan,)
    assert store.blob_exists("app", orphan)


def test_untagged_revisions_keep_their_blobs_unless_asked(store: RegistryStore) -> None:
    first, first_blobs = image(store, "app", [b"shared", b"only in v1"], tag="v1")
    second, second_blobs = image(store, "app", [b"shared", b"only in v2"], tag="v1")
    assert gc.collect(store.driver, now=LATER).deleted_blobs == ()

    report = gc.collect(store.driver, delete_untagged=True, now=LATER)
    assert report.deleted_manifests == (("app", first.digest),)
    gone = {first.digest, first_blobs[0], first_blobs[2]}  # its manifest, config, own layer
    assert set(report.deleted_blobs) == gone
    assert not any(stored(store, d) for d in gone)
    assert all(store.blob_exists("app", b) for b in second_blobs)
    with pytest.raises(PathNotFound):
        store.driver.stat(p.path_for(p.ManifestRevisionLink("app", first.digest)))
    with pytest.raises(PathNotFound):
        store.driver.stat(p.path_for(p.ManifestTagIndexEntryLink("app", "v1", first.digest)))
    assert store.resolve("app", "v1") == second.digest


def test_a_manifest_list_keeps_its_children(store: RegistryStore) -> None:
    amd, amd_blobs = image(store, "app", [b"amd64 layer"])
    arm, arm_blobs = image(store, "app", [b"arm64 layer"])
    index = Index((amd, arm)).to_bytes()
    top = store.put_manifest("app", index, tag="multi")
    report = gc.collect(store.driver, delete_untagged=True, now=LATER)
    assert report.deleted_blobs == () and report.deleted_manifests == ()
    assert report.marked == {top, amd.digest, arm.digest, *amd_blobs, *arm_blobs}
    assert store.resolve("app", amd.digest) == amd.digest


def test_referrers_stay_while_their_subject_does(store: RegistryStore) -> None:
    top, _ = image(store, "app", [b"image"], tag="v1")
    sig, _ = image(store, "app", [b"signature"], subject=top)
    sig_of_sig, _ = image(store, "app", [b"countersignature"], subject=sig)
    untagged, _ = image(store, "app", [b"untagged image"])
    sbom, _ = image(store, "app", [b"sbom of the untagged"], subject=untagged)
    report = gc.collect(store.driver, delete_untagged=True, now=LATER)
    assert {d for _, d in report.deleted_manifests} == {untagged.digest, sbom.digest}
    assert {top.digest, sig.digest, sig_of_sig.digest} <= report.marked
    assert store.resolve("app", sig_of_sig.digest) == sig_of_sig.digest


def test_a_blob_tagged_in_another_repository_stays(store: RegistryStore) -> None:
    a, blobs = image(store, "team/a", [b"same layer"])
    b, _ = image(store, "team/b", [b"same layer"], tag="v1")
    assert a.digest == b.digest
    report = gc.collect(store.driver, delete_untagged=True, now=LATER)
    assert report.deleted_manifests == (("team/a", a.digest),) and report.deleted_blobs == ()
    assert all(stored(store, d) for d in (a.digest, *blobs))
    assert store.blob_exists("team/a", blobs[1])  # its layer link stays: the blob does


def test_repositories_are_found_nested(store: RegistryStore) -> None:
    for repo in ("a", "a/b", "a/b/c", "x/y"):
        image(store, repo, [repo.encode()], tag="v1")
    assert gc.repositories(store.driver) == ["a", "a/b", "a/b/c", "x/y"]


def test_a_concurrent_writer_keeps_its_blobs(store: RegistryStore) -> None:
    image(store, "app", [b"base"], tag="v1")
    written: list[str] = []
    stop = threading.Event()

    def writer() -> None:
        n = 0
        while not stop.is_set() or n < 20:
            written.append(store.put_blob("app", f"upload {n}".encode() * 1000))
            n += 1

    thread = threading.Thread(target=writer)
    thread.start()
    deleted: list[str] = []
    try:
        for _ in range(20):
            deleted += gc.collect(store.driver, delete_untagged=True).deleted_blobs
    finally:
        stop.set()
        thread.join()
    assert deleted == []
    assert all(store.blob_exists("app", d) for d in written)


def test_an_unreadable_manifest_stops_the_collection_before_deleting(
        store: RegistryStore) -> None:
    orphan = store.put_blob("app", b"orphan")
    schema1 = json.dumps({"schemaVersion": 1, "name": "app", "fsLayers": []}).encode()
    digest = of_bytes(schema1)
    store.driver.put_content(p.path_for(p.BlobData(digest)), schema1)
    store.driver.put_content(p.path_for(p.ManifestRevisionLink("app", digest)), digest.encode())
    with pytest.raises(gc.UnreadableManifest):
        gc.collect(store.driver, now=LATER)
    assert stored(store, orphan)


@pytest.mark.interop
def test_docker_registry_serves_every_tag_after_our_collection(tmp_path: Path) -> None:
    skip_unless_available()
    skopeo = shutil.which("skopeo")
    if skopeo is None:
        pytest.skip("skopeo is not installed")
    with ref_registry(tmp_path) as reg:
        store = RegistryStore(FilesystemDriver(reg.root))
        image(store, "ours/app", [b"first v1"], tag="v1")  # moved on below: untagged
        image(store, "ours/app", [b"v1"], tag="v1")
        amd, _ = image(store, "ours/app", [b"amd64"])
        arm, _ = image(store, "ours/app", [b"arm64"])
        store.put_manifest("ours/app", Index((amd, arm)).to_bytes(), tag="multi")
        orphan = store.put_blob("ours/app", b"orphan")
        for n in (1, 2):  # a tree docker-registry wrote: its v1 moved on too
            archive = docker_archive(tmp_path / f"{n}.tar", [layer_tar({"f": b"%d" % n})],
                                     ["theirs/app:v1"], gzip_layers=True)
            done = subprocess.run(
                [skopeo, "--insecure-policy", "copy", "--dest-tls-verify=false",
                 f"docker-archive:{archive}", f"docker://{reg.host}/theirs/app:v1"],
                capture_output=True, text=True, timeout=120)
            assert done.returncode == 0, done.stderr
        report = gc.collect(store.driver, delete_untagged=True, now=LATER)
        assert orphan in report.deleted_blobs
        assert {r for r, _ in report.deleted_manifests} == {"ours/app", "theirs/app"}
        for name, tag in (("ours/app", "v1"), ("ours/app", "multi"), ("theirs/app", "v1")):
            ref = f"docker://{reg.host}/{name}:{tag}"
            done = subprocess.run(
                [skopeo, "--insecure-policy", "copy", "--all", "--src-tls-verify=false", ref,
                 f"oci:{tmp_path / name.replace('/', '-')}-{tag}:{tag}"],
                capture_output=True, text=True, timeout=120)
            assert done.returncode == 0, done.stderr


def state(driver: StorageDriver) -> tuple[set[str], set[tuple[str, str]]]:
    """The stored blobs, and each repository's manifest revisions."""
    blobs = {f"{d.split('/')[-3]}:{d.split('/')[-1]}"
             for a in driver.list(p.path_for(p.BlobsRoot()))
             for x in driver.list(a) for d in driver.list(x)}
    revisions = {(name, f"sha256:{r.rsplit('/', 1)[1]}") for name in gc.repositories(driver)
                 for r in driver.list(p.path_for(p.ManifestRevisionsDir(name)) + "/sha256")}
    return blobs, revisions


@pytest.mark.interop
@pytest.mark.parametrize("delete_untagged", [False, True])
def test_we_delete_what_docker_registry_garbage_collect_deletes(
        tmp_path: Path, delete_untagged: bool) -> None:
    skip_unless_available()
    ours = RegistryStore(FilesystemDriver(tmp_path / "ours"))
    image(ours, "app", [b"shared", b"first v1"], tag="v1")
    image(ours, "app", [b"shared", b"second v1"], tag="v1")
    image(ours, "app", [b"latest"], tag="latest")
    image(ours, "other", [b"shared", b"never tagged"])
    image(ours, "other", [b"latest"], tag="v1")
    ours.put_blob("app", b"orphan")
    if not delete_untagged:  # 2.8 deletes an index's untagged children (distribution#3178)
        amd, _ = image(ours, "app", [b"amd64"])
        arm, _ = image(ours, "app", [b"arm64"])
        ours.put_manifest("app", Index((amd, arm)).to_bytes(), tag="multi")
    shutil.copytree(tmp_path / "ours", tmp_path / "theirs")
    config = tmp_path / "config.yml"
    config.write_text(f"version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n"
                      f"    rootdirectory: {tmp_path / 'theirs'}\n")
    done = subprocess.run(["/usr/bin/docker-registry", "garbage-collect", str(config),
                           *(["--delete-untagged"] if delete_untagged else [])],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    report = gc.collect(ours.driver, delete_untagged=delete_untagged, now=LATER)
    assert report.deleted_blobs
    assert state(ours.driver) == state(FilesystemDriver(tmp_path / "theirs"))


def test_abandoned_uploads_are_purged_after_a_week(store: RegistryStore) -> None:
    image(store, "app", [b"layer"], tag="v1")
    old, fresh = store.start_upload("app"), store.start_upload("app")
    later = datetime.now(UTC) + timedelta(days=7, hours=1)
    fresh_start = store.driver.get_content(p.path_for(p.UploadStartedAt("app", fresh)))
    store.driver.put_content(p.path_for(p.UploadStartedAt("app", fresh)),
                             later.strftime("%Y-%m-%dT%H:%M:%SZ").encode())
    assert gc.purge_uploads(store.driver, now=later, dry_run=True) == [("app", old)]
    assert store.upload_size("app", old) == 0  # a dry run keeps it
    assert gc.purge_uploads(store.driver, now=later) == [("app", old)]
    with pytest.raises(UploadUnknown, match="no upload"):
        store.upload_size("app", old)
    assert store.upload_size("app", fresh) == 0 and fresh_start
    assert gc.purge_uploads(store.driver) == []  # nothing is a week old now
