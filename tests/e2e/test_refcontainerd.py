"""The reference-containerd harness (tests/refcontainerd.py): Debian's containerd imports the
busybox image that Dockyard saves, `ctr run` runs it (in the foreground with --rm, and
detached), and afterwards nothing of it is left: no process, mount, directory or cgroup, and
nothing under /run/containerd."""

from __future__ import annotations

from pathlib import Path

import pytest

from dockyard.image.archive.save import save
from dockyard.image.imports import bootstrap
from dockyard.image.library import ImageLibrary
from tests.refcontainerd import ref_containerd, unavailable
from tests.refdocker import cgroup_dirs, mounts_under, processes_naming

pytestmark = [pytest.mark.root, pytest.mark.interop]

IMAGE = "docker.io/library/busybox:latest"


@pytest.fixture(scope="module")
def busybox_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("refcontainerd-image")
    with ImageLibrary(work / "lib") as lib:
        bootstrap(lib)
        save(lib, [IMAGE], work / "busybox.tar")
    return work / "busybox.tar"


def test_runs_a_container_and_leaves_nothing(tmp_path: Path, busybox_archive: Path) -> None:
    if reason := unavailable():
        pytest.skip(reason)
    with ref_containerd(tmp_path) as ref:
        ref.ctr("images", "import", str(busybox_archive))
        assert IMAGE in ref.ctr("images", "ls", "-q").stdout.split()
        done = ref.ctr("run", "--rm", IMAGE, "once", "sh", "-c", "echo hi; exit 3", check=False)
        assert (done.returncode, done.stdout) == (3, "hi\n")
        ref.ctr("run", "-d", IMAGE, "sleeper", "sleep", "600")
        assert len(ref.shim_pids()) == 1
        tasks = ref.ctr("tasks", "ls").stdout
        assert "sleeper" in tasks and "RUNNING" in tasks
        base, state, cgroup = ref.base, ref.state, f"/{ref.namespace}"
    # a running container and its shim at the stop: the harness kills and removes them
    assert processes_naming([base, state]) == []
    assert mounts_under(base) == [] and mounts_under(state) == []
    assert cgroup_dirs(cgroup) == []
    assert not base.exists() and not state.exists()
    assert not Path("/run/containerd/runc", ref.namespace).exists()
