"""docker run's flags into a create body."""

from __future__ import annotations

import pytest

from dockyard.cli.flags import CommandError
from dockyard.cli.run import RUN
from dockyard.cli.runopts import container_config, parse_publish, parse_restart, ram_in_bytes


def config(*argv: str) -> dict:
    opts, args = RUN.parse(list(argv))
    return container_config(opts, args[0], args[1:])


def test_sizes_in_binary_units():
    assert ram_in_bytes("512m") == 512 * 1024**2 and ram_in_bytes("1g") == 1024**3
    assert ram_in_bytes("1.5g") == int(1.5 * 1024**3) and ram_in_bytes("100") == 100
    assert ram_in_bytes("64kb") == 65536
    with pytest.raises(CommandError):
        ram_in_bytes("lots")


def test_publish_specs():
    exposed, bindings = parse_publish(["8080:80", "127.0.0.1:53:53/udp", "9000"])
    assert exposed == {"80/tcp": {}, "53/udp": {}, "9000/tcp": {}}
    assert bindings["80/tcp"] == [{"HostIp": "", "HostPort": "8080"}]
    assert bindings["53/udp"] == [{"HostIp": "127.0.0.1", "HostPort": "53"}]


def test_restart_policies():
    assert parse_restart("on-failure:3") == {"Name": "on-failure", "MaximumRetryCount": 3}
    assert parse_restart("always") == {"Name": "always"}
    with pytest.raises(CommandError):
        parse_restart("sometimes")


def test_a_run_command_line_becomes_a_create_body(monkeypatch):
    monkeypatch.setenv("FROM_HOST", "h")
    c = config("-e", "A=1", "-e", "FROM_HOST", "-e", "UNSET_XYZ", "-w", "/tmp", "-u", "1000",
               "--name", "web", "-v", "/src:/dst:ro", "-v", "/anon", "--memory", "64m",
               "--cpus", "1.5", "--restart", "on-failure:2", "--network", "mynet",
               "--entrypoint", "sh", "-it", "busybox", "-c", "true")
    assert c["Image"] == "busybox" and c["Cmd"] == ["-c", "true"]
    assert c["Entrypoint"] == ["sh"] and c["Env"] == ["A=1", "FROM_HOST=h"]
    assert c["WorkingDir"] == "/tmp" and c["User"] == "1000"
    assert c["Tty"] and c["OpenStdin"] and c["AttachStdin"] and c["StdinOnce"]
    assert c["Volumes"] == {"/anon": {}}
    h = c["HostConfig"]
    assert h["Binds"] == ["/src:/dst:ro"] and h["Memory"] == 64 * 1024**2
    assert h["NanoCpus"] == 1_500_000_000 and h["NetworkMode"] == "mynet"
    assert h["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 2}
    assert "mynet" in c["NetworkingConfig"]["EndpointsConfig"]


def test_detached_containers_attach_nothing_and_rm_conflicts_with_restart():
    c = config("-d", "busybox")
    assert not c["AttachStdout"] and not c["AttachStdin"] and c["Cmd"] is None
    with pytest.raises(CommandError, match="--restart and --rm"):
        config("--rm", "--restart", "always", "busybox")
