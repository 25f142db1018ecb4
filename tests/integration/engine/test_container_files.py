"""docker diff, export, cp (both ways, running and stopped, hostile cases) and commit against
a real dockyardd, with the docker CLI and the SDK."""

from __future__ import annotations

import base64
import io
import json
import subprocess
import tarfile
from pathlib import Path

import pytest

from tests.conftest import unique

pytestmark = pytest.mark.root


@pytest.fixture
def name(engine) -> str:
    n = unique("files")
    yield n
    engine.docker("rm", "-f", n, check=False)


def _run(engine, name: str, *cmd: str) -> None:
    engine.docker("run", "-d", "--name", name, "busybox", *cmd)


def _tar(*members: tuple[str, str, str]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for kind, member, data in members:
            info = tarfile.TarInfo(member)
            info.mode = 0o644
            if kind == "file":
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data.encode()))
            elif kind == "sym":
                info.type, info.linkname = tarfile.SYMTYPE, data
                tar.addfile(info)
            elif kind == "link":
                info.type, info.linkname = tarfile.LNKTYPE, data
                tar.addfile(info)
    return buf.getvalue()


def test_diff_lists_added_modified_deleted(engine, name) -> None:
    engine.docker("run", "--name", name, "busybox", "sh", "-c",
                  "touch /tmp/new && rm /etc/group && mkdir -p /srv/d && echo x > /srv/d/f")
    out = engine.docker("diff", name).stdout.decode().splitlines()
    assert "A /tmp/new" in out and "C /tmp" in out
    assert "C /etc" in out and "D /etc/group" in out
    assert "A /srv/d/f" in out
    api = engine.sdk.api.diff(name)
    assert {"Path": "/etc/group", "Kind": 2} in api


def test_diff_of_an_untouched_container_is_empty(engine, name) -> None:
    engine.docker("run", "--name", name, "busybox", "true")
    assert engine.docker("diff", name).stdout == b""


def test_export_is_the_whole_filesystem(engine, name) -> None:
    engine.docker("run", "--name", name, "busybox", "sh", "-c", "echo hi > /marker")
    data = engine.docker("export", name).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        names = tar.getnames()
        marker = tar.extractfile("marker")
        assert marker is not None and marker.read() == b"hi\n"
    assert "bin/busybox" in names and "etc/passwd" in names


def test_export_of_a_running_container(engine, name) -> None:
    _run(engine, name, "sh", "-c", "echo live > /live; sleep 60")
    engine.docker("exec", name, "test", "-f", "/live")
    data = engine.docker("export", name).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        assert "live" in tar.getnames()


def test_cp_out_file_and_directory_running_and_stopped(engine, name, tmp_path) -> None:
    _run(engine, name, "sh", "-c",
         "mkdir -p /d/sub && echo one > /d/one && echo two > /d/sub/two && sleep 60")
    engine.docker("exec", name, "test", "-f", "/d/sub/two")
    engine.docker("cp", f"{name}:/d/one", str(tmp_path / "one"))
    assert (tmp_path / "one").read_text() == "one\n"
    engine.docker("cp", f"{name}:/d", str(tmp_path / "d"))
    assert (tmp_path / "d/sub/two").read_text() == "two\n"
    engine.docker("stop", "-t", "0", name)
    engine.docker("cp", f"{name}:/d/.", str(tmp_path / "stopped"))
    assert (tmp_path / "stopped/sub/two").read_text() == "two\n"
    engine.docker("cp", f"{name}:/", str(tmp_path / "all"))
    assert (tmp_path / "all/d/one").read_text() == "one\n"
    assert (tmp_path / "all/bin/busybox").is_file()


def test_cp_in_file_and_directory_running_and_stopped(engine, name, tmp_path) -> None:
    (tmp_path / "f.txt").write_text("file in\n")
    (tmp_path / "dir/sub").mkdir(parents=True)
    (tmp_path / "dir/sub/x").write_text("x\n")
    _run(engine, name, "sleep", "60")
    engine.docker("cp", str(tmp_path / "f.txt"), f"{name}:/tmp/")
    engine.docker("cp", str(tmp_path / "dir"), f"{name}:/tmp/dir")
    assert engine.docker("exec", name, "cat", "/tmp/f.txt", "/tmp/dir/sub/x").stdout == \
        b"file in\nx\n"
    engine.docker("stop", "-t", "0", name)
    (tmp_path / "f.txt").write_text("stopped\n")
    engine.docker("cp", str(tmp_path / "f.txt"), f"{name}:/root/f.txt")
    engine.docker("start", name)
    assert engine.docker("exec", name, "cat", "/root/f.txt").stdout == b"stopped\n"


def test_archive_stat_header_and_errors(engine, name) -> None:
    _run(engine, name, "sh", "-c", "ln -s /etc /etclink; sleep 60")
    engine.docker("exec", name, "test", "-L", "/etclink")
    api = engine.sdk.api
    st = api.inspect_container(name) and api.get_archive(name, "/etc/passwd")[1]
    assert st["name"] == "passwd" and st["size"] > 0 and st["linkTarget"] == ""
    link = api.get_archive(name, "/etclink")[1]
    assert link["linkTarget"] == "/etc" and link["mode"] & (1 << 27)
    r = api._get(api._url("/containers/{0}/archive", name), params={"path": "/nope"})
    assert r.status_code == 404
    assert r.json()["message"] == f"Could not find the file /nope in container {name}"
    h = api._head(api._url("/containers/{0}/archive", name), params={"path": "/etc"}) \
        if hasattr(api, "_head") else api.head(api._url("/containers/{0}/archive", name),
                                                params={"path": "/etc"})
    doc = json.loads(base64.b64decode(h.headers["X-Docker-Container-Path-Stat"]))
    assert doc["name"] == "etc" and doc["mode"] & (1 << 31)
    p = engine.docker("cp", f"{name}:/nope", "-", check=False)
    assert p.returncode != 0 and b"Could not find the file /nope" in p.stderr


def test_hostile_symlinks_in_the_container_stay_inside(engine, name, tmp_path) -> None:
    _run(engine, name, "sh", "-c",
         "echo container > /etc/hostname.c; ln -s / /hostroot; ln -s /etc /etclink;"
         " ln -s ../../../../../../.. /up; sleep 60")
    engine.docker("exec", name, "test", "-L", "/up")
    engine.docker("cp", f"{name}:/hostroot/etc/hostname.c", str(tmp_path / "a"))
    assert (tmp_path / "a").read_text() == "container\n"
    engine.docker("cp", f"{name}:/up/etc/passwd", str(tmp_path / "p"))
    assert (tmp_path / "p").read_text() != Path("/etc/passwd").read_text()
    marker = unique("dyhostile")
    (tmp_path / marker).write_text("x")
    engine.docker("cp", str(tmp_path / marker), f"{name}:/etclink/")
    engine.docker("cp", str(tmp_path / marker), f"{name}:/up/tmp/")
    assert not Path(f"/etc/{marker}").exists() and not Path(f"/tmp/{marker}").exists()
    engine.docker("exec", name, "test", "-f", f"/etc/{marker}")
    engine.docker("exec", name, "test", "-f", f"/tmp/{marker}")
    engine.docker("stop", "-t", "0", name)  # the same through a mount of the snapshot
    engine.docker("cp", f"{name}:/hostroot/etc/hostname.c", str(tmp_path / "b"))
    assert (tmp_path / "b").read_text() == "container\n"
    engine.docker("cp", str(tmp_path / marker), f"{name}:/up/root/")
    assert not Path(f"/root/{marker}").exists()
    engine.docker("cp", f"{name}:/root/{marker}", str(tmp_path / "c"))


def test_hostile_tars_are_refused(engine, name) -> None:
    _run(engine, name, "sleep", "60")
    api = engine.sdk.api
    marker = unique("dyevil")
    for data in (_tar(("file", f"../../../../../../../tmp/{marker}", "x")),
                 _tar(("sym", "esc", "/tmp"), ("file", f"esc/{marker}", "x")),
                 _tar(("sym", "esc2", "../../../../../../../tmp"),),
                 _tar(("link", "h", "../../../../../etc/passwd"))):
        r = api._put(api._url("/containers/{0}/archive", name), params={"path": "/root"},
                     data=data)
        assert r.status_code == 500, r.text
        assert r.json()["message"].startswith("Error processing tar file(exit status 1): ")
    assert not Path(f"/tmp/{marker}").exists()
    assert engine.docker("exec", name, "ls", "/tmp").stdout == b""
    found = engine.docker("exec", name, "find", "/", "-xdev", "-name", marker).stdout
    assert found == b""  # (a symlink member before a refused one stays, as in Docker)


def test_commit_then_run_sees_the_change(engine, name) -> None:
    repo = unique("dycommit")
    engine.docker("run", "--name", name, "busybox", "sh", "-c", "echo committed > /hello")
    out = engine.docker("commit", "-c", "ENV FOO=bar", "-c", 'CMD ["cat", "/hello"]',
                        "-m", "a message", "-a", "me", name, f"{repo}:v1").stdout.decode()
    assert out.strip().startswith("sha256:")
    try:
        assert engine.docker("run", "--rm", f"{repo}:v1").stdout == b"committed\n"
        assert engine.docker("run", "--rm", f"{repo}:v1", "sh", "-c", "echo $FOO").stdout == \
            b"bar\n"
        info = engine.sdk.api.inspect_image(f"{repo}:v1")
        assert info["Id"] == out.strip()
        assert info["Comment"] == "a message" and info["Author"] == "me"
        assert len(info["RootFS"]["Layers"]) == 2
        engine.docker("commit", "-c", "WORKDIR /tmp", "-c", "USER nobody", name, f"{repo}:v2")
        assert engine.docker("run", "--rm", f"{repo}:v2", "sh", "-c",
                             "pwd; id -u").stdout == b"/tmp\n65534\n"
    finally:
        engine.docker("rmi", "-f", f"{repo}:v1", f"{repo}:v2", check=False)


def test_commit_of_a_running_container_with_the_sdk(engine, name) -> None:
    _run(engine, name, "sh", "-c", "echo running > /r; sleep 60")
    engine.docker("exec", name, "test", "-f", "/r")
    repo = unique("dycommit")
    image = engine.sdk.containers.get(name).commit(repository=repo, tag="latest")
    try:
        assert engine.docker("run", "--rm", repo, "cat", "/r").stdout == b"running\n"
        assert engine.sdk.containers.get(name).status == "running"
    finally:
        engine.docker("rmi", "-f", image.id, check=False)


def test_commit_errors(engine) -> None:
    p = engine.docker("commit", "nosuchcontainer", check=False)
    assert p.returncode != 0 and b"No such container: nosuchcontainer" in p.stderr


def test_export_does_not_leave_mounts(engine, name, tmp_path) -> None:
    engine.docker("run", "--name", name, "busybox", "true")
    engine.docker("export", "-o", str(tmp_path / "out.tar"), name)
    assert tarfile.is_tarfile(tmp_path / "out.tar")
    mounts = subprocess.run(["cat", "/proc/self/mountinfo"], capture_output=True).stdout
    assert b"rootfs-" not in mounts


def test_cp_sees_a_running_containers_volume(engine, name, tmp_path) -> None:
    vol = unique("dyvol")
    engine.docker("run", "-d", "--name", name, "-v", f"{vol}:/data", "busybox", "sh", "-c",
                  "echo in-volume > /data/v; sleep 60")
    try:
        engine.docker("exec", name, "test", "-f", "/data/v")
        engine.docker("cp", f"{name}:/data/v", str(tmp_path / "v"))
        assert (tmp_path / "v").read_text() == "in-volume\n"
        (tmp_path / "w").write_text("written\n")
        engine.docker("cp", str(tmp_path / "w"), f"{name}:/data/w")
        assert engine.docker("exec", name, "cat", "/data/w").stdout == b"written\n"
    finally:
        engine.docker("rm", "-f", name, check=False)
        engine.docker("volume", "rm", "-f", vol, check=False)


def test_cp_archive_mode_owns_files_by_the_containers_user(engine, name, tmp_path) -> None:
    engine.docker("create", "--name", name, "--user", "nobody", "busybox", "stat", "-c",
                  "%u:%g", "/tmp/f")
    (tmp_path / "f").write_text("f")
    engine.docker("cp", "-a", str(tmp_path / "f"), f"{name}:/tmp/f")
    engine.docker("start", "-a", name)
    assert engine.docker("logs", name).stdout.strip() == b"65534:65534"


def test_diff_and_cp_of_unknown_container(engine) -> None:
    for args in (("diff", "nosuch"), ("export", "nosuch"), ("cp", "nosuch:/x", "-")):
        p = engine.docker(*args, check=False)
        assert p.returncode != 0 and b"No such container: nosuch" in p.stderr, args


def test_cp_into_a_stopped_containers_volume(engine, name, tmp_path) -> None:
    vol = unique("dyvol")
    engine.docker("create", "--name", name, "-v", f"{vol}:/vol", "busybox", "cat", "/vol/f")
    try:
        (tmp_path / "f").write_text("via volume\n")
        engine.docker("cp", str(tmp_path / "f"), f"{name}:/vol/f")
        engine.docker("start", "-a", name)
        assert engine.docker("logs", name).stdout == b"via volume\n"
        engine.docker("cp", f"{name}:/vol/f", str(tmp_path / "back"))
        assert (tmp_path / "back").read_text() == "via volume\n"
    finally:
        engine.docker("rm", "-f", name, check=False)
        engine.docker("volume", "rm", "-f", vol, check=False)


def test_cp_into_read_only_places_is_refused(engine, name, tmp_path) -> None:
    (tmp_path / "f").write_text("f")
    engine.docker("run", "-d", "--name", name, "--read-only", "-v", "/vol", "-v",
                  f"{tmp_path}:/rovol:ro", "busybox", "sleep", "60")
    p = engine.docker("cp", str(tmp_path / "f"), f"{name}:/tmp/", check=False)
    assert p.returncode != 0 and b"container rootfs is marked read-only" in p.stderr
    p = engine.docker("cp", str(tmp_path / "f"), f"{name}:/rovol/g", check=False)
    assert p.returncode != 0 and b"mounted volume is marked read-only" in p.stderr
    engine.docker("cp", str(tmp_path / "f"), f"{name}:/vol/")
    assert engine.docker("exec", name, "cat", "/vol/f").stdout == b"f"


def test_supervisor_diff_commit_errors(engine) -> None:
    import grpc

    from dockyard.api.services.diff.v1 import diff_pb2, diff_pb2_grpc

    md = (("containerd-namespace", "moby"),)
    with grpc.insecure_channel(f"unix://{engine.supervisor_address}") as ch:
        stub = diff_pb2_grpc.DiffStub(ch)
        one_layer_too_many = json.dumps({"rootfs": {"type": "layers",
                                                    "diff_ids": ["sha256:" + "0" * 64]}})
        for key, config, code in (("", one_layer_too_many, grpc.StatusCode.INVALID_ARGUMENT),
                                  ("no-such-snapshot", "{}", grpc.StatusCode.NOT_FOUND)):
            with pytest.raises(grpc.RpcError) as e:
                stub.Commit(diff_pb2.CommitRequest(key=key, config=config.encode()),
                            metadata=md, timeout=30)
            assert e.value.code() == code, e.value.details()


def test_supervisor_diff_commit_without_a_key_changes_the_config_only(engine) -> None:
    """What a build's ENV or CMD makes: the parent's layers under a new config."""
    import grpc

    from dockyard.api.services.diff.v1 import diff_pb2, diff_pb2_grpc
    from dockyard.api.services.images.v1 import images_pb2, images_pb2_grpc

    images = engine.sdk.api
    base = images.inspect_image("busybox")
    md = (("containerd-namespace", "moby"),)
    with grpc.insecure_channel(f"unix://{engine.supervisor_address}") as ch:
        record = images_pb2_grpc.ImagesStub(ch).Get(
            images_pb2.GetImageRequest(name="docker.io/library/busybox:latest"),
            metadata=md, timeout=30).image
        config = {"architecture": base["Architecture"], "os": base["Os"],
                  "config": {**base["Config"], "Cmd": ["echo", "from the new config"]},
                  "rootfs": {"type": "layers", "diff_ids": base["RootFS"]["Layers"]},
                  "history": [{"created_by": "CMD", "empty_layer": True}]}
        r = diff_pb2_grpc.DiffStub(ch).Commit(diff_pb2.CommitRequest(
            config=json.dumps(config).encode(), parent=record.target), metadata=md,
            timeout=30)
    new = images.inspect_image(r.config_digest)
    try:
        assert new["RootFS"]["Layers"] == base["RootFS"]["Layers"] and r.diff_id == ""
        assert engine.docker("run", "--rm", r.config_digest).stdout == b"from the new config\n"
    finally:
        images.remove_image(r.config_digest)
