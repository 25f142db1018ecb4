"""Attach against dockyardd: docker run in the foreground (attach before start), stdin, a
TTY, attaching to a running container, detach keys, resize."""

from __future__ import annotations

import socket
import time

import pytest

pytestmark = pytest.mark.root


def test_run_prints_the_output(engine):
    p = engine.docker("run", "--rm", "--network", "none", "busybox", "echo", "hi")
    assert p.stdout == b"hi\n"


def test_run_keeps_stderr_apart_and_gives_the_exit_code(engine):
    p = engine.docker("run", "--rm", "--network", "none", "busybox", "sh", "-c",
                      "echo out; echo err >&2; exit 3", check=False)
    assert p.returncode == 3 and p.stdout == b"out\n" and p.stderr == b"err\n"


def test_run_of_a_missing_program_fails_with_127_and_does_not_hang(engine):
    name = f"dynosuch{time.monotonic_ns()}"
    try:
        p = engine.docker("run", "--name", name, "--network", "none", "busybox", "nosuch",
                          check=False, timeout=30)
        assert p.returncode == 127
        assert b"executable file not found" in p.stderr
    finally:
        engine.docker("rm", "-f", name, check=False)


def test_run_with_stdin_echoes_it(engine):
    p = engine.docker("run", "--rm", "-i", "--network", "none", "busybox", "cat",
                      input=b"piped\ninput\n")
    assert p.stdout == b"piped\ninput\n"


def test_run_with_a_tty_from_a_non_terminal(engine):
    p = engine.docker("run", "--rm", "-t", "--network", "none", "busybox", "sh", "-c",
                      "test -t 0 && echo tty")
    assert p.stdout == b"tty\r\n"


def test_start_attach_sees_the_output(engine):
    cid = engine.docker("create", "--network", "none", "busybox", "echo", "again"
                        ).stdout.decode().strip()
    try:
        assert engine.docker("start", "-a", cid).stdout == b"again\n"
        assert engine.docker("start", "-a", cid).stdout == b"again\n"
    finally:
        engine.docker("rm", "-f", cid, check=False)


def _attach_raw(engine, cid: str, query: str) -> socket.socket:
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(20)
    s.connect(str(engine.sock))
    s.sendall(f"POST /v1.51/containers/{cid}/attach?{query} HTTP/1.1\r\nHost: docker\r\n"
              f"Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(1)
    assert head.startswith(b"HTTP/1.1 101 UPGRADED\r\n"), head
    assert b"Content-Type: application/vnd.docker.multiplexed-stream" in head
    return s


def _read_frames(s: socket.socket, until: bytes) -> bytes:
    data, out = b"", b""
    while until not in out:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
        while len(data) >= 8 and len(data) >= 8 + int.from_bytes(data[4:8], "big"):
            n = int.from_bytes(data[4:8], "big")
            out += data[8:8 + n]
            data = data[8 + n:]
    return out


def test_attach_to_a_running_container_sees_new_output(engine):
    cid = engine.docker("run", "-d", "--network", "none", "busybox", "sh", "-c",
                        "i=0; while true; do echo tick$i; i=$((i+1)); sleep 0.2; done"
                        ).stdout.decode().strip()
    try:
        s = _attach_raw(engine, cid, "stream=1&stdout=1&stderr=1")
        out = _read_frames(s, b"\n")
        assert out.startswith(b"tick")
        s.close()
        assert engine.sdk.containers.get(cid).status == "running"
    finally:
        engine.docker("rm", "-f", cid, check=False)


def test_leaving_an_attach_with_stdin_leaves_stdin_to_the_next(engine):
    cid = engine.docker("run", "-d", "-i", "--network", "none", "busybox", "cat"
                        ).stdout.decode().strip()
    try:
        s = _attach_raw(engine, cid, "stream=1&stdin=1&stdout=1&stderr=1")
        s.sendall(b"ping\n")
        assert _read_frames(s, b"ping\n") == b"ping\n"
        s.close()
        time.sleep(0.5)
        assert engine.sdk.containers.get(cid).status == "running"
        s = _attach_raw(engine, cid, "stream=1&stdin=1&stdout=1&stderr=1")
        s.sendall(b"pong\n")
        assert _read_frames(s, b"pong\n") == b"pong\n"
        s.close()
    finally:
        engine.docker("rm", "-f", cid, check=False)


def test_without_a_tty_the_detach_keys_are_just_input(engine):
    p = engine.docker("run", "--rm", "-i", "--network", "none", "busybox", "cat",
                      input=b"a\x10\x11b\n")
    assert p.stdout == b"a\x10\x11b\n"


def test_detach_keys_end_a_tty_attach_and_leave_the_container_running(engine):
    cid = engine.docker("run", "-d", "-i", "-t", "--network", "none", "busybox", "cat"
                        ).stdout.decode().strip()
    try:
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(20)
        s.connect(str(engine.sock))
        s.sendall(f"POST /v1.51/containers/{cid}/attach?stream=1&stdin=1&stdout=1 HTTP/1.1"
                  f"\r\nHost: docker\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n".encode())
        data = b""
        while b"\r\n\r\n" not in data:
            data += s.recv(1)
        assert b"application/vnd.docker.raw-stream" in data
        s.sendall(b"ping\n")
        data = b""
        while data.count(b"ping") < 2:  # the terminal's echo, then cat's
            chunk = s.recv(65536)
            assert chunk, data
            data += chunk
        s.sendall(b"\x10\x11")  # the default keys: ctrl-p, ctrl-q
        while s.recv(65536):
            pass
        s.close()
        time.sleep(0.2)
        assert engine.sdk.containers.get(cid).status == "running"
    finally:
        engine.docker("rm", "-f", cid, check=False)


def test_docker_attach_cli_sees_the_output(engine):
    cid = engine.docker("run", "-d", "--network", "none", "busybox", "sh", "-c",
                        "sleep 1; echo late"
                        ).stdout.decode().strip()
    try:
        p = engine.docker("attach", cid, timeout=30)
        assert p.stdout == b"late\n"
    finally:
        engine.docker("rm", "-f", cid, check=False)


def test_resize_of_a_tty_container_changes_its_size(engine):
    cid = engine.docker("run", "-d", "-t", "--network", "none", "busybox", "sh", "-c",
                        "while true; do stty size; sleep 0.1; done").stdout.decode().strip()
    try:
        engine.sdk.api.resize(cid, 40, 100)
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(20)
        s.connect(str(engine.sock))
        s.sendall(f"POST /v1.51/containers/{cid}/attach?stream=1&stdout=1 HTTP/1.1\r\n"
                  f"Host: docker\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n".encode())
        data = b""
        while b"40 100" not in data:
            chunk = s.recv(65536)
            assert chunk, data
            data += chunk
        assert b"Content-Type: application/vnd.docker.raw-stream" in data
        s.close()
    finally:
        engine.docker("rm", "-f", cid, check=False)


def test_resize_of_a_stopped_container_is_a_409(engine):
    import docker

    cid = engine.docker("create", "--network", "none", "busybox", "true").stdout.decode().strip()
    try:
        with pytest.raises(docker.errors.APIError, match="is not running"):
            engine.sdk.api.resize(cid, 40, 100)
    finally:
        engine.docker("rm", "-f", cid, check=False)


def test_sdk_attach_socket_and_run(engine):
    out = engine.sdk.containers.run("busybox", ["echo", "sdk"], network_mode="none",
                                    remove=True)
    assert out == b"sdk\n"



def test_attach_over_a_websocket_echoes_stdin(engine):
    import asyncio

    import aiohttp

    cid = engine.docker("run", "-d", "-i", "--network", "none", "busybox", "cat"
                        ).stdout.decode().strip()

    async def talk() -> bytes:
        async with aiohttp.ClientSession(connector=aiohttp.UnixConnector(str(engine.sock))
                                         ) as session:
            url = (f"http://docker/v1.51/containers/{cid}/attach/ws"
                   f"?stream=1&stdin=1&stdout=1&stderr=1")
            async with session.ws_connect(url) as ws:
                await ws.send_bytes(b"over ws\n")
                got = b""
                while b"\n" not in got:
                    msg = await asyncio.wait_for(ws.receive(), 20)
                    assert msg.type == aiohttp.WSMsgType.BINARY, msg
                    got += msg.data
                return got

    try:
        assert asyncio.run(talk()) == b"over ws\n"
    finally:
        engine.docker("rm", "-f", cid, check=False)


def test_attach_with_logs_replays_what_was_said(engine):
    c = engine.sdk.containers.run("busybox", ["sh", "-c", "echo said; echo err >&2"],
                                  network_mode="none", detach=True)
    try:
        c.wait(timeout=30)
        assert engine.sdk.api.attach(c.id, stdout=True, stderr=False, stream=False,
                                     logs=True) == b"said\n"
        assert engine.sdk.api.attach(c.id, stdout=True, stderr=True, stream=False,
                                     logs=True, demux=True) == (b"said\n", b"err\n")
    finally:
        c.remove(force=True)


def _cli_in_a_terminal(engine, *args: str):
    """The docker CLI with a pseudo-terminal as its stdio, as a user at a terminal runs it:
    (process, the terminal's master end)."""
    import fcntl
    import os
    import pty
    import struct
    import subprocess
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 31, 93, 0, 0))  # rows, cols
    env = {**os.environ, "DOCKER_HOST": engine.host, "DOCKER_CONFIG": str(engine.docker_config),
           "DOCKER_CLI_HINTS": "false", "TERM": "xterm"}
    p = subprocess.Popen(["docker", *args], stdin=slave, stdout=slave, stderr=slave, env=env,
                         start_new_session=True)
    os.close(slave)
    return p, master


def _read_until(fd: int, wanted: bytes, timeout: float = 20) -> bytes:
    import os
    import select

    data, deadline = b"", time.monotonic() + timeout
    while wanted not in data:
        left = deadline - time.monotonic()
        assert left > 0, data
        if select.select([fd], [], [], left)[0]:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            data += chunk
    return data


def test_run_it_at_a_terminal_and_detach_with_ctrl_p_ctrl_q(engine):
    import os

    name = f"dytty{os.getpid()}"
    p, master = _cli_in_a_terminal(engine, "run", "-it", "--name", name, "--network", "none",
                                   "busybox", "sh")
    try:
        os.write(master, b"echo in-$((40+2))\r")
        assert b"in-42" in _read_until(master, b"in-42")
        os.write(master, b"stty size\r")
        assert b"31 93" in _read_until(master, b"31 93")  # the CLI resized it to its own
        os.write(master, b"\x10\x11")
        assert p.wait(20) == 0
        assert engine.sdk.containers.get(name).status == "running"
        q, master2 = _cli_in_a_terminal(engine, "exec", "-it", name, "sh", "-c",
                                        "stty size; exit 7")
        try:
            assert b"31 93" in _read_until(master2, b"31 93")  # the CLI's terminal size
            assert q.wait(20) == 7
        finally:
            os.close(master2)
    finally:
        os.close(master)
        if p.poll() is None:
            p.kill()
            p.wait()
        engine.docker("rm", "-f", name, check=False)
