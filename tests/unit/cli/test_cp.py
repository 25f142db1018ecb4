"""docker cp's path rules (docker's archive package), without a daemon."""

from __future__ import annotations

import io
import tarfile

import pytest

from dockyard.cli.files import (
    CopyInfo,
    parse_repository,
    prepare_copy,
    rebase_name,
    split_cp_arg,
    split_dir_entry,
    untar,
)
from dockyard.cli.flags import CommandError


@pytest.mark.parametrize(("arg", "expected"), [
    ("c1:/tmp/x", ("c1", "/tmp/x")),
    ("/abs:colon", ("", "/abs:colon")),
    ("./rel:colon", ("", "./rel:colon")),
    ("plain", ("", "plain")),
    ("-", ("", "-")),
    ("c1:", ("c1", "")),
])
def test_a_local_path_with_a_colon_must_start_with_a_slash_or_a_dot(arg, expected):
    assert split_cp_arg(arg) == expected


@pytest.mark.parametrize(("path", "expected"), [
    ("/a/b", ("/a", "b")),
    ("/a/b/", ("/a", "b")),
    ("/a/b/.", ("/a/b", ".")),
    ("b", (".", "b")),
    ("/", ("/", "/")),
])
def test_split_dir_entry_keeps_a_trailing_dot_as_the_entry(path, expected):
    assert split_dir_entry(path) == expected


def test_a_followed_link_is_renamed_back_to_the_links_name():
    assert rebase_name("/tmp/ld", "/tmp/d") == ("/tmp/d", "ld")
    assert rebase_name("/tmp/ld/", "/tmp/d") == ("/tmp/d/", "ld")
    assert rebase_name("/tmp/d", "/tmp/d") == ("/tmp/d", "")


def test_prepare_copy_picks_the_directory_and_the_name_as_docker_does():
    f, d = CopyInfo("/s/f", True, False), CopyInfo("/s/d", True, True)
    assert prepare_copy(f, CopyInfo("/t", True, True)) == ("/t", "f", "f")
    assert prepare_copy(f, CopyInfo("/t/g", True, False)) == ("/t", "f", "g")
    assert prepare_copy(d, CopyInfo("/t/new")) == ("/t", "d", "new")
    assert prepare_copy(f, CopyInfo("/t/new")) == ("/t", "f", "new")
    with pytest.raises(CommandError, match=r"^cannot copy directory$"):
        prepare_copy(d, CopyInfo("/t/g", True, False))
    with pytest.raises(CommandError, match=r"^no such directory$"):
        prepare_copy(f, CopyInfo("/t/missing/"))


def _tar(*members: tuple[str, bytes | None, str]) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for name, data, link in members:
            info = tarfile.TarInfo(name)
            if link:
                info.type, info.linkname = tarfile.LNKTYPE, link
                t.addfile(info)
            elif data is None:
                info.type = tarfile.DIRTYPE
                t.addfile(info)
            else:
                info.size = len(data)
                t.addfile(info, io.BytesIO(data))
    buf.seek(0)
    return buf


def test_untar_renames_the_entry_and_counts_the_bytes(tmp_path):
    src = _tar(("d", None, ""), ("d/a", b"abc", ""))
    assert untar(src, str(tmp_path), [("d", "e")]) == 3
    assert (tmp_path / "e" / "a").read_bytes() == b"abc"


@pytest.mark.parametrize("members", [
    [("../escape", b"x", "")],
    [("a/../../escape", b"x", "")],
    [("f", b"x", ""), ("h", None, "../../etc/passwd")],
])
def test_untar_refuses_entries_outside_the_destination(tmp_path, members):
    into = tmp_path / "into"
    into.mkdir()
    with pytest.raises(CommandError):
        untar(_tar(*members), str(into), [])
    assert not (tmp_path / "escape").exists()


def test_untar_will_not_replace_a_directory_with_a_file(tmp_path):
    (tmp_path / "x").mkdir()
    with pytest.raises(CommandError, match="cannot overwrite directory"):
        untar(_tar(("x", b"data", "")), str(tmp_path), [])


@pytest.mark.parametrize(("ref", "expected"), [
    ("img", ("docker.io/library/img", "")),
    ("img:1", ("docker.io/library/img", "1")),
    ("localhost:5000/q:t", ("localhost:5000/q", "t")),
    ("Bad/x", ("Bad/x", "")),  # an upper-case first component is a registry host to docker
])
def test_commit_repository_is_read_as_docker_reads_it(ref, expected):
    assert parse_repository(ref) == expected


@pytest.mark.parametrize(("ref", "message"), [
    ("BAD:x:y", "invalid reference format: repository name (library/BAD) must be lowercase"),
    ("x/Y", "invalid reference format: repository name (x/Y) must be lowercase"),
    ("a:b:c", "invalid reference format"),
    ("a@b", "invalid reference format"),
])
def test_commit_repository_errors_are_dockers(ref, message):
    with pytest.raises(CommandError) as e:
        parse_repository(ref)
    assert str(e.value) == message
