"""Layer tars for the layer tests, written byte by byte (hostile names included), and the
trees they make read back as data; checked here against what tarfile and GNU tar read."""

from __future__ import annotations

import io
import os
import shutil
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest

from dockyard.image.layers.apply import Applied, apply_layer
from dockyard.image.layers.compression import compressor
from dockyard.image.layers.tarstream import (
    CHAR,
    DIR,
    FIFO,
    LINK,
    REGULAR,
    SYMLINK,
    Member,
)
from dockyard.image.layers.tarwrite import header

MTIME = 1_600_000_000 * 10**9


def entry(name: str, kind: str = REGULAR, data: bytes = b"", *, mode: int | None = None,
          uid: int = 0, gid: int = 0, mtime_ns: int = MTIME, linkname: str = "",
          dev: tuple[int, int] = (0, 0), xattrs: tuple[tuple[str, bytes], ...] = ()) -> bytes:
    if mode is None:
        mode = {DIR: 0o755, SYMLINK: 0o777}.get(kind, 0o644)
    m = Member(name, kind, mode, uid, gid, len(data), mtime_ns, None, linkname, dev[0], dev[1],
               xattrs)
    return header(m) + data + bytes(-len(data) % 512)


def file(name: str, data: bytes = b"", **kw) -> bytes:
    return entry(name, REGULAR, data, **kw)


def folder(name: str, **kw) -> bytes:
    return entry(name, DIR, **kw)


def symlink(name: str, target: str, **kw) -> bytes:
    return entry(name, SYMLINK, linkname=target, **kw)


def hardlink(name: str, target: str, **kw) -> bytes:
    return entry(name, LINK, linkname=target, **kw)


def device(name: str, kind: str = CHAR, dev: tuple[int, int] = (1, 3), **kw) -> bytes:
    return entry(name, kind, dev=dev, **kw)


def fifo(name: str, **kw) -> bytes:
    return entry(name, FIFO, **kw)


def whiteout(path: str) -> bytes:
    parent, _, base = path.rpartition("/")
    return file(f"{parent}/.wh.{base}" if parent else f".wh.{base}")


def opaque(directory: str) -> bytes:
    return file(f"{directory}/.wh..wh..opq")


def layer(*entries: bytes, compression: str = "") -> bytes:
    tar = b"".join(entries) + bytes(1024)
    if not compression:
        return tar
    out = io.BytesIO()
    with compressor(out, compression) as c:
        c.write(tar)
    return out.getvalue()


def apply(root: Path, data: bytes, **kw) -> Applied:
    """apply_layer from bytes; owners from the tar only as root (chown needs it)."""
    kw.setdefault("same_owner", os.geteuid() == 0)
    return apply_layer(root, io.BytesIO(data), **kw)


def snapshot(root: Path, times: bool = True) -> dict[str, tuple]:
    """Every path under `root`: type, mode, owner, content / link target / device, xattrs,
    and (if `times`) mtime in ns for all but directories and whiteout devices."""
    out: dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            kind = stat.S_IFMT(st.st_mode)
            detail: object = None
            if stat.S_ISREG(kind):
                detail = Path(p).read_bytes()
            elif stat.S_ISLNK(kind):
                detail = os.readlink(p)
            elif stat.S_ISCHR(kind) or stat.S_ISBLK(kind):
                detail = (os.major(st.st_rdev), os.minor(st.st_rdev))
            attrs = tuple(sorted((k, os.getxattr(p, k, follow_symlinks=False))
                                 for k in os.listxattr(p, follow_symlinks=False)))
            keep_time = times and not stat.S_ISDIR(kind) and not stat.S_ISCHR(kind)
            out[os.path.relpath(p, root)] = (
                kind, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, detail, attrs,
                st.st_mtime_ns if keep_time else None)
    return out


# -- the helpers' tars are tars ----------------------------------------------------------

def sample() -> bytes:
    return layer(folder("d"), file("d/f", b"hello", mode=0o4755, uid=7, gid=8),
                 symlink("d/l", "f"), hardlink("d/h", "d/f"), fifo("d/p"),
                 device("d/null"), file("long/" + "x" * 150, b"1"),
                 file("d/t", mtime_ns=MTIME + 123456789),
                 file("d/x", xattrs=(("user.k", b"\x00\xffv"),)))


def test_tarfile_reads_what_tarwrite_writes() -> None:
    with tarfile.open(fileobj=io.BytesIO(sample())) as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert tar.extractfile("d/f").read() == b"hello"  # type: ignore[union-attr]
    assert members["d"].isdir() and members["d/l"].issym() and members["d/h"].islnk()
    assert members["d/p"].isfifo() and members["d/null"].ischr()
    assert (members["d/null"].devmajor, members["d/null"].devminor) == (1, 3)
    assert (members["d/f"].mode, members["d/f"].uid, members["d/f"].gid) == (0o4755, 7, 8)
    assert members["d/f"].uname == members["d/f"].gname == ""
    assert "long/" + "x" * 150 in members
    assert members["d/t"].mtime == pytest.approx(1_600_000_000.123456789)
    assert members["d/x"].pax_headers["SCHILY.xattr.user.k"] == "\x00\udcffv"


@pytest.mark.skipif(shutil.which("tar") is None, reason="no GNU tar")
def test_gnu_tar_lists_what_tarwrite_writes() -> None:
    listing = subprocess.run(["tar", "-tvf", "-"], input=sample(), capture_output=True,
                             check=True).stdout.decode()
    assert "-rwsr-xr-x 7/8" in listing
    assert "crw-r--r-- 0/0             1,3" in listing
    assert "d/h link to d/f" in listing
    assert "x" * 150 in listing


def test_same_members_make_the_same_bytes() -> None:
    assert sample() == sample()
    assert len(sample()) % 512 == 0
