"""The images part of the Engine API through Docker's own clients (the docker CLI and the
docker SDK): pull from a dockyard-registry on loopback (docker.io redirected to it), list,
inspect, history, tag, rmi, save, load, push, prune, and bad input in Docker's words."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import unique
from tests.integration.engine.harness import Engine, running_engine
from tests.integration.supervisor.conftest import registry  # noqa: F401  (a fixture)

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def eng(busybox_tar: Path, registry: str) -> Iterator[Engine]:  # noqa: F811
    """An engine whose docker.io is the loopback registry; busybox loaded."""
    config = {"registry-hosts": {"docker.io": {"redirect": registry, "insecure": True}}}
    with running_engine(Path("/var/tmp"), busybox_tar, config=config) as e:
        yield e


def image_id(e: Engine, name: str) -> str:
    return e.docker("image", "inspect", "--format", "{{.Id}}", name).stdout.decode().strip()


def test_docker_images_lists_busybox(eng):
    out = eng.docker("images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}").stdout.decode()
    assert "busybox:latest " in out


def test_inspect_has_dockers_fields(eng):
    doc = json.loads(eng.docker("image", "inspect", "busybox").stdout)[0]
    assert doc["Id"].startswith("sha256:") and doc["RepoTags"] == ["busybox:latest"]
    assert doc["RootFS"]["Type"] == "layers" and doc["RootFS"]["Layers"]
    assert doc["Os"] == "linux" and doc["Size"] > 0 and "Cmd" in doc["Config"]
    assert doc["Metadata"]["LastTagTime"]


def test_unknown_image_is_404_in_dockers_words(eng):
    p = eng.docker("image", "inspect", "nosuch-" + unique(), check=False)
    assert p.returncode == 1 and b"No such image: nosuch-" in p.stderr
    import docker

    with pytest.raises(docker.errors.ImageNotFound):
        eng.sdk.images.get("nosuch-image-x")


def test_bad_reference_is_400_invalid_reference_format(eng):
    import docker

    with pytest.raises(docker.errors.APIError) as info:
        eng.sdk.api.tag("busybox", "UPPER/Case")
    assert info.value.status_code == 400
    resp = eng.sdk.api._post(eng.sdk.api._url("/images/create"),
                             params={"fromImage": "bad::ref"})
    assert resp.status_code == 400 and "invalid reference format" in resp.json()["message"]


def test_history_lists_steps_newest_first(eng):
    out = eng.docker("history", "--no-trunc", "--format", "{{.ID}}|{{.Size}}",
                     "busybox").stdout.decode().splitlines()
    assert out and out[0].split("|")[0] == image_id(eng, "busybox")
    assert all(line.split("|")[0] == "<missing>" for line in out[1:])


def test_tag_and_rmi_untag_then_delete(eng):
    name = unique("tagged")
    eng.docker("tag", "busybox", f"{name}:v1")
    eng.docker("tag", "busybox", f"{name}:v2")
    assert image_id(eng, f"{name}:v1") == image_id(eng, "busybox")
    out = eng.docker("rmi", f"{name}:v1").stdout.decode()
    assert out.strip() == f"Untagged: {name}:v1"
    listed = eng.sdk.api.images(name=name)  # only the tags the reference matches
    assert [t for i in listed for t in i["RepoTags"]] == [f"{name}:v2"]
    eng.docker("rmi", f"{name}:v2")
    assert eng.docker("image", "inspect", f"{name}:v2", check=False).returncode == 1
    assert eng.sdk.images.get("busybox").tags == ["busybox:latest"]


def test_rmi_by_id_with_several_repositories_needs_force(eng):
    name = unique("multi")
    eng.docker("tag", "busybox", name)
    iid = image_id(eng, "busybox")[7:19]
    p = eng.docker("rmi", iid, check=False)
    assert p.returncode == 1 and b"must be forced" in p.stderr
    eng.docker("rmi", name)


def test_list_filters(eng):
    name = unique("filt")
    eng.docker("tag", "busybox", f"{name}:one")
    try:
        out = eng.docker("images", "--filter", f"reference={name}:*", "--format",
                         "{{.Repository}}:{{.Tag}}").stdout.decode().split()
        assert out == [f"{name}:one"]
        assert eng.docker("images", "-q", "--filter", "dangling=true").stdout.strip() == b""
        p = eng.docker("images", "--filter", "nosuch=1", check=False)
        assert p.returncode == 1 and b"invalid filter 'nosuch'" in p.stderr
    finally:
        eng.docker("rmi", f"{name}:one")


def test_save_and_load_round_trip(eng, tmp_path):
    name = unique("saved")
    eng.docker("tag", "busybox", f"{name}:x")
    archive = tmp_path / "out.tar"
    eng.docker("save", "-o", str(archive), f"{name}:x")
    assert archive.stat().st_size > 100_000
    eng.docker("rmi", f"{name}:x")
    out = eng.docker("load", "-i", str(archive)).stdout.decode()
    assert f"Loaded image: {name}:x" in out
    assert image_id(eng, f"{name}:x") == image_id(eng, "busybox")
    eng.docker("rmi", f"{name}:x")


def test_pull_streams_dockers_progress(eng):
    eng.docker("rmi", "busybox")
    resp = eng.sdk.api.pull("busybox", tag="latest", stream=True, decode=True)
    msgs = list(resp)
    statuses = [m.get("status", "") for m in msgs]
    assert statuses[0] == "Pulling from library/busybox" and msgs[0]["id"] == "latest"
    assert "Pull complete" in statuses
    assert any(s.startswith("Digest: sha256:") for s in statuses)
    assert statuses[-1] == "Status: Downloaded newer image for busybox:latest"
    out = eng.docker("pull", "busybox").stdout.decode()
    assert "Status: Image is up to date for busybox:latest" in out
    assert out.strip().endswith("docker.io/library/busybox:latest")


def test_sdk_pull_list_and_get(eng):
    import time

    since = time.time() - 1
    image = eng.sdk.images.pull("busybox", tag="latest")
    assert "busybox:latest" in image.tags
    assert eng.sdk.images.get(image.id).id == image.id
    assert image.id in [i.id for i in eng.sdk.images.list()]
    assert eng.sdk.images.get(image.id[7:19]).id == image.id
    events = eng.sdk.events(since=since, until=time.time() + 1, decode=True,
                            filters={"type": "image", "event": "pull"})
    assert any(e["Actor"]["Attributes"]["name"] == "busybox:latest" for e in events)


def test_pull_of_a_missing_repository_is_404(eng):
    p = eng.docker("pull", "nosuch-" + unique(), check=False)
    assert p.returncode == 1
    assert b"repository does not exist" in p.stderr or b"not found" in p.stderr, p.stderr


def test_push_to_the_loopback_registry(eng, registry):  # noqa: F811
    name = f"{registry}/{unique('pushed')}:v1"
    eng.docker("tag", "busybox", name)
    out = eng.docker("push", name).stdout.decode()
    assert "digest: sha256:" in out
    eng.docker("rmi", name)
    out = eng.docker("pull", name).stdout.decode()
    assert "Digest: sha256:" in out
    eng.docker("rmi", name)


def test_import_a_rootfs_tarball_and_run_nothing_else(eng, tmp_path):
    import gzip
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("hello.txt")
        info.size = 5
        tar.addfile(info, io.BytesIO(b"hello"))
    src = tmp_path / "rootfs.tar.gz"
    src.write_bytes(gzip.compress(buf.getvalue()))
    name = unique("imported")
    out = eng.docker("import", "-m", "a message", "-c", "CMD [\"/hello\"]", "-c", "ENV A=1",
                     str(src), f"{name}:v1").stdout.decode().strip()
    assert out.startswith("sha256:")
    doc = json.loads(eng.docker("image", "inspect", f"{name}:v1").stdout)[0]
    assert doc["Id"] == out and doc["Config"]["Cmd"] == ["/hello"]
    assert doc["Config"]["Env"] == ["A=1"] and len(doc["RootFS"]["Layers"]) == 1
    hist = eng.docker("history", "--format", "{{.Comment}}", f"{name}:v1").stdout.decode()
    assert hist.strip() == "a message"
    eng.docker("rmi", f"{name}:v1")
    p = eng.docker("import", "-", f"{name}:bad", input=b"not a tarball at all" * 100,
                   check=False)
    assert p.returncode == 1 and b"Error response from daemon" in p.stderr


def test_image_events_are_published(eng):
    import time

    name = unique("evt")
    since = str(time.time() - 1)
    eng.docker("tag", "busybox", name)
    eng.docker("rmi", name)
    until = str(time.time() + 1)
    out = eng.docker("events", "--since", since, "--until", until, "--filter", "type=image",
                     "--format", "{{.Action}} {{.Actor.Attributes.name}}").stdout.decode()
    assert f"tag {name}:latest" in out and "untag sha256:" in out


def test_prune_removes_dangling_images_only_by_default(eng, tmp_path):
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("x")
        tar.addfile(info, io.BytesIO(b""))
    iid = eng.docker("import", "-", input=buf.getvalue()).stdout.decode().strip()
    dangling = eng.docker("images", "-q", "--no-trunc", "--filter",
                          "dangling=true").stdout.decode().split()
    assert iid in dangling
    out = eng.docker("image", "prune", "-f").stdout.decode()
    assert f"deleted: {iid}" in out
    assert eng.docker("image", "inspect", "busybox", check=False).returncode == 0


@pytest.fixture(scope="module")
def auth_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """host:port of a dockyard-registry asking for Basic auth (me / pw), busybox pushed."""
    import asyncio

    import aiohttp
    import bcrypt

    from dockyard.distribution.auth import RegistryAuth
    from dockyard.distribution.credentials import Credentials
    from dockyard.distribution.transfer import push
    from dockyard.image.imports import bootstrap
    from dockyard.image.library import ImageLibrary
    from tests.integration.registry.processes import process
    from tests.integration.supervisor.conftest import free_port

    work = tmp_path_factory.mktemp("auth-registry")
    host = f"127.0.0.1:{free_port()}"
    users = work / "htpasswd"
    users.write_bytes(b"me:" + bcrypt.hashpw(b"pw", bcrypt.gensalt(rounds=4)) + b"\n")
    config = work / "config.yml"
    config.write_text(f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: "
                      f"{work / 'root'}\nhttp:\n  addr: {host}\n"
                      f"auth:\n  htpasswd:\n    realm: test-realm\n    path: {users}\n")
    with process(["serve", str(config)], f"http://{host}/"), \
            ImageLibrary(work / "lib") as lib:
        bootstrap(lib)

        async def upload() -> None:
            auth = RegistryAuth(lambda h: Credentials(h, "me", "pw"))
            async with aiohttp.ClientSession() as session:
                await push(lib, "docker.io/library/busybox:latest",
                           f"{host}/library/busybox:latest", session=session, auth=auth)
        asyncio.run(upload())
        yield host


def test_login_checks_credentials_with_the_registry(eng, auth_registry):
    import docker

    assert eng.sdk.login("me", "pw", registry=f"http://{auth_registry}",
                         reauth=True)["Status"] == "Login Succeeded"
    with pytest.raises(docker.errors.APIError) as info:
        eng.sdk.login("me", "wrong", registry=f"http://{auth_registry}", reauth=True)
    assert info.value.status_code == 401
    assert "401 Unauthorized" in str(info.value)


def test_pull_with_credentials_from_docker_login(eng, auth_registry):
    name = f"{auth_registry}/library/busybox:latest"
    p = eng.docker("pull", name, check=False)
    assert p.returncode == 1 and b"Error response from daemon" in p.stderr
    eng.docker("login", "-u", "me", "--password-stdin", auth_registry, input="pw\n")
    out = eng.docker("pull", name).stdout.decode()
    assert f"Status: Downloaded newer image for {name}" in out or \
        f"Status: Image is up to date for {name}" in out
    eng.docker("rmi", name)


def test_search_of_a_registry_without_search_is_refused_in_dockers_words(eng):
    p = eng.docker("search", "busybox", check=False)
    assert p.returncode == 1 and b"Unexpected status code 404" in p.stderr, p.stderr


def test_build_pull_takes_the_registrys_base_over_the_local_one(eng, registry, tmp_path,  # noqa: F811
                                                                 monkeypatch):
    monkeypatch.setenv("DOCKER_BUILDKIT", "0")  # the classic builder's API
    base = f"{registry}/{unique('base')}:v1"
    marked = tmp_path / "marked"
    marked.mkdir()
    (marked / "Dockerfile").write_text("FROM busybox\nRUN echo fresh > /marker\n")
    eng.docker("build", "-t", base, str(marked))
    eng.docker("push", base)  # the registry's base has /marker...
    eng.docker("tag", "busybox", base)  # ...the local one is plain busybox again
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM {base}\nRUN cat /marker 2>/dev/null || echo stale\n")
    local = eng.docker("build", str(ctx)).stdout.decode()
    assert "stale" in local.splitlines() and "fresh" not in local.splitlines(), local
    pulled = eng.docker("build", "--pull", str(ctx)).stdout.decode()
    assert "fresh" in pulled.splitlines() and "stale" not in pulled.splitlines(), pulled
    assert "Pulling from" in pulled or "Downloaded newer image" in pulled, pulled
