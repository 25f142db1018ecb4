"""COPY/ADD: sources in the context, Docker's destination rules, a hostile destination root,
ownership and modes, ADD's archives and URLs, and the content digest."""

from __future__ import annotations

import gzip
import http.server
import io
import os
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard.build.copying import (
    CopyError,
    content_digest,
    copy,
    fetch_url,
    make_dirs,
    resolve_chown,
    resolve_sources,
)

AS_ROOT = os.geteuid() == 0


@pytest.fixture
def ctx(tmp_path: Path) -> Path:
    c = tmp_path / "ctx"
    (c / "src/sub").mkdir(parents=True)
    (c / "a.txt").write_text("a")
    (c / "b.txt").write_text("b")
    (c / "run.sh").write_text("#!/bin/sh\n")
    (c / "run.sh").chmod(0o755)
    (c / "src/main.go").write_text("package main\n")
    (c / "src/sub/deep.txt").write_text("deep")
    os.symlink("main.go", c / "src/link")
    os.symlink("a.txt", c / "alias")
    return c


@pytest.fixture
def rootfs(tmp_path: Path) -> Path:
    r = tmp_path / "rootfs"
    (r / "etc").mkdir(parents=True)
    (r / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home:/bin/sh\n")
    (r / "etc/group").write_text("root:x:0:\nstaff:x:50:\napp:x:1001:\n")
    return r


def rel(paths: list[Path], ctx: Path) -> list[str]:
    return [str(p.relative_to(ctx)) if p != ctx else "." for p in paths]


def test_sources_drop_leading_slash_and_dot(ctx: Path) -> None:
    assert rel(resolve_sources(ctx, ["/a.txt", "./src", "."]), ctx) == ["a.txt", "src", "."]


def test_wildcards_are_go_filepath_match_in_lexical_order(ctx: Path) -> None:
    assert rel(resolve_sources(ctx, ["*.txt"]), ctx) == ["a.txt", "b.txt"]
    assert rel(resolve_sources(ctx, ["src/*"]), ctx) == ["src/link", "src/main.go", "src/sub"]
    assert rel(resolve_sources(ctx, ["s?c/ma[a-z]n.go"]), ctx) == ["src/main.go"]


def test_missing_source_has_the_classic_builders_message(ctx: Path) -> None:
    with pytest.raises(CopyError) as e:
        resolve_sources(ctx, ["nope"])
    assert str(e.value) == ("file not found in build context or excluded by .dockerignore: "
                            "stat nope: file does not exist")
    with pytest.raises(CopyError, match="no source files were specified"):
        resolve_sources(ctx, ["*.none"])


def test_sources_cannot_leave_the_context(ctx: Path, tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("host")
    with pytest.raises(CopyError, match="stat secret: file does not exist"):
        resolve_sources(ctx, ["../secret"])  # scoped: ctx/secret
    (ctx / "secret").write_text("ctx")
    assert rel(resolve_sources(ctx, ["../../secret"]), ctx) == ["secret"]
    (ctx / "secret").unlink()
    os.symlink("../secret", ctx / "out")
    with pytest.raises(CopyError, match="file not found"):
        resolve_sources(ctx, ["out"])  # the link is read inside the context: ctx/secret


def test_excludes_drop_sources(ctx: Path) -> None:
    assert rel(resolve_sources(ctx, ["*.txt"], excludes=["b*"]), ctx) == ["a.txt"]


def test_file_into_directory_or_to_a_new_name(ctx: Path, rootfs: Path) -> None:
    copy(resolve_sources(ctx, ["a.txt"]), ctx, rootfs, "/app/")
    copy(resolve_sources(ctx, ["b.txt"]), ctx, rootfs, "/app/renamed")
    copy(resolve_sources(ctx, ["run.sh"]), ctx, rootfs, "/app")  # an existing directory
    assert (rootfs / "app/a.txt").read_text() == "a"
    assert (rootfs / "app/renamed").read_text() == "b"
    assert (rootfs / "app/run.sh").stat().st_mode & 0o777 == 0o755


def test_directory_source_copies_its_contents(ctx: Path, rootfs: Path) -> None:
    copy(resolve_sources(ctx, ["src"]), ctx, rootfs, "/dst")
    assert sorted(p.name for p in (rootfs / "dst").iterdir()) == ["link", "main.go", "sub"]
    assert os.readlink(rootfs / "dst/link") == "main.go"  # copied as a symlink
    assert (rootfs / "dst/sub/deep.txt").read_text() == "deep"


def test_several_sources_need_a_directory_destination(ctx: Path, rootfs: Path) -> None:
    with pytest.raises(CopyError, match="When using COPY with more than one source file, the "
                                        "destination must be a directory and end with a /"):
        copy(resolve_sources(ctx, ["*.txt"]), ctx, rootfs, "/app")
    copy(resolve_sources(ctx, ["*.txt"]), ctx, rootfs, "/app/")
    assert sorted(os.listdir(rootfs / "app")) == ["a.txt", "b.txt"]


def test_relative_destination_is_under_workdir(ctx: Path, rootfs: Path) -> None:
    copy(resolve_sources(ctx, ["a.txt"]), ctx, rootfs, "conf/", workdir="/srv/app")
    copy(resolve_sources(ctx, ["b.txt"]), ctx, rootfs, ".", workdir="/srv/app")
    assert (rootfs / "srv/app/conf/a.txt").exists()
    assert (rootfs / "srv/app/b.txt").exists()


def test_top_level_symlink_source_is_followed_and_keeps_its_name(ctx: Path,
                                                                  rootfs: Path) -> None:
    copy(resolve_sources(ctx, ["alias"]), ctx, rootfs, "/x/")
    assert not os.path.islink(rootfs / "x/alias")
    assert (rootfs / "x/alias").read_text() == "a"


def test_hardlinks_are_kept(ctx: Path, rootfs: Path) -> None:
    os.link(ctx / "src/main.go", ctx / "src/hard.go")
    copy(resolve_sources(ctx, ["src"]), ctx, rootfs, "/d/")
    assert os.stat(rootfs / "d/main.go").st_ino == os.stat(rootfs / "d/hard.go").st_ino


def test_chmod_applies_to_copied_entries(ctx: Path, rootfs: Path) -> None:
    copy(resolve_sources(ctx, ["src"]), ctx, rootfs, "/d/", chmod=0o640)
    assert (rootfs / "d/main.go").stat().st_mode & 0o7777 == 0o640
    assert (rootfs / "d/sub").stat().st_mode & 0o7777 == 0o640


@pytest.mark.skipif(not AS_ROOT, reason="chown needs root")
def test_chown_owns_copies_and_created_parents(ctx: Path, rootfs: Path) -> None:
    (ctx / "a.txt").chmod(0o600)
    os.chown(ctx / "a.txt", 4242, 4242)
    copy(resolve_sources(ctx, ["a.txt"]), ctx, rootfs, "/new/parent/", chown=(1000, 50))
    for p in ("new", "new/parent", "new/parent/a.txt"):
        st = (rootfs / p).lstat()
        assert (st.st_uid, st.st_gid) == (1000, 50), p
    assert (rootfs / "new").stat().st_mode & 0o777 == 0o755
    copy(resolve_sources(ctx, ["a.txt"]), ctx, rootfs, "/plain/")
    st = (rootfs / "plain/a.txt").stat()
    assert (st.st_uid, st.st_gid) == (0, 0)  # no --chown: 0:0, not the context's owner


def test_resolve_chown_reads_the_destination_databases(rootfs: Path) -> None:
    assert resolve_chown("app", rootfs) == (1000, 1001)  # the group named like the user
    assert resolve_chown("app:staff", rootfs) == (1000, 50)
    assert resolve_chown("10:20", rootfs) == (10, 20)
    assert resolve_chown("7", rootfs) == (7, 7)
    with pytest.raises(CopyError, match="can't find uid for user bob: no such user: bob"):
        resolve_chown("bob", rootfs)
    with pytest.raises(CopyError, match="can't find gid for group nogroup: no such group"):
        resolve_chown("app:nogroup", rootfs)
    with pytest.raises(CopyError, match="invalid chown string format: a:b:c"):
        resolve_chown("a:b:c", rootfs)


def test_destination_symlinks_never_lead_out_of_the_root(ctx: Path, rootfs: Path,
                                                         tmp_path: Path) -> None:
    host = tmp_path / "host"
    host.mkdir()
    os.symlink(str(host), rootfs / "abs")
    os.symlink("../../../../..", rootfs / "up")
    os.symlink("/", rootfs / "etc/root")
    copy(resolve_sources(ctx, ["a.txt"]), ctx, rootfs, "/abs/")
    copy(resolve_sources(ctx, ["b.txt"]), ctx, rootfs, "/up/b.txt")
    copy(resolve_sources(ctx, ["src"]), ctx, rootfs, "/etc/root/tree/")
    assert list(host.iterdir()) == []
    assert (rootfs / str(host).lstrip("/") / "a.txt").read_text() == "a"
    assert (rootfs / "b.txt").read_text() == "b"
    assert (rootfs / "tree/main.go").exists()


def test_copy_over_a_symlinked_file_replaces_the_link(ctx: Path, rootfs: Path,
                                                      tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("host")
    (rootfs / "d").mkdir()
    os.symlink(str(victim), rootfs / "d/main.go")
    copy(resolve_sources(ctx, ["src"]), ctx, rootfs, "/d/")
    assert victim.read_text() == "host"
    assert (rootfs / "d/main.go").read_text() == "package main\n"


def test_parents_keeps_source_paths(ctx: Path, rootfs: Path) -> None:
    copy(resolve_sources(ctx, ["src/sub/deep.txt", "a.txt"]), ctx, rootfs, "/p/", parents=True)
    assert (rootfs / "p/src/sub/deep.txt").exists() and (rootfs / "p/a.txt").exists()


def test_excludes_apply_inside_directories(ctx: Path, rootfs: Path) -> None:
    copy(resolve_sources(ctx, ["src"]), ctx, rootfs, "/e/", excludes=["sub"])
    assert not (rootfs / "e/sub").exists() and (rootfs / "e/main.go").exists()


def _tar_gz() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in (("pkg/bin/tool", b"tool"), ("/abs.txt", b"abs")):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o750
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(buf.getvalue(), mtime=0)


def test_add_unpacks_local_archives_and_copy_does_not(ctx: Path, rootfs: Path) -> None:
    (ctx / "pkg.tar.gz").write_bytes(_tar_gz())
    copy(resolve_sources(ctx, ["pkg.tar.gz"]), ctx, rootfs, "/opt/", add_archives=True)
    assert (rootfs / "opt/pkg/bin/tool").read_bytes() == b"tool"
    assert (rootfs / "opt/abs.txt").read_bytes() == b"abs"  # "/" names land under the dest
    assert (rootfs / "opt/pkg/bin/tool").stat().st_mode & 0o777 == 0o750
    copy(resolve_sources(ctx, ["pkg.tar.gz"]), ctx, rootfs, "/raw/")
    assert (rootfs / "raw/pkg.tar.gz").read_bytes() == _tar_gz()


def test_add_archive_with_escaping_member_is_refused(ctx: Path, rootfs: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("../../evil")
        tar.addfile(info, io.BytesIO(b""))
    (ctx / "evil.tar").write_bytes(buf.getvalue())
    with pytest.raises(CopyError, match="escapes"):
        copy(resolve_sources(ctx, ["evil.tar"]), ctx, rootfs, "/opt/", add_archives=True)


@pytest.fixture
def server() -> Iterator[str]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.startswith("/missing"):
                self.send_error(404)
                return
            body = b"downloaded"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Last-Modified", "Wed, 21 Oct 2015 07:28:00 GMT")
            if self.path == "/":
                self.send_header("Content-Disposition", 'attachment; filename="disp.bin"')
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_add_url_downloads_with_mode_0600_and_last_modified(server: str, rootfs: Path) -> None:
    fetch_url(f"{server}/files/tool.bin", rootfs, "/dl/")
    path = rootfs / "dl/tool.bin"
    assert path.read_bytes() == b"downloaded"
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.stat().st_mtime == 1445412480
    fetch_url(f"{server}/files/x", rootfs, "/dl/named")
    assert (rootfs / "dl/named").read_bytes() == b"downloaded"
    fetch_url(f"{server}/", rootfs, "/dl/")
    assert (rootfs / "dl/disp.bin").exists()
    fetch_url(f"{server}/y/into-existing", rootfs, "/dl")  # an existing directory
    assert (rootfs / "dl/into-existing").exists()


@pytest.mark.skipif(not AS_ROOT, reason="chown needs root")
def test_add_url_chown_and_chmod(server: str, rootfs: Path) -> None:
    fetch_url(f"{server}/f", rootfs, "/u/f", chown=(5, 6), chmod=0o644)
    st = (rootfs / "u/f").stat()
    assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (5, 6, 0o644)


def test_add_url_error_status_is_reported(server: str, rootfs: Path) -> None:
    with pytest.raises(CopyError, match=r"failed to GET .* with status 404"):
        fetch_url(f"{server}/missing", rootfs, "/dl/")


def test_digest_follows_content_not_times(ctx: Path) -> None:
    sources = resolve_sources(ctx, ["src"])
    first = content_digest(ctx, sources)
    assert content_digest(ctx, sources) == first
    os.utime(ctx / "src/main.go", (1, 1))
    assert content_digest(ctx, sources) == first
    (ctx / "a.txt").write_text("not read by this COPY")
    assert content_digest(ctx, sources) == first
    (ctx / "src/sub/deep.txt").write_text("changed")
    assert content_digest(ctx, sources) != first


def test_digest_sees_modes_links_and_names(ctx: Path) -> None:
    sources = resolve_sources(ctx, ["src"])
    first = content_digest(ctx, sources)
    (ctx / "src/main.go").chmod(0o700)
    second = content_digest(ctx, sources)
    assert second != first
    os.unlink(ctx / "src/link")
    os.symlink("sub", ctx / "src/link")
    third = content_digest(ctx, sources)
    assert third != second
    os.rename(ctx / "src/sub/deep.txt", ctx / "src/sub/deeper.txt")
    assert content_digest(ctx, sources) != third


def test_directory_symlinks_on_a_source_path_stay_in_the_context(ctx: Path, rootfs: Path,
                                                                 tmp_path: Path) -> None:
    host = tmp_path / "hostdir"
    host.mkdir()
    (host / "secret").write_text("host")
    os.symlink(str(host), ctx / "hd")
    for follow in (True, False):
        with pytest.raises(CopyError, match="file not found"):
            resolve_sources(ctx, ["hd/secret"], follow_links=follow)


def test_unfollowed_symlink_source_is_copied_as_a_link(ctx: Path, rootfs: Path) -> None:
    sources = resolve_sources(ctx, ["alias"], follow_links=False)
    copy(sources, ctx, rootfs, "/l/", follow_links=False)
    assert os.readlink(rootfs / "l/alias") == "a.txt"


def test_make_dirs_stays_in_the_root(rootfs: Path, tmp_path: Path) -> None:
    os.symlink(str(tmp_path), rootfs / "w")
    make_dirs(rootfs, "/w/app/data")
    assert (rootfs / str(tmp_path).lstrip("/") / "app/data").is_dir()
    assert not (tmp_path / "app").exists()
