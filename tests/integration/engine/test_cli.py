"""`dockyard` against a real dockyardd, its output compared with the docker CLI's on the same
engine. A test whose endpoint the engine does not serve yet is skipped, asked at run time."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import unique
from tests.integration.supervisor.conftest import registry  # noqa: F401  (a fixture)

pytestmark = pytest.mark.root

DOCKYARD = str(Path(sys.executable).parent / "dockyard")


def dy(engine, *args: str, input: bytes | str | None = None,
       timeout: float = 60) -> subprocess.CompletedProcess:
    env = {**os.environ, "DOCKER_CONFIG": str(engine.docker_config)}
    env.pop("DOCKER_HOST", None)
    return subprocess.run([DOCKYARD, "-H", engine.host, *args], env=env, capture_output=True,
                          timeout=timeout,
                          input=input.encode() if isinstance(input, str) else input)


def serves(engine, method: str, path: str) -> bool:
    """Whether the engine routes `path` (a 404 "page not found" says it does not)."""
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect(str(engine.sock))
    s.sendall(f"{method} {path} HTTP/1.0\r\nContent-Length: 0\r\n\r\n".encode())
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    s.close()
    return not (b" 404 " in data.split(b"\r\n")[0] and b"page not found" in data)


def needs(engine, method: str, path: str) -> None:
    if not serves(engine, method, path):
        pytest.skip(f"the engine does not serve {method} {path} yet")


def same(engine, *args: str) -> str:
    """Run both CLIs; assert the same stdout and status; dockyard's stdout."""
    ours = dy(engine, *args)
    theirs = engine.docker(*args, check=False)
    assert ours.stdout.decode() == theirs.stdout.decode(), args
    assert ours.returncode == theirs.returncode, (args, ours.stderr)
    return ours.stdout.decode()


def test_version_shows_the_client_and_the_engine_blocks_as_docker_does(engine):
    ours = dy(engine, "version")
    assert ours.returncode == 0, ours.stderr
    text = ours.stdout.decode()
    assert text.startswith("Client:\n Version:           0.1.0\n API version:       1.51\n")
    theirs = engine.docker("version").stdout.decode()
    assert text.partition("\nServer:")[2] == theirs.partition("\nServer:")[2]
    out = dy(engine, "version", "--format", "{{json .Server}}").stdout
    assert json.loads(out)["ApiVersion"] == "1.51"


def test_version_without_a_daemon_prints_the_client_then_fails(tmp_path):
    p = subprocess.run([DOCKYARD, "-H", f"unix://{tmp_path}/none.sock", "version"],
                       capture_output=True, timeout=30)
    assert p.returncode == 1 and p.stdout.startswith(b"Client:\n")
    assert b"Cannot connect to the Docker daemon at unix://" in p.stderr


def test_version_is_fast(engine):
    t = time.perf_counter()
    for _ in range(5):
        assert dy(engine, "version").returncode == 0
    assert (time.perf_counter() - t) / 5 < 0.5  # a loose bound; the bench measures ratios


def test_info_matches_docker_but_for_the_client_version(engine):
    ours = dy(engine, "info").stdout.decode().splitlines()
    theirs = engine.docker("info").stdout.decode().splitlines()
    differ = [(a, b) for a, b in zip(ours, theirs, strict=True) if a != b]
    assert [a for a, _ in differ] == [" Version:    0.1.0"]
    assert dy(engine, "info", "--format", "{{.OSType}}").stdout == b"linux\n"


@pytest.mark.parametrize("args", [
    (), ("-q",), ("-a",), ("--no-trunc",), ("--digests",), ("--format", "json"),
    ("--format", "{{.Repository}}:{{.Tag}} {{.ID}}"), ("--format", "table {{.ID}}\t{{.Size}}"),
    ("busybox",), ("--filter", "reference=busy*"),
])
def test_images_as_docker_lists_them(engine, args):
    needs(engine, "GET", "/v1.51/images/json")
    same(engine, "images", *args)


def test_run_exits_with_the_containers_status_and_splits_its_streams(engine):
    needs(engine, "POST", "/v1.51/containers/create")
    p = dy(engine, "run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3")
    assert (p.returncode, p.stdout, p.stderr) == (3, b"out\n", b"err\n")


def test_run_passes_stdin_env_workdir_user_and_entrypoint(engine):
    needs(engine, "POST", "/v1.51/containers/create")
    p = dy(engine, "run", "--rm", "-i", "busybox", "cat", input="piped\n")
    assert p.stdout == b"piped\n" and p.returncode == 0
    p = dy(engine, "run", "--rm", "-e", "A=1", "-w", "/tmp", "-u", "1000", "busybox",
           "sh", "-c", "echo $A $(pwd) $(id -u)")
    assert p.stdout == b"1 /tmp 1000\n"
    p = dy(engine, "run", "--rm", "--entrypoint", "echo", "busybox", "hi")
    assert p.stdout == b"hi\n"


def test_run_errors_have_dockers_exit_codes(engine):
    needs(engine, "POST", "/v1.51/containers/create")
    p = dy(engine, "run", "--rm", "busybox", "no-such-command")
    assert p.returncode == 127 and b"executable file not found" in p.stderr
    assert dy(engine, "run", "--no-such-flag", "busybox").returncode == 125
    p = dy(engine, "run", "--rm", "--pull", "never", "no-such-image")
    assert p.returncode == 125 and p.stderr.startswith(b"dockyard: Error response from daemon")


def test_a_detached_container_through_its_life(engine):
    needs(engine, "POST", "/v1.51/containers/create")
    p = dy(engine, "run", "-d", "--name", "cli-life", "busybox", "sh", "-c",
           "echo one; echo two; sleep 300")
    cid = p.stdout.decode().strip()
    assert p.returncode == 0 and len(cid) == 64
    try:
        assert dy(engine, "ps", "-q").stdout.decode().split().count(cid[:12]) == 1
        same(engine, "ps", "--format", "{{.ID}} {{.Image}} {{.Command}} {{.Names}} {{.State}}")
        same(engine, "ps", "-a", "-q", "--no-trunc")
        same(engine, "ps", "--filter", "name=cli-life", "--format", "{{.Names}}")
        header = dy(engine, "ps").stdout.decode().splitlines()[0]
        assert header == engine.docker("ps").stdout.decode().splitlines()[0]
        time.sleep(0.5)
        assert dy(engine, "logs", "cli-life").stdout == b"one\ntwo\n"
        assert dy(engine, "logs", "--tail", "1", "cli-life").stdout == b"two\n"
        stamped = dy(engine, "logs", "-t", "cli-life").stdout.splitlines()
        assert [line.split(b" ", 1)[1] for line in stamped] == [b"one", b"two"]
        assert all(line[:4].isdigit() and line[10:11] == b"T" for line in stamped)
        assert dy(engine, "inspect", "-f", "{{.Name}} {{.State.Running}}", "cli-life"
                  ).stdout == b"/cli-life true\n"
        same(engine, "inspect", "--format", "{{json .Config.Cmd}}", "cli-life")
        assert dy(engine, "rename", "cli-life", "cli-life2").returncode == 0
        if serves(engine, "POST", "/v1.51/containers/x/pause"):
            assert dy(engine, "pause", "cli-life2").stdout == b"cli-life2\n"
            assert dy(engine, "unpause", "cli-life2").stdout == b"cli-life2\n"
        assert dy(engine, "kill", "-s", "KILL", "cli-life2").stdout == b"cli-life2\n"
        assert dy(engine, "wait", "cli-life2").stdout == b"137\n"
    finally:
        assert dy(engine, "rm", "-f", "cli-life", "cli-life2").returncode in (0, 1)
    assert dy(engine, "ps", "-aq", "--no-trunc").stdout.decode().split().count(cid) == 0


def test_create_then_start_attached(engine):
    needs(engine, "POST", "/v1.51/containers/create")
    cid = dy(engine, "create", "--name", "cli-created", "busybox", "sh", "-c",
             "echo started; exit 4").stdout.decode().strip()
    try:
        p = dy(engine, "start", "-a", "cli-created")
        assert (p.returncode, p.stdout) == (4, b"started\n")
        assert dy(engine, "stop", "cli-created").stdout == b"cli-created\n"
    finally:
        assert dy(engine, "rm", cid).stdout.decode() == cid + "\n"


def test_exec_in_a_running_container(engine):
    needs(engine, "POST", "/v1.51/containers/x/exec")
    dy(engine, "run", "-d", "--name", "cli-exec", "busybox", "sleep", "300")
    try:
        p = dy(engine, "exec", "-e", "X=5", "-w", "/tmp", "-u", "1000", "cli-exec", "sh", "-c",
               "echo $X $(pwd) $(id -u); exit 6")
        assert (p.returncode, p.stdout) == (6, b"5 /tmp 1000\n")
        assert dy(engine, "exec", "-i", "cli-exec", "cat", input="in\n").stdout == b"in\n"
        assert dy(engine, "exec", "-d", "cli-exec", "true").returncode == 0
    finally:
        dy(engine, "rm", "-f", "cli-exec")


def test_errors_are_dockers_words_and_statuses(engine):
    needs(engine, "GET", "/v1.51/containers/json")
    for args in (("rm", "nope"), ("stop", "nope"), ("logs", "nope"), ("wait", "nope")):
        p = dy(engine, *args)
        assert (p.returncode, p.stderr) == (
            1, b"Error response from daemon: No such container: nope\n"), args
    p = dy(engine, "inspect", "nope")
    assert (p.returncode, p.stdout, p.stderr) == (1, b"[]\n", b"Error: No such object: nope\n")
    same(engine, "inspect", "nope")
    p = dy(engine, "rm")
    assert p.returncode == 1 and b"'dockyard rm' requires at least 1 argument" in p.stderr


def test_tag_save_load_and_rmi(engine, tmp_path):
    needs(engine, "GET", "/v1.51/images/get")
    assert dy(engine, "tag", "busybox", "cli-tagged:1").returncode == 0
    assert b"cli-tagged" in dy(engine, "images").stdout
    archive = tmp_path / "bb.tar"
    assert dy(engine, "save", "-o", str(archive), "cli-tagged:1").returncode == 0
    assert dy(engine, "rmi", "cli-tagged:1").stdout == b"Untagged: cli-tagged:1\n"
    p = dy(engine, "load", "-i", str(archive))
    assert p.stdout == b"Loaded image: cli-tagged:1\n", p.stderr
    assert dy(engine, "rmi", "cli-tagged:1").returncode == 0
    p = dy(engine, "rmi", "nope")
    assert (p.returncode, p.stderr) == (1, b"Error response from daemon: No such image: nope\n")


def test_events_between_two_times_match_dockers(engine):
    needs(engine, "POST", "/v1.51/containers/create")
    start = str(int(time.time()) - 1)
    dy(engine, "run", "--rm", "busybox", "true")
    end = str(int(time.time()) + 1)
    time.sleep(1.2)
    out = same(engine, "events", "--since", start, "--until", end)
    assert " container start " in out
    same(engine, "events", "--since", start, "--until", end, "--format", "{{.Type}} {{.Action}}")


def test_push_then_pull_print_dockers_plain_lines(engine, registry):  # noqa: F811
    needs(engine, "POST", "/v1.51/images/create")
    name = f"{registry}/{unique('cli')}:v1"
    assert dy(engine, "tag", "busybox", name).returncode == 0
    p = dy(engine, "push", name)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.decode().splitlines()
    assert lines[0] == f"The push refers to repository [{name.rsplit(':', 1)[0]}]"
    assert lines[-1].startswith("v1: digest: sha256:")
    assert dy(engine, "rmi", name).returncode == 0
    ours = dy(engine, "pull", name)
    assert ours.returncode == 0, ours.stderr
    assert dy(engine, "rmi", name).returncode == 0
    theirs = engine.docker("pull", name)
    assert ours.stdout == theirs.stdout
    assert ours.stdout.decode().endswith(f"\n{name}\n")
    assert dy(engine, "pull", "-q", name).stdout.decode() == name + "\n"
    p = dy(engine, "pull", f"{registry}/{unique('missing')}")
    assert p.returncode == 1 and p.stdout.startswith(b"Using default tag: latest\n")
    assert p.stderr.startswith(b"Error response from daemon: ")
    dy(engine, "rmi", name)


def test_volumes(engine):
    needs(engine, "GET", "/v1.51/volumes")
    name = unique("cli-vol")
    assert dy(engine, "volume", "create", name).stdout.decode() == name + "\n"
    try:
        same(engine, "volume", "ls")
        same(engine, "volume", "ls", "-q", "--filter", f"name={name}")
        same(engine, "volume", "inspect", name)
        same(engine, "volume", "inspect", "-f", "{{.Name}} {{.Driver}}", name)
    finally:
        assert dy(engine, "volume", "rm", name).stdout.decode() == name + "\n"


def test_login_checks_with_the_daemon_and_stores_the_credentials(engine, registry):  # noqa: F811
    needs(engine, "POST", "/v1.51/auth")
    p = dy(engine, "login", "-u", "someone", "--password-stdin", registry, input="pw\n")
    assert (p.returncode, p.stdout) == (0, b"Login Succeeded\n"), p.stderr
    doc = json.loads((engine.docker_config / "config.json").read_text())
    assert registry in doc["auths"]
    p = dy(engine, "logout", registry)
    assert p.stdout.decode() == f"Removing login credentials for {registry}\n"
    assert registry not in json.loads((engine.docker_config / "config.json").read_text())[
        "auths"]
