"""The container's stdio through its shim: the json-file log (with rotation), attach streams
(output to any number of readers, stdin from one writer), a tty and its size, and execs."""

from __future__ import annotations

import socket
import threading

import pytest

from dockyard.shim.protocol import ShimError
from tests.integration.shim.conftest import Demux, log_entries, read_stream

pytestmark = pytest.mark.root

BOTH = pytest.mark.parametrize("shims", ["dockyard-runc", "runc"], indirect=True)


def test_stdout_and_stderr_of_the_init_go_to_the_json_log(shims):
    bundle, cid = shims.bundle(["sh", "-c", "echo out; echo err >&2; printf 'no newline'"])
    client = shims.start(bundle, cid)
    client.create(log=shims.log(bundle))
    client.start()
    assert client.wait()["exit_status"] == 0
    entries = log_entries(bundle / "container.log")
    assert sorted((e["stream"], e["log"]) for e in entries) == [
        ("stderr", "err\n"), ("stdout", "no newline"), ("stdout", "out\n")]
    assert all(e["time"].endswith("Z") for e in entries)


def test_the_log_rotates_by_size_and_count_without_losing_lines(shims):
    bundle, cid = shims.bundle(["sh", "-c", "seq 1 3000"])
    client = shims.start(bundle, cid)
    client.create(log=shims.log(bundle, max_size=4096, max_file=3))
    client.start()
    assert client.wait()["exit_status"] == 0
    files = sorted(p.name for p in bundle.iterdir() if p.name.startswith("container.log"))
    assert files == ["container.log", "container.log.1", "container.log.2"]
    numbers = []
    for name in ("container.log.2", "container.log.1", "container.log"):
        path = bundle / name
        assert path.stat().st_size < 4096 + 200
        numbers += [int(e["log"]) for e in log_entries(path)]
    assert numbers == list(range(numbers[0], 3001))  # the newest lines, none missing
    assert numbers[0] > 1


def test_attach_reads_both_streams_until_the_output_ends(shims):
    client, _bundle, _cid = shims.container(["sh", "-c", "echo out; echo err >&2; exit 2"])
    sock = client.attach(stdout=True, stderr=True)
    client.start()
    out = read_stream(sock)
    sock.close()
    assert out == {1: b"out\n", 2: b"err\n"}
    assert client.wait()["exit_status"] == 2


def test_attach_writes_stdin_and_stdin_once_closes_it(shims):
    client, bundle, _cid = shims.container(["sh", "-c", "cat; echo done"], stdin=True,
                                            log=None)
    sock = client.attach(stdin=True, stdout=True, stderr=False, stdin_once=True)
    client.start()
    sock.sendall(b"hello\n" * 1000)
    sock.shutdown(socket.SHUT_WR)
    out = read_stream(sock)
    sock.close()
    assert out[1] == b"hello\n" * 1000 + b"done\n"
    assert client.wait()["exit_status"] == 0
    del bundle


def test_one_stdin_writer_at_a_time_and_close_io(shims):
    client, _bundle, _cid = shims.container(["sh", "-c", "cat; echo eof"], stdin=True)
    first = client.attach(stdin=True, stdout=True)
    with pytest.raises(ShimError) as e:
        client.attach(stdin=True)
    assert e.value.code == "failed_precondition"
    reader = client.attach(stdout=True)  # readers are not limited
    client.start()
    first.sendall(b"one\n")
    first.close()  # the writer goes (not stdin_once): stdin stays open for the next
    second = client.attach(stdin=True)
    second.sendall(b"two\n")
    out = Demux(reader)
    out.until(lambda out: out[1] == b"one\ntwo\n")
    client.close_io()
    assert out.until(None)[1] == b"one\ntwo\neof\n"
    assert client.wait()["exit_status"] == 0
    second.close()


def test_two_readers_get_the_same_output(shims):
    client, _bundle, _cid = shims.container(["sh", "-c", "seq 1 20000; seq 1 5 >&2"])
    socks = [client.attach(stdout=True, stderr=True) for _ in range(2)]
    client.start()
    outs = [None, None]

    def read(i: int) -> None:
        outs[i] = read_stream(socks[i])

    threads = [threading.Thread(target=read, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    expected = "".join(f"{i}\n" for i in range(1, 20001)).encode()
    assert outs[0] == outs[1] == {1: expected, 2: b"1\n2\n3\n4\n5\n"}
    for s in socks:
        s.close()


def test_a_reader_that_does_not_read_never_blocks_the_container_or_the_log(shims):
    bundle, cid = shims.bundle(["sh", "-c", "yes 0123456789abcdef | head -c 12000000; echo"])
    client = shims.start(bundle, cid)
    client.create(log=shims.log(bundle))
    stuck = client.attach(stdout=True)
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    client.start()
    assert client.wait()["exit_status"] == 0  # it was not held up
    stuck.settimeout(10)
    got = 0
    try:
        while chunk := stuck.recv(1 << 20):
            got += len(chunk)
    except ConnectionResetError:
        pass
    stuck.close()
    assert got < 12_000_000  # dropped, far behind
    assert "dropping connection" in (bundle / "shim.log").read_text()
    log = bundle / "container.log"
    assert sum(len(e["log"]) for e in log_entries(log)) == 12_000_001


@BOTH
def test_a_tty_has_the_size_it_is_given(shims):
    client, _bundle, _cid = shims.container(["sh", "-c", "read x; stty size; echo got $x"],
                                            terminal=True, stdin=True)
    state = client.state()
    assert state["terminal"] and state["stdin"]
    sock = client.attach(stdin=True, stdout=True, stderr=True)
    client.resize_pty(width=123, height=45)
    client.start()
    sock.sendall(b"word\n")
    out = read_stream(sock)[1].replace(b"\r\n", b"\n")
    sock.close()
    assert b"45 123\n" in out and b"got word\n" in out
    assert client.wait()["exit_status"] == 0
    with pytest.raises(ShimError):
        client.resize_pty(width=10, height=10, exec_id="nope")


@BOTH
def test_an_exec_has_its_own_output_and_exit_status_and_stays_out_of_the_log(shims):
    bundle, cid = shims.bundle(["sh", "-c", "echo init; sleep 100"])
    client = shims.start(bundle, cid)
    client.create(log=shims.log(bundle))
    client.start()
    events = client.events()
    spec = {"args": ["sh", "-c", "echo exec-out; echo exec-err >&2; exit 7"], "cwd": "/",
            "env": ["PATH=/bin:/usr/bin"], "user": {"uid": 0, "gid": 0}}
    client.exec("e1", spec)
    with pytest.raises(ShimError) as e:
        client.exec("e1", spec)
    assert e.value.code == "already_exists"
    sock = client.attach(exec_id="e1", stdout=True, stderr=True)
    pid = client.start(exec_id="e1")["pid"]
    assert read_stream(sock) == {1: b"exec-out\n", 2: b"exec-err\n"}
    sock.close()
    assert client.wait(exec_id="e1")["exit_status"] == 7
    assert client.state(exec_id="e1")["status"] == "stopped"
    assert client.delete(exec_id="e1")["exit_status"] == 7
    with pytest.raises(ShimError) as e:
        client.state(exec_id="e1")
    assert e.value.code == "not_found"
    seen = []
    for event in events:
        seen.append((event["topic"], event.get("exec_id"), event.get("exit_status")))
        if event["topic"] == "/tasks/exit":
            break
    assert seen == [("/tasks/exec-started", "e1", None), ("/tasks/exit", "e1", 7)]
    assert pid > 0
    assert [e["log"] for e in log_entries(bundle / "container.log")] == ["init\n"]
    client.kill(signal=9)
    client.wait()


def test_an_exec_with_a_tty_and_stdin(shims):
    client, _bundle, _cid = shims.container(["sleep", "100"])
    client.start()
    spec = {"args": ["sh", "-c", "read x; echo tty=$(tty) x=$x"], "cwd": "/",
            "env": ["PATH=/bin"], "user": {"uid": 0, "gid": 0}}
    client.exec("t1", spec, terminal=True, stdin=True)
    client.start(exec_id="t1")
    sock = client.attach(exec_id="t1", stdin=True, stdout=True)
    sock.sendall(b"abc\n")
    out = read_stream(sock)[1]
    sock.close()
    assert b"tty=/dev/pts/" in out and b"x=abc" in out
    assert client.wait(exec_id="t1")["exit_status"] == 0
    client.kill(signal=9)
    client.wait()


def test_a_failed_exec_start_says_why_and_does_not_hang_its_waiters(shims):
    client, _bundle, _cid = shims.container(["sleep", "100"])
    client.start()
    client.exec("bad", {"args": ["/no/such/program"], "cwd": "/", "env": [],
                        "user": {"uid": 0, "gid": 0}})
    with pytest.raises(ShimError) as e:
        client.start(exec_id="bad")
    assert e.value.message.startswith("OCI runtime exec failed")
    assert client.state(exec_id="bad")["status"] == "stopped"
    assert client.wait(exec_id="bad")["exit_status"] == 255
    client.kill(signal=9)
    client.wait()
