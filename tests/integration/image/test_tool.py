"""`dockyard-image` as a user runs it: each command's output, and bad input answered with
one line in Docker's words and exit code 1, never a traceback."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conformance.snapshot_trees import scratch_dir
from tests.integration.image.archives import layer_tar

pytestmark = pytest.mark.root


@pytest.fixture
def work() -> Iterator[Path]:
    with scratch_dir("dyt-tool-") as path:
        yield path


def tool(root: Path, *args: str, input: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dockyard.image.tool", "--root", str(root),
                           *args], capture_output=True, input=input, timeout=120)


def ok(root: Path, *args: str, input: bytes | None = None) -> str:
    done = tool(root, *args, input=input)
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout.decode()


def test_bootstrap_ls_save_load_rm_gc(work: Path) -> None:
    root, other = work / "a", work / "b"
    out = ok(root, "bootstrap", "busybox:latest", "localhost:5000/box:v1")
    assert "Bootstrapped image: busybox:latest (sha256:" in out
    assert "Bootstrapped image: localhost:5000/box:v1" in out
    listing = ok(root, "ls").splitlines()
    assert listing[0].split() == ["REF", "TYPE", "DIGEST", "SIZE"]
    assert [line.split()[0] for line in listing[1:]] == ["busybox:latest",
                                                         "localhost:5000/box:v1"]
    inspect = json.loads(ok(root, "inspect", "busybox"))
    assert inspect["Config"]["config"]["Cmd"] == ["sh"]
    ok(root, "save", "-o", str(work / "out.tar"), "busybox", "localhost:5000/box:v1")
    loaded = ok(other, "load", "-i", str(work / "out.tar"))
    assert loaded.splitlines() == ["Loaded image: busybox:latest",
                                   "Loaded image: localhost:5000/box:v1"]
    assert ok(root, "rm", "busybox").strip() == "Untagged: busybox:latest"
    assert ok(root, "gc").startswith("removed 0 blobs")  # the other name keeps it all
    ok(root, "rm", "localhost:5000/box:v1")
    assert ok(root, "gc").startswith("removed 3 blobs, 1 snapshots")


def test_import_from_stdin_prints_the_image_id(work: Path) -> None:
    data = gzip.compress(layer_tar({"hello": b"world"}))
    image_id = ok(work / "a", "import", "-", "imported:1", input=data).strip()
    assert image_id.startswith("sha256:") and len(image_id) == 71
    assert json.loads(ok(work / "a", "inspect", "imported:1"))["Config"]["rootfs"][
        "diff_ids"]
    assert len(ok(work / "a", "unpack", "imported:1").strip()) == 71


@pytest.mark.parametrize(("args", "message"), [
    (("inspect", "nothere"), "Error: image 'docker.io/library/nothere:latest': not found"),
    (("inspect", "UPPER"), "Error: invalid reference format: repository name (library/UPPER) "
                           "must be lowercase"),
    (("load", "-i", "/nonexistent.tar"), "Error: open /nonexistent.tar: no such file or "
                                         "directory"),
    (("save", "-o", "/tmp/x.tar", "nothere"),
     "Error: image 'docker.io/library/nothere:latest': not found"),
    (("rm", "nothere:1"), "Error: image 'docker.io/library/nothere:1': not found"),
])
def test_bad_input_is_one_clear_line(work: Path, args: tuple[str, ...], message: str) -> None:
    done = tool(work / "a", *args)
    assert done.returncode == 1
    assert done.stderr.decode().strip() == message
    assert b"Traceback" not in done.stderr


def test_a_garbage_archive_is_refused_without_a_traceback(work: Path) -> None:
    (work / "junk.tar").write_bytes(b"\x00not a tar" * 100)
    done = tool(work / "a", "load", "-i", str(work / "junk.tar"))
    assert done.returncode == 1 and done.stderr.startswith(b"Error: ")
    assert b"Traceback" not in done.stderr
