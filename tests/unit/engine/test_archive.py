"""engine/containers/archive.py on temporary directories: docker cp's stat, read and extract,
and the hostile cases (symlinks to the host, ../ members, members through symlinks, hard
links out)."""

from __future__ import annotations

import io
import os
import stat
import tarfile
from pathlib import Path

import pytest

from dockyard.engine.containers.archive import ContainerFS, PathNotFound, go_mode
from dockyard.engine.containers.untar import TarError, member_parts
from dockyard.engine.errors import EngineError, InvalidParameter


@pytest.fixture
def host(tmp_path: Path) -> Path:
    """A "host" file beside the container root, which nothing may read or write."""
    (tmp_path / "host").mkdir()
    (tmp_path / "host" / "secret").write_text("host secret\n")
    return tmp_path / "host"


@pytest.fixture
def root(tmp_path: Path, host: Path) -> Path:
    r = tmp_path / "root"
    (r / "etc").mkdir(parents=True)
    (r / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n"
                                      "nobody:x:65534:65534::/:/bin/false\n")
    (r / "etc" / "group").write_text("root:x:0:\nnogroup:x:65534:\n")
    (r / "data" / "sub").mkdir(parents=True)
    (r / "data" / "a.txt").write_text("a\n")
    (r / "data" / "sub" / "b.txt").write_text("b\n")
    os.symlink("/", r / "hostroot")
    os.symlink("/etc", r / "etclink")
    os.symlink("../../../../../..", r / "up")
    os.symlink(str(host), r / "abs_host")  # the host path, absolute: inside it is r/<that>
    return r


def _tar(*members: tuple[str, str, bytes | str]) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for kind, name, data in members:
            info = tarfile.TarInfo(name)
            info.mode = 0o644
            if kind == "file":
                raw = data if isinstance(data, bytes) else data.encode()
                info.size = len(raw)
                tar.addfile(info, io.BytesIO(raw))
            elif kind == "dir":
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            elif kind == "sym":
                info.type, info.linkname = tarfile.SYMTYPE, str(data)
                tar.addfile(info)
            elif kind == "link":
                info.type, info.linkname = tarfile.LNKTYPE, str(data)
                tar.addfile(info)
    buf.seek(0)
    return buf


def _names(data: bytes) -> list[str]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return tar.getnames()


def test_stat_gives_docker_fields_and_go_mode(root: Path) -> None:
    with ContainerFS(str(root), "c") as fs:
        doc = fs.stat("/data/a.txt")
        assert doc["name"] == "a.txt" and doc["size"] == 2 and doc["linkTarget"] == ""
        assert doc["mode"] == os.stat(root / "data/a.txt").st_mode & 0o777
        assert fs.stat("/data")["mode"] & (1 << 31)
        link = fs.stat("/etclink")
        assert link["mode"] & (1 << 27) and link["linkTarget"] == "/etc"


def test_go_mode_maps_kinds() -> None:
    assert go_mode(stat.S_IFDIR | 0o755) == (1 << 31) | 0o755
    assert go_mode(stat.S_IFCHR | 0o600) == (1 << 26) | (1 << 21) | 0o600
    assert go_mode(stat.S_IFREG | stat.S_ISUID | 0o755) == (1 << 23) | 0o755


def test_missing_path_is_docker_404(root: Path) -> None:
    with ContainerFS(str(root), "web") as fs, pytest.raises(PathNotFound) as e:
        fs.stat("/nope")
    assert e.value.message == "Could not find the file /nope in container web"


def test_symlinks_to_host_root_resolve_in_the_container(root: Path, host: Path) -> None:
    with ContainerFS(str(root), "c") as fs:
        out = io.BytesIO()
        fs.read_tar("/hostroot/etc/passwd", out)
        with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as tar:
            f = tar.extractfile("passwd")
            assert f is not None and f.read().startswith(b"root:x:0:0")
        out = io.BytesIO()
        fs.read_tar("/up/etc/passwd", out)  # ../.. clamped at the container's root
        assert _names(out.getvalue()) == ["passwd"]
        with pytest.raises(PathNotFound):
            fs.stat("/abs_host/secret")  # the host's path means nothing inside


def test_read_tar_of_directory_and_of_its_content(root: Path) -> None:
    with ContainerFS(str(root), "c") as fs:
        out = io.BytesIO()
        fs.read_tar("/data", out)
        assert _names(out.getvalue()) == ["data", "data/a.txt", "data/sub", "data/sub/b.txt"]
        out = io.BytesIO()
        fs.read_tar("/data/.", out)
        assert sorted(_names(out.getvalue())) == [".", "./a.txt", "./sub", "./sub/b.txt"]


def test_read_tar_of_the_root_names_members_as_dockerd(root: Path) -> None:
    with ContainerFS(str(root), "c") as fs:
        out = io.BytesIO()
        fs.read_tar("/", out)
    names = _names(out.getvalue())
    assert names[0] == "" and "/data/sub/b.txt" in names and "/etc/passwd" in names


def test_extract_files_and_directories(root: Path) -> None:
    with ContainerFS(str(root), "c") as fs:
        fs.extract("/data", _tar(("dir", "new", ""), ("file", "new/x", "x!"),
                                 ("sym", "new/l", "x"), ("link", "new/h", "new/x")))
    assert (root / "data/new/x").read_text() == "x!"
    assert os.readlink(root / "data/new/l") == "x"
    assert os.stat(root / "data/new/h").st_ino == os.stat(root / "data/new/x").st_ino


def test_extract_through_container_symlink_stays_inside(root: Path, host: Path) -> None:
    with ContainerFS(str(root), "c") as fs:
        fs.extract("/etclink", _tar(("file", "added", "in the container")))
        fs.extract("/hostroot/etc", _tar(("file", "added2", "too")))
    assert (root / "etc/added").read_text() == "in the container"
    assert (root / "etc/added2").exists()
    assert not Path("/etc/added2").exists()


def test_extract_refuses_dotdot_members(root: Path, host: Path) -> None:
    with ContainerFS(str(root), "c") as fs, pytest.raises(TarError):
        fs.extract("/data", _tar(("file", "../../../host/evil", "x")))
    assert not (host / "evil").exists()
    assert not (root.parent / "host" / "evil").exists()


def test_extract_refuses_member_through_its_own_symlink(root: Path, host: Path) -> None:
    with ContainerFS(str(root), "c") as fs:
        with pytest.raises(TarError):
            fs.extract("/data", _tar(("sym", "esc", str(host)), ("file", "esc/secret", "x")))
        with pytest.raises(TarError):
            fs.extract("/data", _tar(("sym", "esc2", "../../../.."),))
    assert (host / "secret").read_text() == "host secret\n"


def test_extract_refuses_hard_link_out(root: Path, host: Path) -> None:
    with ContainerFS(str(root), "c") as fs, pytest.raises(TarError):
        fs.extract("/data", _tar(("link", "h", "../../host/secret")))
    with ContainerFS(str(root), "c") as fs, pytest.raises(TarError):
        fs.extract("/data", _tar(("link", "h", "/etc/passwd")))  # outside the destination
    assert not (root / "data/h").exists()


def test_extract_replaces_a_symlink_instead_of_writing_through_it(root: Path,
                                                                   host: Path) -> None:
    os.symlink(str(host / "secret"), root / "data" / "trap")
    with ContainerFS(str(root), "c") as fs:
        fs.extract("/data", _tar(("file", "trap", "mine")))
    assert (host / "secret").read_text() == "host secret\n"
    assert (root / "data/trap").read_text() == "mine"


def test_no_overwrite_dir_non_dir(root: Path) -> None:
    with ContainerFS(str(root), "c") as fs, pytest.raises(TarError) as e:
        fs.extract("/data", _tar(("file", "sub", "x")), no_overwrite_dir_non_dir=True)
    assert e.value.message == ('Error processing tar file(exit status 1): cannot overwrite '
                               'directory "/data/sub" with non-directory "/data"')
    assert (root / "data/sub").is_dir()


def test_extract_into_a_file_is_refused(root: Path) -> None:
    with ContainerFS(str(root), "c") as fs, pytest.raises(EngineError, match="not a directory"):
        fs.extract("/data/a.txt", _tar(("file", "x", "x")))


def test_member_parts() -> None:
    assert member_parts("/a/./b/") == ("a", "b")
    assert member_parts("a/../b") == ("b",)
    with pytest.raises(InvalidParameter):
        member_parts("a/../../b")


def test_export_lists_the_whole_root(root: Path) -> None:
    out = io.BytesIO()
    with ContainerFS(str(root), "c") as fs:
        fs.export(out)
    names = _names(out.getvalue())
    assert "etc/passwd" in names and "hostroot" in names and "data/sub/b.txt" in names
