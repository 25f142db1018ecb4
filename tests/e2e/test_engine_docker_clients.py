"""Real clients against dockyardd: the docker CLI and the docker Python SDK through the common
workflows (containers, images, volumes, events, inspect formats, system info/df/prune, the
`docker run` flags a container can see) and the bad input an API must survive (malformed
JSON, unknown fields, wrong types, a body over 16 MiB, odd and path-like names).

Checked with the docker CLI 28.2.2 (`docker version --format '{{.Client.Version}}'`) and
the docker SDK 7.2.0 (`docker.__version__`); dockerd 20.10 (Debian's) was the reference for
the bad-input answers. Where dockerd answers a wrong type with a 500 ("json: cannot
unmarshal …"), we keep its words and give the 400 the client's mistake deserves.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import unique
from tests.integration.engine.harness import Engine, busybox_archive, running_engine

pytestmark = [pytest.mark.root, pytest.mark.interop]

CLI_MAJOR, SDK_MAJOR = "28.", "7."


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    archive = busybox_archive(tmp_path_factory.mktemp("clients-busybox"))
    with running_engine(Path("/var/tmp"), archive) as e:
        yield e


def cli_env(engine: Engine) -> dict[str, str]:
    env = {**os.environ, "DOCKER_HOST": engine.host, "DOCKER_CONFIG": str(engine.docker_config),
           "DOCKER_CLI_HINTS": "false"}
    env.pop("DOCKER_CONTEXT", None)
    return env


def out(engine: Engine, *args: str) -> str:
    return engine.docker(*args).stdout.decode()


def wait_for(predicate, timeout: float = 20, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def test_the_clients_are_the_versions_checked(engine):
    import docker

    client = subprocess.run(["docker", "version", "--format", "{{.Client.Version}}"],
                            capture_output=True, text=True, env=cli_env(engine))
    assert client.stdout.startswith(CLI_MAJOR), client.stdout
    assert docker.__version__.startswith(SDK_MAJOR)
    server = out(engine, "version", "--format", "{{.Server.APIVersion}}").strip()
    assert server == "1.51"


# -- the docker CLI --------------------------------------------------------------------------

def test_cli_run_ps_logs_exec_stop_rm(engine):
    name = unique("cli")
    cid = out(engine, "run", "-d", "--name", name, "busybox", "sh", "-c",
              "echo started; exec sleep 60").strip()
    try:
        assert len(cid) == 64
        assert name in out(engine, "ps", "--format", "{{.Names}}").split()
        wait_for(lambda: "started" in out(engine, "logs", name), what="the log")
        assert out(engine, "exec", name, "cat", "/proc/1/cmdline").startswith("sleep")
        assert out(engine, "exec", "-e", "X=y", "-w", "/etc", name, "sh", "-c",
                   "echo $X $(pwd)").strip() == "y /etc"
        engine.docker("stop", "-t", "1", name)
        assert out(engine, "inspect", "-f", "{{.State.Status}}", name).strip() == "exited"
        assert name not in out(engine, "ps", "--format", "{{.Names}}").split()
        assert name in out(engine, "ps", "-a", "--format", "{{.Names}}").split()
    finally:
        engine.docker("rm", "-f", name)
    gone = engine.docker("inspect", name, check=False)
    assert gone.returncode == 1 and b"No such object" in gone.stderr


def test_cli_images_tag_rmi_save_load(engine, tmp_path):
    tag = f"{unique('img')}:v1"
    engine.docker("tag", "busybox", tag)
    assert tag in out(engine, "images", "--format", "{{.Repository}}:{{.Tag}}").split()
    archive = tmp_path / "img.tar"
    engine.docker("save", "-o", str(archive), tag)
    with tarfile.open(archive) as tar:
        assert "manifest.json" in tar.getnames()
    assert "Untagged: " + tag in out(engine, "rmi", tag)
    assert tag not in out(engine, "images", "--format", "{{.Repository}}:{{.Tag}}").split()
    assert f"Loaded image: {tag}" in out(engine, "load", "-i", str(archive))
    assert out(engine, "image", "inspect", "-f", "{{.Id}}", tag) == \
        out(engine, "image", "inspect", "-f", "{{.Id}}", "busybox")
    engine.docker("rmi", tag)


def test_cli_volume_create_run_with_it_and_rm(engine):
    vol, name = unique("vol"), unique("vc")
    engine.docker("volume", "create", vol)
    engine.docker("run", "--rm", "-v", f"{vol}:/data", "busybox", "sh", "-c",
                  "echo kept > /data/f")
    assert out(engine, "run", "--rm", "-v", f"{vol}:/data:ro", "busybox", "cat",
               "/data/f") == "kept\n"
    engine.docker("create", "--name", name, "-v", f"{vol}:/data", "busybox", "true")
    busy = engine.docker("volume", "rm", vol, check=False)
    assert busy.returncode == 1 and b"volume is in use" in busy.stderr
    engine.docker("rm", name)
    engine.docker("volume", "rm", vol)
    assert vol not in out(engine, "volume", "ls", "-q").split()


def test_cli_events_while_a_container_runs(engine):
    name = unique("ev")
    watcher = subprocess.Popen(
        ["docker", "events", "--filter", f"container={name}", "--format", "{{.Action}}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=cli_env(engine), text=True)
    try:
        time.sleep(0.5)  # let the watcher subscribe
        engine.docker("run", "--rm", "--name", name, "busybox", "true")
        actions: list[str] = []
        deadline = time.monotonic() + 20
        assert watcher.stdout is not None
        while "destroy" not in actions and time.monotonic() < deadline:
            line = watcher.stdout.readline()
            if not line:
                break
            actions.append(line.strip())
    finally:
        watcher.kill()
        watcher.wait()
    for wanted in ("create", "start", "die", "destroy"):
        assert wanted in actions, actions
    assert actions.index("create") < actions.index("start") < actions.index("die") \
        < actions.index("destroy")


def test_cli_inspect_formats(engine):
    name = unique("fmt")
    engine.docker("create", "--name", name, "-e", "A=1", "--label", "k=v", "busybox",
                  "echo", "x")
    try:
        assert out(engine, "inspect", "-f", "{{.Name}} {{.State.Status}} {{.Config.Image}}",
                   name).strip() == f"/{name} created busybox"
        assert "A=1" in json.loads(out(engine, "inspect", "-f", "{{json .Config.Env}}", name))
        assert out(engine, "inspect", "-f", '{{index .Config.Labels "k"}}', name) == "v\n"
        assert out(engine, "container", "inspect", "-f", "{{.HostConfig.NetworkMode}}",
                   name).strip() in ("default", "bridge")
        assert json.loads(out(engine, "inspect", "--type", "container", name))[0]["Name"] \
            == f"/{name}"
        assert out(engine, "image", "inspect", "-f", "{{.Os}}/{{.Architecture}}",
                   "busybox").startswith("linux/")
        assert out(engine, "ps", "-a", "--filter", f"name={name}", "--format",
                   "{{.Names}} {{.Status}}").strip() == f"{name} Created"
    finally:
        engine.docker("rm", name)


def test_cli_system_info_df_prune(engine):
    info = json.loads(out(engine, "system", "info", "--format", "{{json .}}"))
    assert info["OSType"] == "linux" and info["Images"] >= 1
    assert info["DockerRootDir"] == str(engine.data_root)
    assert "Images" in out(engine, "system", "df")
    assert "Build cache usage: 0B" in out(engine, "system", "df", "-v")
    name = unique("sp")
    engine.docker("create", "--name", name, "busybox", "true")
    pruned = out(engine, "system", "prune", "-f")
    assert "Total reclaimed space" in pruned
    assert name not in out(engine, "ps", "-a", "--format", "{{.Names}}").split()
    assert engine.docker("image", "inspect", "busybox").returncode == 0


def _cgroup_file(v2: str, v1: str) -> str:
    return f"cat /sys/fs/cgroup/{v2} 2>/dev/null || cat /sys/fs/cgroup/{v1}"


def test_cli_run_flags_are_visible_inside_the_container(engine):
    script = "; ".join([
        "echo env=$GREETING", "echo pwd=$(pwd)", "echo id=$(id -u):$(id -g)",
        "grep CapEff /proc/self/status",
        "touch /rootfile 2>/dev/null && echo rootfs=rw || echo rootfs=ro",
        "touch /scratch/f && echo tmpfs=rw", "grep ' /scratch ' /proc/mounts",
        "echo mem=$(" + _cgroup_file("memory.max", "memory/memory.limit_in_bytes") + ")",
        "echo cpu=$(" + _cgroup_file("cpu.max", "cpu/cpu.cfs_quota_us") + ")",
    ])
    text = out(engine, "run", "--rm", "-e", "GREETING=hello", "-w", "/tmp", "-u", "1000:1000",
               "--read-only", "--tmpfs", "/scratch:mode=1777", "--cap-drop", "ALL",
               "--memory", "64m", "--cpus", "0.5", "busybox", "sh", "-c", script)
    assert "env=hello" in text and "pwd=/tmp" in text and "id=1000:1000" in text
    assert "CapEff:\t0000000000000000" in text
    assert "rootfs=ro" in text and "tmpfs=rw" in text and "tmpfs /scratch tmpfs" in text
    assert f"mem={64 << 20}" in text
    assert "cpu=50000" in text  # 0.5 CPU: 50 ms in every 100 ms period
    assert out(engine, "run", "--rm", "--entrypoint", "echo", "busybox", "from",
               "entrypoint") == "from entrypoint\n"


def test_cli_restart_policy_restarts_a_failing_container(engine):
    name = unique("rs")
    engine.docker("run", "-d", "--name", name, "--restart", "on-failure:2", "busybox",
                  "sh", "-c", "echo run; exit 3")
    try:
        assert out(engine, "inspect", "-f", "{{.HostConfig.RestartPolicy.Name}}:"
                   "{{.HostConfig.RestartPolicy.MaximumRetryCount}}", name) == "on-failure:2\n"
        wait_for(lambda: out(engine, "inspect", "-f", "{{.RestartCount}} {{.State.Status}}",
                             name).strip() == "2 exited", timeout=30, what="two restarts")
        assert out(engine, "logs", name).count("run") == 3
        assert out(engine, "inspect", "-f", "{{.State.ExitCode}}", name) == "3\n"
    finally:
        engine.docker("rm", "-f", name)


# -- the docker SDK --------------------------------------------------------------------------

def test_sdk_run_logs_exec_stop_remove(engine):
    sdk = engine.sdk
    assert sdk.containers.run("busybox", ["echo", "hi"], remove=True) == b"hi\n"
    c = sdk.containers.run("busybox", ["sh", "-c", "echo up; exec sleep 60"], detach=True,
                           name=unique("sdk"), environment={"K": "v"})
    try:
        wait_for(lambda: b"up" in c.logs(), what="the log")
        code, output = c.exec_run(["sh", "-c", "echo $K"])
        assert (code, output) == (0, b"v\n")
        assert c.id in [x.id for x in sdk.containers.list()]
        c.stop(timeout=1)
        c.reload()
        assert c.status == "exited"
        assert c.wait()["StatusCode"] == 137
    finally:
        c.remove(force=True)
    assert c.id not in [x.id for x in sdk.containers.list(all=True)]


def test_sdk_images_tag_save_load_remove(engine):
    sdk = engine.sdk
    image = sdk.images.get("busybox")
    repo = unique("sdkimg")
    assert image.tag(repo, "t1")
    assert f"{repo}:t1" in sdk.images.get(f"{repo}:t1").tags
    # the endpoint of one image (/images/{name}/get) keeps the name asked for
    data = b"".join(sdk.api.get_image(f"{repo}:t1"))
    sdk.images.remove(f"{repo}:t1")
    loaded = sdk.images.load(data)
    assert [i.id for i in loaded] == [image.id]
    assert f"{repo}:t1" in sdk.images.get(image.id).tags
    sdk.images.remove(f"{repo}:t1")
    assert any("busybox:latest" in i.tags for i in sdk.images.list())


def test_sdk_volumes_and_mounts(engine):
    sdk = engine.sdk
    vol = sdk.volumes.create(unique("sv"), labels={"team": "a"})
    try:
        sdk.containers.run("busybox", ["sh", "-c", "echo v > /m/f"], remove=True,
                           volumes={vol.name: {"bind": "/m", "mode": "rw"}})
        assert sdk.containers.run("busybox", ["cat", "/m/f"], remove=True,
                                  volumes=[f"{vol.name}:/m:ro"]) == b"v\n"
        assert [v.name for v in sdk.volumes.list(filters={"label": "team=a"})] == [vol.name]
    finally:
        vol.remove()


def test_sdk_events_stream(engine):
    sdk = engine.sdk
    since = time.time() - 1
    name = unique("se")
    sdk.containers.run("busybox", ["true"], name=name, remove=True)
    events = sdk.events(since=since, until=time.time() + 1, decode=True,
                        filters={"container": name})
    actions = [e["Action"] for e in events]
    for wanted in ("create", "start", "die", "destroy"):
        assert wanted in actions, actions


def test_sdk_info_df_prune_and_networks(engine):
    sdk = engine.sdk
    assert sdk.ping() is True
    assert sdk.info()["OSType"] == "linux"
    df = sdk.df()
    assert df["BuildCache"] == [] and df["LayersSize"] > 0
    c = sdk.containers.create("busybox", ["true"], name=unique("sdkp"))
    assert c.id in (sdk.containers.prune()["ContainersDeleted"] or [])
    assert sdk.networks.prune() == {"NetworksDeleted": None}
    assert {n.name for n in sdk.networks.list()} == {"bridge", "host", "none"}
    assert sdk.api.prune_builds() == {"CachesDeleted": None, "SpaceReclaimed": 0}


# -- bad input -------------------------------------------------------------------------------

def create(engine: Engine, body: bytes | str, **params):
    api = engine.sdk.api
    return api._post(api._url("/containers/create"), params=params, data=body,
                     headers={"Content-Type": "application/json"})


@pytest.mark.parametrize("body", ['{"Image":', "{", "nope", '{"Image": "busybox",}'])
def test_malformed_json_is_a_400(engine, body):
    r = create(engine, body)
    assert r.status_code == 400 and r.json()["message"].startswith("invalid JSON")


def test_unknown_fields_are_accepted_as_dockerd_accepts_them(engine):
    name = unique("uf")
    r = create(engine, json.dumps({"Image": "busybox", "Cmd": ["true"], "Bogus": 1,
                                   "HostConfig": {"Zzz": 2, "Memory": 0}}), name=name)
    try:
        assert r.status_code == 201, r.text
        assert engine.docker("start", "-a", name).returncode == 0
    finally:
        engine.docker("rm", "-f", name, check=False)


def test_unknown_fields_are_dropped_as_dockerd_drops_them(engine):
    name = unique("ud")
    r = create(engine, json.dumps({"Image": "busybox", "Bogus": 1,
                                   "HostConfig": {"Zzz": 2}}), name=name)
    try:
        assert r.status_code == 201, r.text
        doc = engine.sdk.api.inspect_container(name)
        assert "Bogus" not in doc["Config"] and "Zzz" not in doc["HostConfig"]
    finally:
        engine.docker("rm", "-f", name, check=False)


@pytest.mark.parametrize(("body", "field"), [
    ({"Image": "busybox", "Cmd": 5}, "Cmd"),
    ({"Image": "busybox", "Env": "A=1"}, "Env"),
    ({"Image": "busybox", "HostConfig": {"Memory": "x"}}, "Memory"),
    ({"Image": "busybox", "Tty": "yes"}, "Tty"),
    ([1, 2], "CreateRequest"),
])
def test_wrong_types_are_a_400_that_names_the_field(engine, body, field):
    r = create(engine, json.dumps(body))
    assert r.status_code == 400, r.text
    message = r.json()["message"]
    assert message.startswith("json: cannot unmarshal") and field in message


def test_a_huge_body_is_refused_cleanly_and_the_engine_still_answers(engine):
    body = b'{"Image":"busybox","Env":["A=' + b"x" * (17 << 20) + b'"]}'
    r = create(engine, body)
    assert r.status_code in (400, 413) and "too large" in r.json()["message"]
    assert engine.pings() and engine.sdk.ping()
    assert engine.docker("ps").returncode == 0


@pytest.mark.parametrize("name", ["a b", "../x", "a/b", "..", "-lead", ".hidden", "é", "x;y",
                                  "$(id)", "a\nb"])
def test_odd_and_path_like_names_are_refused(engine, name):
    r = create(engine, '{"Image":"busybox"}', name=name)
    assert r.status_code == 400
    assert r.json() == {"message": f"Invalid container name ({name}), only "
                                   "[a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"}


def test_the_cli_reports_an_invalid_name_in_dockers_words(engine):
    p = engine.docker("create", "--name", "a b", "busybox", check=False)
    assert p.returncode != 0
    assert b"Invalid container name (a b), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed" \
        in p.stderr


def test_a_leading_slash_is_dropped_from_a_name(engine):
    name = unique("sl")
    r = create(engine, '{"Image":"busybox"}', name=f"/{name}")
    try:
        assert r.status_code == 201
        assert engine.sdk.api.inspect_container(name)["Name"] == f"/{name}"
    finally:
        engine.docker("rm", "-f", name, check=False)


def test_a_save_of_a_missing_image_and_a_load_of_garbage_are_clean_errors(engine):
    missing = engine.docker("save", unique("nosuch"), check=False)
    assert missing.returncode == 1 and b"No such image" in missing.stderr
    garbage = io.BytesIO(b"not a tar at all" * 100)
    loaded = engine.docker("load", input=garbage.getvalue(), check=False)
    assert loaded.returncode == 1 and loaded.stderr
    assert engine.pings()
