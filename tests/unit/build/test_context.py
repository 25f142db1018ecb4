"""Receiving a build context: hostile tars, compression, .dockerignore, the Dockerfile."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import lzma
import os
import tarfile
from pathlib import Path

import pytest
import zstandard

from dockyard.build.archives import is_archive
from dockyard.build.context import (
    ContextError,
    extract_context,
    read_dockerfile,
    remove_build_files,
)
from dockyard.build.copying import content_digest
from dockyard.build.filedigests import FileDigests

Entry = tuple[str, str, object]  # (name, kind, data or link target)


def make_tar(entries: list[Entry], **attrs: object) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, data in entries:
            info = tarfile.TarInfo(name)
            info.mtime = 1_600_000_000
            info.mode = 0o644
            for key, value in attrs.items():
                setattr(info, key, value)
            if kind == "dir":
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            elif kind == "sym":
                info.type, info.linkname = tarfile.SYMTYPE, str(data)
                tar.addfile(info)
            elif kind == "hard":
                info.type, info.linkname = tarfile.LNKTYPE, str(data)
                tar.addfile(info)
            elif kind == "fifo":
                info.type = tarfile.FIFOTYPE
                tar.addfile(info)
            else:
                payload = data if isinstance(data, bytes) else str(data).encode()
                info.size = len(payload)
                tar.addfile(info, io.BytesIO(payload))
    return buf.getvalue()


def extract(tmp_path: Path, entries: list[Entry], **kw: object) -> Path:
    return extract_context(io.BytesIO(make_tar(entries)), tmp_path / "ctx", **kw)  # type: ignore[arg-type]


def test_files_dirs_symlinks_modes_and_mtimes_are_kept(tmp_path: Path) -> None:
    ctx = extract(tmp_path, [("Dockerfile", "file", "FROM scratch\n"), ("src", "dir", None),
                             ("src/run.sh", "file", "#!/bin/sh\n"), ("link", "sym", "src/run.sh"),
                             ("out", "sym", "/etc/passwd")])
    assert (ctx / "src/run.sh").read_text() == "#!/bin/sh\n"
    assert os.readlink(ctx / "link") == "src/run.sh"
    assert os.readlink(ctx / "out") == "/etc/passwd"  # kept as written, never followed
    assert (ctx / "src").stat().st_mtime == 1_600_000_000
    assert (ctx / "src/run.sh").stat().st_mode & 0o777 == 0o644


@pytest.mark.parametrize("compress", [
    gzip.compress, bz2.compress, lzma.compress, zstandard.ZstdCompressor().compress,
    lambda b: b,
])
def test_compressed_contexts_are_detected_by_magic(tmp_path: Path, compress) -> None:  # type: ignore[no-untyped-def]
    data = compress(make_tar([("Dockerfile", "file", "FROM scratch\n")]))
    ctx = extract_context(io.BytesIO(data), tmp_path / "ctx")
    assert read_dockerfile(ctx) == "FROM scratch\n"


@pytest.mark.parametrize("name", ["../evil", "a/../../evil", "/etc/evil"])
def test_escaping_and_absolute_member_names_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(ContextError, match="invalid tar member"):
        extract(tmp_path, [(name, "file", "x")])
    assert not (tmp_path / "evil").exists()


def test_a_file_through_a_symlink_stays_inside(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    ctx = extract(tmp_path, [("a", "sym", str(outside)), ("a/pwned", "file", "x"),
                             ("b", "sym", "../../.."), ("b/pwned2", "file", "y")])
    assert not (outside / "pwned").exists()
    assert (ctx / str(outside).lstrip("/") / "pwned").read_text() == "x"
    assert (ctx / "pwned2").read_text() == "y"  # ".." stops at the context root
    assert os.path.islink(ctx / "b")


def test_a_file_member_never_writes_through_a_symlink_member(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("safe")
    ctx = extract(tmp_path, [("f", "sym", str(victim)), ("f", "file", "overwritten")])
    assert victim.read_text() == "safe"
    assert (ctx / "f").read_text() == "overwritten" and not os.path.islink(ctx / "f")


def test_hardlinks_must_point_into_the_archive(tmp_path: Path) -> None:
    ctx = extract(tmp_path, [("a", "file", "data"), ("b", "hard", "a")])
    assert os.stat(ctx / "a").st_ino == os.stat(ctx / "b").st_ino
    with pytest.raises(ContextError, match="invalid hardlink"):
        extract(tmp_path / "2", [("b", "hard", "../../etc/passwd")])
    with pytest.raises(ContextError, match="invalid hardlink"):
        extract(tmp_path / "3", [("b", "hard", "missing")])


def test_hardlink_through_a_symlink_stays_inside(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("host")
    with pytest.raises(ContextError, match="invalid hardlink"):
        extract(tmp_path, [("s", "sym", str(tmp_path)), ("h", "hard", "s/secret")])


def test_fifos_and_devices_are_skipped(tmp_path: Path) -> None:
    ctx = extract(tmp_path, [("p", "fifo", None), ("f", "file", "x")])
    assert not (ctx / "p").exists() and (ctx / "f").exists()


def test_owner_is_kept_when_root(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to chown")
    data = make_tar([("f", "file", "x")], uid=1234, gid=5678)
    ctx = extract_context(io.BytesIO(data), tmp_path / "ctx")
    st = (ctx / "f").stat()
    assert (st.st_uid, st.st_gid) == (1234, 5678)


def test_max_size_is_enforced(tmp_path: Path) -> None:
    with pytest.raises(ContextError, match="larger than"):
        extract(tmp_path, [("big", "file", b"x" * 100_000)], max_size=10_000)


def test_corrupt_stream_is_a_context_error(tmp_path: Path) -> None:
    with pytest.raises(ContextError):
        extract_context(io.BytesIO(gzip.compress(b"x" * 1000)[:50]), tmp_path / "ctx")


def test_dockerignore_is_applied_but_keeps_dockerfile_and_itself(tmp_path: Path) -> None:
    ctx = extract(tmp_path, [
        (".dockerignore", "file", "*\n!src\nsrc/*.tmp\ndocs\n!docs/keep.md\n"),
        ("Dockerfile", "file", "FROM scratch\n"), ("secret.env", "file", "k"),
        ("src", "dir", None), ("src/a.go", "file", "a"), ("src/b.tmp", "file", "b"),
        ("docs", "dir", None), ("docs/keep.md", "file", "k"), ("docs/drop.md", "file", "d"),
        ("node_modules", "dir", None), ("node_modules/x", "file", "x"),
    ])
    names = sorted(str(p.relative_to(ctx)) for p in ctx.rglob("*"))
    assert names == [".dockerignore", "Dockerfile", "docs", "docs/keep.md", "src", "src/a.go"]
    remove_build_files(ctx)
    assert not (ctx / "Dockerfile").exists() and not (ctx / ".dockerignore").exists()


def test_remove_build_files_keeps_what_is_not_listed(tmp_path: Path) -> None:
    ctx = extract(tmp_path, [(".dockerignore", "file", "*.md\n"),
                             ("Dockerfile", "file", "FROM scratch\n")])
    remove_build_files(ctx)
    assert (ctx / "Dockerfile").exists() and (ctx / ".dockerignore").exists()


def test_custom_dockerfile_inside_context(tmp_path: Path) -> None:
    ctx = extract(tmp_path, [("build/Dockerfile.dev", "file", "FROM a\n"),
                             (".dockerignore", "file", "build\n")],
                  dockerfile="build/Dockerfile.dev")
    assert read_dockerfile(ctx, "build/Dockerfile.dev") == "FROM a\n"


def test_missing_dockerfile_has_dockers_message(tmp_path: Path) -> None:
    ctx = extract(tmp_path, [("x", "file", "")])
    with pytest.raises(ContextError, match=r"^Cannot locate specified Dockerfile: Dockerfile$"):
        read_dockerfile(ctx)
    with pytest.raises(ContextError, match="Cannot locate specified Dockerfile: other"):
        read_dockerfile(ctx, "other")


def test_lowercase_dockerfile_is_the_default_fallback(tmp_path: Path) -> None:
    ctx = extract(tmp_path, [("dockerfile", "file", "FROM b\n")])
    assert read_dockerfile(ctx) == "FROM b\n"


def test_dockerfile_path_cannot_leave_the_context(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM host\n")
    ctx = extract(tmp_path, [("link", "sym", "../Dockerfile")])
    with pytest.raises(ContextError, match="Forbidden path outside the build context"):
        read_dockerfile(ctx, "../Dockerfile")
    with pytest.raises(ContextError, match="Cannot locate"):
        read_dockerfile(ctx, "link")  # scoped: ctx/Dockerfile, which is not there


def test_empty_dockerfile_is_refused(tmp_path: Path) -> None:
    ctx = extract(tmp_path, [("Dockerfile", "file", "")])
    with pytest.raises(ContextError, match=r"the Dockerfile \(Dockerfile\) cannot be empty"):
        read_dockerfile(ctx)


def test_is_archive_recognises_compressed_tars_only(tmp_path: Path) -> None:
    (tmp_path / "a.tar.xz").write_bytes(lzma.compress(make_tar([("f", "file", "x")])))
    (tmp_path / "plain.txt").write_text("hello, not a tar\n" * 50)
    assert is_archive(tmp_path / "a.tar.xz")
    assert not is_archive(tmp_path / "plain.txt")


def test_remove_build_files_never_deletes_outside(tmp_path: Path) -> None:
    host = tmp_path / "host"
    host.mkdir()
    (host / "Dockerfile").write_text("FROM host\n")
    ctx = extract(tmp_path, [(".dockerignore", "file", "**/Dockerfile\n"),
                             ("sub", "sym", str(host))])
    assert os.path.islink(ctx / "sub")
    remove_build_files(ctx, "sub/Dockerfile")
    assert (host / "Dockerfile").exists()


def _digests_after(tmp_path: Path, data: bytes, stream_kind: str) -> tuple[Path, FileDigests]:
    digests = FileDigests()
    raw = io.BytesIO(data)
    stream = io.BufferedReader(raw) if stream_kind == "buffered" else raw  # peekable or not
    ctx = extract_context(stream, tmp_path / "ctx", digests=digests)  # type: ignore[arg-type]
    return ctx, digests


@pytest.mark.parametrize("stream_kind", ["buffered", "plain"])
def test_files_are_hashed_as_the_context_is_unpacked(tmp_path: Path, stream_kind: str) -> None:
    big = os.urandom(3 * (1 << 20) + 123)  # several buffers, and a part of one
    long_name = "d/" + "n" * 150  # a pax header before the member
    entries: list[Entry] = [("Dockerfile", "file", "FROM scratch\n"), ("d", "dir", None),
                            ("big", "file", big), (long_name, "file", "long"),
                            ("empty", "file", b""), ("twice", "file", "first"),
                            ("twice", "file", "second"), ("link", "sym", "big")]
    ctx, digests = _digests_after(tmp_path, make_tar(entries), stream_kind)
    for name, content in (("big", big), (long_name, b"long"), ("empty", b""),
                          ("twice", b"second"), ("Dockerfile", b"FROM scratch\n")):
        path = ctx / name
        assert path.read_bytes() == content
        assert digests.lookup(path.stat()) == hashlib.sha256(content).digest()
    assert digests.lookup((ctx / "d").stat()) is None  # directories are not hashed
    with open(ctx / "big", "r+b") as f:  # changed since: hashed again by whoever needs it
        f.write(b"x")
    assert digests.lookup((ctx / "big").stat()) is None


def test_a_context_cut_inside_a_file_is_a_context_error(tmp_path: Path) -> None:
    data = make_tar([("Dockerfile", "file", "FROM scratch\n"), ("f", "file", b"y" * 5000)])
    with pytest.raises(ContextError, match="invalid build context"):
        _digests_after(tmp_path, data[:2048], "buffered")


def test_known_digests_give_the_same_cache_key(tmp_path: Path) -> None:
    entries: list[Entry] = [("Dockerfile", "file", "FROM scratch\n"), ("src", "dir", None),
                            ("src/a", "file", b"a" * 70_000), ("src/b", "sym", "a")]
    ctx, digests = _digests_after(tmp_path, make_tar(entries), "buffered")
    sources = [ctx / "src", ctx / "Dockerfile"]
    assert content_digest(ctx, sources, known=digests) == content_digest(ctx, sources)
    before = content_digest(ctx, sources, known=digests)
    (ctx / "src/a").write_bytes(b"b" * 70_000)  # same size, new content: not trusted
    assert content_digest(ctx, sources, known=digests) == content_digest(ctx, sources) != \
        before


def test_a_sparse_member_is_unpacked_and_hashed_whole(tmp_path: Path) -> None:
    import subprocess

    src = tmp_path / "src"
    src.mkdir()
    (src / "Dockerfile").write_text("FROM scratch\n")
    with open(src / "holes", "wb") as f:  # 3 MiB, one data region in the middle
        f.truncate(3 << 20)
        f.seek(1 << 20)
        f.write(b"data in the middle")
    archive = tmp_path / "ctx.tar"
    subprocess.run(["tar", "--sparse", "--format=gnu", "-C", str(src), "-cf", str(archive),
                    "."], check=True)
    with open(archive, "rb") as f:
        raw = f.read()
    ctx, digests = _digests_after(tmp_path, raw, "buffered")
    content = (src / "holes").read_bytes()
    assert (ctx / "holes").read_bytes() == content
    assert digests.lookup((ctx / "holes").stat()) == hashlib.sha256(content).digest()
