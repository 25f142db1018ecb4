"""Containers through the docker CLI and SDK: create, start, stop, kill, rm, ps, inspect,
logs, rename, pause, unpause, wait, top, names."""

from __future__ import annotations

import json
import time

import pytest

pytestmark = pytest.mark.root


def inspect(engine, name: str) -> dict:
    return json.loads(engine.docker("inspect", name).stdout)[0]


def wait_for(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_run_detached_then_wait_gives_the_exit_code(engine):
    cid = engine.docker("run", "-d", "busybox", "sh", "-c", "exit 3").stdout.decode().strip()
    assert len(cid) == 64
    assert engine.docker("wait", cid).stdout.decode().strip() == "3"
    state = inspect(engine, cid)["State"]
    assert state["Status"] == "exited" and state["ExitCode"] == 3 and not state["Running"]
    engine.docker("rm", cid)


def test_create_start_logs_with_both_streams(engine):
    engine.docker("create", "--name", "logs1", "--network", "none", "busybox", "sh", "-c",
                  "echo out; echo err >&2")
    assert inspect(engine, "logs1")["State"]["Status"] == "created"
    engine.docker("start", "logs1")
    assert engine.docker("wait", "logs1").stdout.decode().strip() == "0"
    p = engine.docker("logs", "logs1")
    assert p.stdout == b"out\n" and p.stderr == b"err\n"
    assert engine.docker("logs", "--tail", "1", "logs1").stderr == b"err\n"
    stamped = engine.docker("logs", "-t", "logs1").stdout.decode()
    assert stamped.endswith("Z out\n") and stamped[4] == "-"
    engine.docker("rm", "logs1")


def test_inspect_document_has_dockers_fields(engine):
    engine.docker("create", "--name", "insp", "-e", "A=1", "--label", "k=v", "busybox",
                  "sleep", "1")
    doc = inspect(engine, "insp")
    for key in ("Id", "Created", "Path", "Args", "State", "Image", "ResolvConfPath",
                "HostnamePath", "HostsPath", "LogPath", "Name", "RestartCount", "Driver",
                "Platform", "HostConfig", "GraphDriver", "Mounts", "Config",
                "NetworkSettings"):
        assert key in doc, key
    assert doc["Name"] == "/insp" and doc["Path"] == "sleep" and doc["Args"] == ["1"]
    assert doc["Image"].startswith("sha256:") and doc["Config"]["Image"] == "busybox"
    assert "A=1" in doc["Config"]["Env"] and any(e.startswith("PATH=")
                                                 for e in doc["Config"]["Env"])
    assert doc["Config"]["Labels"] == {"k": "v"}
    assert doc["Config"]["Hostname"] == doc["Id"][:12]
    assert doc["LogPath"].endswith(f"{doc['Id']}-json.log")
    engine.docker("rm", "insp")


def test_name_conflict_is_refused_in_dockers_words(engine):
    cid = engine.docker("create", "--name", "dup", "busybox", "true").stdout.decode().strip()
    p = engine.docker("create", "--name", "dup", "busybox", "true", check=False)
    assert p.returncode != 0
    assert (f'Conflict. The container name "/dup" is already in use by container "{cid}". '
            "You have to remove (or rename) that container to be able to reuse that name."
            ) in p.stderr.decode()
    import docker

    with pytest.raises(docker.errors.APIError) as e:
        engine.sdk.containers.create("busybox", ["true"], name="dup")
    assert e.value.status_code == 409
    assert e.value.explanation == (
        f'Conflict. The container name "/dup" is already in use by container "{cid}". '
        "You have to remove (or rename) that container to be able to reuse that name.")
    engine.docker("rm", "dup")


def test_stop_kill_pause_unpause_and_top(engine):
    engine.docker("run", "-d", "--name", "life", "busybox", "sleep", "1000")
    top = engine.docker("top", "life").stdout.decode()
    assert "sleep 1000" in top and "PID" in top.splitlines()[0]
    engine.docker("pause", "life")
    assert inspect(engine, "life")["State"]["Status"] == "paused"
    engine.docker("unpause", "life")
    assert inspect(engine, "life")["State"]["Status"] == "running"
    started = time.monotonic()
    engine.docker("stop", "-t", "1", "life")  # sleep ignores SIGTERM as pid 1
    assert time.monotonic() - started < 8
    assert inspect(engine, "life")["State"]["ExitCode"] == 137
    p = engine.docker("stop", "life", check=False)  # 304: already stopped, not an error
    assert p.returncode == 0
    p = engine.docker("kill", "life", check=False)
    assert p.returncode != 0 and "is not running" in p.stderr.decode()
    engine.docker("start", "life")
    engine.docker("kill", "-s", "KILL", "life")
    wait_for(lambda: not inspect(engine, "life")["State"]["Running"])
    engine.docker("rm", "life")


def test_rm_of_a_running_container_needs_force(engine):
    engine.docker("run", "-d", "--name", "busy", "busybox", "sleep", "1000")
    p = engine.docker("rm", "busy", check=False)
    assert p.returncode != 0
    assert "container is running: stop the container before removing or force remove" \
        in p.stderr.decode()
    engine.docker("rm", "-f", "busy")
    p = engine.docker("inspect", "busy", check=False)
    assert p.returncode != 0 and "No such object: busy" in p.stderr.decode()


def test_rename_and_lookup_by_prefix(engine):
    cid = engine.docker("create", "--name", "old", "busybox", "true").stdout.decode().strip()
    engine.docker("rename", "old", "new")
    assert inspect(engine, cid[:12])["Name"] == "/new"
    assert engine.docker("inspect", "old", check=False).returncode != 0
    engine.docker("rm", "new")


def test_ps_filters_and_formats(engine):
    engine.docker("create", "--name", "f1", "--label", "team=a", "busybox", "true")
    engine.docker("run", "-d", "--name", "f2", "busybox", "sleep", "1000")
    running = engine.docker("ps", "--format", "{{.Names}}").stdout.decode().split()
    assert "f2" in running and "f1" not in running
    labelled = engine.docker("ps", "-a", "--filter", "label=team=a", "--format",
                             "{{.Names}}").stdout.decode().split()
    assert labelled == ["f1"]
    created = engine.docker("ps", "-a", "--filter", "status=created", "--format",
                            "{{.Names}}").stdout.decode().split()
    assert "f1" in created and "f2" not in created
    assert engine.docker("ps", "-aq", "--filter", "name=f2").stdout.decode().strip()
    engine.docker("rm", "-f", "f1", "f2")


def test_wait_conditions_through_the_sdk(engine):
    c = engine.sdk.containers.run("busybox", ["sh", "-c", "sleep 0.3; exit 5"], detach=True)
    assert c.wait()["StatusCode"] == 5
    assert c.wait(condition="not-running")["StatusCode"] == 5
    c.remove()


def test_network_modes_none_and_host(engine):
    out = engine.docker("run", "-d", "--network", "none", "busybox", "ip", "link")
    cid = out.stdout.decode().strip()
    engine.docker("wait", cid)
    links = engine.docker("logs", cid).stdout.decode()
    assert "lo" in links and "eth0" not in links
    doc = inspect(engine, cid)
    assert doc["HostConfig"]["NetworkMode"] == "none"
    engine.docker("rm", cid)
    cid = engine.docker("run", "-d", "--network", "host", "busybox", "hostname"
                        ).stdout.decode().strip()
    engine.docker("wait", cid)
    import socket

    assert engine.docker("logs", cid).stdout.decode().strip() == socket.gethostname()
    engine.docker("rm", cid)


def test_joining_another_containers_network(engine):
    engine.docker("run", "-d", "--name", "netowner", "busybox", "sleep", "1000")
    cid = engine.docker("run", "-d", "--network", "container:netowner", "busybox", "true"
                        ).stdout.decode().strip()
    assert engine.docker("wait", cid).stdout.decode().strip() == "0"
    engine.docker("rm", "-f", cid, "netowner")


def test_events_of_a_container_life(engine):
    since = str(int(time.time()) - 1)
    cid = engine.docker("run", "-d", "busybox", "sh", "-c", "exit 2").stdout.decode().strip()
    engine.docker("wait", cid)
    engine.docker("rm", cid)
    out = engine.docker("events", "--since", since, "--until", str(int(time.time()) + 1),
                        "--filter", f"container={cid}", "--format", "{{json .}}")
    events = [json.loads(line) for line in out.stdout.decode().splitlines()]
    actions = [e["Action"] for e in events]
    assert actions[:2] == ["create", "start"] and "die" in actions and actions[-1] == "destroy"
    die = next(e for e in events if e["Action"] == "die")
    assert die["Actor"]["Attributes"]["exitCode"] == "2"


def test_prune_removes_stopped_containers(engine):
    cid = engine.docker("create", "busybox", "true").stdout.decode().strip()
    out = engine.sdk.containers.prune()
    assert cid in (out["ContainersDeleted"] or [])


def test_binds_volumes_and_a_named_user(engine, tmp_path):
    (tmp_path / "in.txt").write_text("from the host\n")
    cid = engine.docker("run", "-d", "-v", f"{tmp_path}:/host", "-v", "vol1:/data",
                        "busybox", "sh", "-c", "cat /host/in.txt; ls -d /data"
                        ).stdout.decode().strip()
    assert engine.docker("wait", cid).stdout.decode().strip() == "0"
    assert engine.docker("logs", cid).stdout.decode().split("\n")[:2] == [
        "from the host", "/data"]
    nobody = engine.docker("run", "-d", "--user", "nobody", "busybox", "id", "-u"
                           ).stdout.decode().strip()
    engine.docker("wait", nobody)
    assert engine.docker("logs", nobody).stdout == b"65534\n"
    engine.docker("rm", nobody)
    kinds = sorted((m["Type"], m["Destination"]) for m in inspect(engine, cid)["Mounts"])
    assert kinds == [("bind", "/host"), ("volume", "/data")]
    p = engine.docker("volume", "rm", "vol1", check=False)
    assert p.returncode != 0  # in use
    engine.docker("rm", "-v", cid)
    engine.docker("volume", "rm", "vol1")


def test_healthcheck_turns_healthy_then_unhealthy(engine, tmp_path):
    cid = engine.docker("run", "-d", "--health-cmd", "test ! -e /tmp/sick",
                        "--health-interval", "0.2s", "--health-retries", "2", "busybox",
                        "sleep", "1000").stdout.decode().strip()
    try:
        def health() -> dict:
            return inspect(engine, cid)["State"]["Health"]

        assert health()["Status"] == "starting"
        wait_for(lambda: health()["Status"] == "healthy")
        listed = engine.docker("ps", "-q", "--no-trunc", "--filter", "health=healthy")
        assert cid in listed.stdout.decode().split()
        engine.docker("exec", cid, "touch", "/tmp/sick")
        wait_for(lambda: health()["Status"] == "unhealthy")
        assert health()["FailingStreak"] >= 2 and health()["Log"][-1]["ExitCode"] == 1
    finally:
        engine.docker("rm", "-f", cid)


def test_an_unknown_network_fails_the_start_not_the_create(engine):
    p = engine.docker("run", "-d", "--name", "nonet", "--network", "nosuchnet", "busybox",
                      "true", check=False, timeout=30)
    assert p.returncode == 125 and "network nosuchnet not found" in p.stderr.decode()
    assert inspect(engine, "nonet")["State"]["Status"] == "created"
    engine.docker("rm", "nonet")
    p = engine.docker("run", "--rm", "--name", "nonet2", "--network", "nosuchnet", "busybox",
                      "true", check=False, timeout=30)
    assert p.returncode == 125
    wait_for(lambda: engine.docker("inspect", "nonet2", check=False).returncode != 0)


def test_a_missing_executable_is_recorded_with_code_127(engine):
    p = engine.docker("run", "-d", "--name", "noexec", "busybox", "nosuchprog", check=False)
    assert p.returncode != 0 and "nosuchprog" in p.stderr.decode()
    state = inspect(engine, "noexec")["State"]
    assert state["ExitCode"] == 127 and "nosuchprog" in state["Error"]
    engine.docker("rm", "noexec")


def test_add_host_and_dns_options_reach_the_containers_files(engine):
    out = engine.docker("run", "--rm", "--network", "none", "--add-host", "db:10.1.2.3",
                        "--dns", "10.9.9.9", "--dns-search", "corp.example",
                        "--dns-option", "ndots:3", "busybox", "cat", "/etc/hosts",
                        "/etc/resolv.conf").stdout.decode()
    assert "10.1.2.3\tdb\n" in out
    assert "nameserver 10.9.9.9\n" in out and "search corp.example\n" in out
    assert "options ndots:3\n" in out


def test_a_bad_extra_host_is_refused_at_create(engine):
    import docker

    with pytest.raises(docker.errors.APIError) as e:
        engine.sdk.containers.create("busybox", "true", extra_hosts={"db": "not-an-ip"})
    assert e.value.status_code == 400
    assert "invalid IP address in add-host" in str(e.value.explanation)


def test_a_new_volume_gets_the_images_content_and_volumes_from_shares_it(engine):
    from tests.conftest import unique

    vol, first, second = unique("cu"), unique("vf1"), unique("vf2")
    # /etc of busybox into an empty named volume: the image's files appear in it
    out = engine.docker("run", "--name", first, "-v", f"{vol}:/etc", "--network", "none",
                        "busybox", "sh", "-c", "ls /etc; echo mine > /etc/added").stdout
    assert b"passwd" in out.split()
    try:
        shared = engine.docker("run", "--rm", "--volumes-from", f"{first}:ro", "--network",
                               "none", "busybox", "sh", "-c",
                               "cat /etc/added; touch /etc/x 2>&1 || echo refused").stdout
        assert shared.startswith(b"mine\n") and b"refused" in shared
        import docker

        with pytest.raises(docker.errors.NotFound, match="No such container"):
            engine.sdk.containers.create("busybox", "true", volumes_from=[unique("nosuch")])
    finally:
        engine.docker("rm", "-f", first, second, check=False)
        engine.docker("volume", "rm", vol, check=False)
