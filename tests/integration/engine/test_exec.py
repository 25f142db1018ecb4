"""docker exec against dockyardd: output, stdin, exit codes, a missing program, a stopped
container, the inspect document, events, and the SDK's exec_run."""

from __future__ import annotations

import json
import time

import pytest

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def box(engine):
    """A running busybox container for the module's execs."""
    cid = engine.docker("run", "-d", "--network", "none", "busybox", "sleep", "600"
                        ).stdout.decode().strip()
    yield cid
    engine.docker("rm", "-f", cid, check=False)


def test_exec_prints_the_output(engine, box):
    assert engine.docker("exec", box, "echo", "x").stdout == b"x\n"


def test_exec_keeps_stdout_and_stderr_apart(engine, box):
    p = engine.docker("exec", box, "sh", "-c", "echo out; echo err >&2")
    assert p.stdout == b"out\n" and p.stderr == b"err\n"


def test_exec_with_stdin_echoes_it(engine, box):
    p = engine.docker("exec", "-i", box, "cat", input=b"hello\nworld\n")
    assert p.stdout == b"hello\nworld\n"


def test_exec_with_megabytes_of_stdin_gives_them_all_back(engine, box):
    data = bytes(range(256)) * 16384  # 4 MiB
    p = engine.docker("exec", "-i", box, "cat", input=data)
    assert len(p.stdout) == len(data) and p.stdout == data


def test_exec_exit_codes_are_the_process_s(engine, box):
    assert engine.docker("exec", box, "sh", "-c", "exit 3", check=False).returncode == 3
    assert engine.docker("exec", box, "false", check=False).returncode == 1


def test_exec_of_a_missing_program_is_127_with_the_runtime_s_words(engine, box):
    p = engine.docker("exec", box, "nosuch", check=False)
    assert p.returncode == 127
    err = (p.stdout + p.stderr).decode()
    assert 'exec: "nosuch": executable file not found in $PATH' in err


def test_exec_into_a_stopped_container_is_a_409(engine):
    cid = engine.docker("create", "--network", "none", "busybox", "true").stdout.decode().strip()
    try:
        p = engine.docker("exec", cid, "echo", "x", check=False)
        assert p.returncode != 0
        assert f"container {cid} is not running" in p.stderr.decode()
    finally:
        engine.docker("rm", "-f", cid, check=False)


def test_exec_with_a_tty_gets_a_terminal(engine, box):
    p = engine.docker("exec", "-t", box, "sh", "-c", "test -t 1 && echo tty")
    assert p.stdout == b"tty\r\n"


def test_exec_console_size_is_the_terminal_s_from_the_start(engine, box):
    import socket

    ex = engine.sdk.api.exec_create(box, ["stty", "size"], tty=True)
    body = json.dumps({"Detach": False, "Tty": True, "ConsoleSize": [33, 97]}).encode()
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(20)
    s.connect(str(engine.sock))
    s.sendall(b"POST /v1.51/exec/%s/start HTTP/1.1\r\nHost: docker\r\nContent-Type: "
              b"application/json\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"
              b"Content-Length: %d\r\n\r\n" % (ex["Id"].encode(), len(body)) + body)
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    s.close()
    head, _, out = data.partition(b"\r\n\r\n")
    assert b"Content-Type: application/vnd.docker.raw-stream" in head
    assert out == b"33 97\r\n"


def test_exec_env_workdir_and_user(engine, box):
    p = engine.docker("exec", "-e", "FOO=bar", "-w", "/tmp", "-u", "nobody", box, "sh", "-c",
                      "echo $FOO; pwd; id -u")
    assert p.stdout.decode().split() == ["bar", "/tmp", "65534"]


def test_a_privileged_exec_has_every_capability(engine, box):
    def eff(*flags: str) -> int:
        out = engine.docker("exec", *flags, box, "grep", "CapEff", "/proc/self/status").stdout
        return int(out.split()[1], 16)

    assert eff("--privileged") > eff()
    assert bin(eff("--privileged")).count("1") >= 38


def test_exec_inspect_has_dockers_fields(engine, box):
    api = engine.sdk.api
    ex = api.exec_create(box, ["sh", "-c", "exit 5"])
    before = api.exec_inspect(ex["Id"])
    assert before["Running"] is False and before["ExitCode"] is None
    assert before["ContainerID"] == engine.sdk.containers.get(box).id
    assert before["ProcessConfig"] == {"tty": False, "entrypoint": "sh",
                                       "arguments": ["-c", "exit 5"], "privileged": False}
    for key in ("ID", "OpenStdin", "OpenStderr", "OpenStdout", "CanRemove", "DetachKeys",
                "Pid"):
        assert key in before
    api.exec_start(ex["Id"])
    after = api.exec_inspect(ex["Id"])
    assert after["Running"] is False and after["ExitCode"] == 5 and after["Pid"] > 0


def test_exec_into_a_paused_container_is_a_409(engine, box):
    import docker

    engine.docker("pause", box)
    try:
        with pytest.raises(docker.errors.APIError, match="is paused, unpause the container "
                                                         "before exec"):
            engine.sdk.api.exec_create(box, ["true"])
    finally:
        engine.docker("unpause", box)


def test_sdk_exec_run(engine, box):
    c = engine.sdk.containers.get(box)
    code, out = c.exec_run(["sh", "-c", "echo one; echo two >&2"])
    assert code == 0 and out == b"one\ntwo\n"
    code, (out, err) = c.exec_run(["sh", "-c", "echo one; echo two >&2"], demux=True)
    assert out == b"one\n" and err == b"two\n"
    code, out = c.exec_run("echo hi", tty=True)
    assert code == 0 and out == b"hi\r\n"


def test_detached_exec_runs_in_the_background(engine, box):
    engine.docker("exec", "-d", box, "sh", "-c", "sleep 0.2; echo done > /tmp/detached")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        p = engine.docker("exec", box, "cat", "/tmp/detached", check=False)
        if p.returncode == 0:
            assert p.stdout == b"done\n"
            return
        time.sleep(0.1)
    raise AssertionError("the detached exec did not run")


def test_exec_of_an_unknown_exec_id_is_a_404(engine):
    import docker

    with pytest.raises(docker.errors.NotFound, match="No such exec instance: nope"):
        engine.sdk.api.exec_inspect("nope")


def test_exec_events(engine, box):
    since = str(time.time() - 1)
    engine.docker("exec", box, "true")
    until = str(time.time() + 3)
    lines = engine.docker("events", "--since", since, "--until", until, "--format",
                          "{{json .}}", "--filter", f"container={box}").stdout.splitlines()
    actions = [json.loads(x)["Action"] for x in lines]
    assert "exec_create: true" in actions and "exec_start: true" in actions
    assert "exec_die" in actions
    events = [json.loads(x) for x in lines]
    # The box is shared with other tests: take the die of this exec, by its ID.
    started = next(e for e in events if e["Action"] == "exec_start: true")
    exec_id = started["Actor"]["Attributes"]["execID"]
    die = next(e for e in events if e["Action"] == "exec_die"
               and e["Actor"]["Attributes"]["execID"] == exec_id)
    assert die["Actor"]["Attributes"]["exitCode"] == "0"
