"""The shim's server: error replies, requests answered out of order, bad frames refused
without taking the shim down. First in-process against a stand-in service, then a real
dockyard-shim (no root needed: it never calls the runtime here)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard.shim.client import ShimClient, read_frame
from dockyard.shim.loop import Loop
from dockyard.shim.protocol import MAX_FRAME, ShimError, encode, request
from dockyard.shim.server import Server
from dockyard.shim.spawn import socket_path, start_shim


class StandIn:
    """A service with a method that fails as no method should, one that waits, one that
    answers at once."""

    def __init__(self, loop: Loop) -> None:
        self.loop = loop
        self.methods = {"boom": self.boom, "slow": self.slow, "echo": lambda p: p,
                        "stop": self.stop}

    def boom(self, params: dict) -> dict:
        raise RuntimeError("a bug in one request")

    def slow(self, params: dict):
        yield self.loop.sleep(0.05)
        return "slow"

    def stop(self, params: dict) -> dict:
        self.loop.stopping = True
        return {}

    def attach(self, conn, params):
        raise ShimError("not_found", "nothing to attach to")


@pytest.fixture
def short_dir() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="dys-", dir="/tmp"))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def serve_in_process(path: str, client) -> list:
    """Run a Server with StandIn in this thread while `client(path)` runs in another."""
    loop = Loop()
    errors: list = []
    server = Server(loop, path, StandIn(loop))
    server.log = lambda message: None
    server.log_exception = errors.append

    def run_client() -> None:
        try:
            client(path)
        except BaseException as e:
            errors.append(e)
        finally:
            with socket.socket(socket.AF_UNIX) as s:
                s.connect(path)
                s.sendall(request(0, "stop"))
                read_frame(s)

    t = threading.Thread(target=run_client)
    t.start()
    loop.call_later(20, lambda: setattr(loop, "stopping", True))
    try:
        loop.run_forever()
    finally:
        t.join(5)
        server.stop()
        loop.close()
    return errors


def test_a_request_that_raises_gets_internal_and_the_server_goes_on(short_dir):
    def client(path: str) -> None:
        c = ShimClient(path)
        with pytest.raises(ShimError) as e:
            c.call("boom")
        assert e.value.code == "internal"
        assert "a bug in one request" in e.value.message
        assert c.call("echo", x=1) == {"x": 1}
        with pytest.raises(ShimError) as e:
            c.call("nope")
        assert e.value.code == "invalid_argument"
        with pytest.raises(ShimError) as e:
            c.attach()
        assert e.value.code == "not_found"
        c.close()

    errors = serve_in_process(str(short_dir / "sock"), client)
    assert [type(e) for e in errors] == [RuntimeError]  # the bug, logged, and nothing else


def test_replies_come_back_by_id_in_any_order(short_dir):
    def client(path: str) -> None:
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(path)
            s.sendall(request(1, "slow") + request(2, "echo", {"n": 2}) + request(3, "boom"))
            replies = [read_frame(s) for _ in range(3)]
        assert [r["id"] for r in replies] == [2, 3, 1]
        assert replies[0]["result"] == {"n": 2}
        assert replies[1]["error"]["code"] == "internal"
        assert replies[2]["result"] == "slow"

    errors = serve_in_process(str(short_dir / "sock"), client)
    assert all(isinstance(e, RuntimeError) for e in errors)


def test_bad_frames_are_refused_and_only_their_connection_closes(short_dir):
    def client(path: str) -> None:
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(path)
            s.sendall((MAX_FRAME + 1).to_bytes(4, "big") + b"{")
            reply = read_frame(s)
            assert reply["id"] is None and reply["error"]["code"] == "invalid_argument"
            assert "longer than" in reply["error"]["message"]
            assert s.recv(1) == b""  # closed after the reply
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(path)
            s.sendall(b"\x00\x00\x00\x05nope!")
            reply = read_frame(s)
            assert reply["error"]["code"] == "invalid_argument"
        with socket.socket(socket.AF_UNIX) as s:  # cut in the middle of a frame
            s.connect(path)
            s.sendall(encode({"id": 1, "method": "echo", "params": {}})[:9])
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(path)
            s.sendall(encode({"id": 9, "method": 5}))
            assert read_frame(s)["error"]["code"] == "invalid_argument"
        assert ShimClient(path).call("echo", ok=True) == {"ok": True}

    assert serve_in_process(str(short_dir / "sock"), client) == []


def alive(pid: int) -> bool:
    """Not a zombie either: the init of some hosts reaps orphans only every so often."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] not in ("Z", "X")
    except OSError:
        return False


# -- a real shim ----------------------------------------------------------------------------

@pytest.fixture
def real_shim(short_dir) -> Iterator[tuple[str, Path]]:
    bundle = short_dir / "bundle"
    bundle.mkdir()
    address = start_shim("unit", "c1", bundle, state_dir=short_dir / "state",
                         runtime_root=short_dir / "rt")
    try:
        yield address, bundle
    finally:
        pid = int((bundle / "shim.pid").read_text())
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_a_real_shim_answers_errors_in_containerds_words(real_shim):
    address, bundle = real_shim
    c = ShimClient(address)
    hello = c.connect()
    assert hello["task_pid"] == 0 and hello["shim_pid"] == int((bundle / "shim.pid").read_text())
    assert (bundle / "address").read_text() == address
    for call, code in [(lambda: c.state(), "not_found"), (lambda: c.start(), "not_found"),
                       (lambda: c.wait(exec_id="nope"), "not_found"),
                       (lambda: c.call("kill", signal="TERM"), "invalid_argument"),
                       (lambda: c.exec("../x", {"args": ["true"]}), "invalid_argument"),
                       (lambda: c.create(rootfs="not a list"), "invalid_argument"),
                       (lambda: c.call("create", terminal="yes"), "invalid_argument"),
                       (lambda: c.call("frobnicate"), "invalid_argument"),
                       (lambda: c.attach(), "not_found")]:
        with pytest.raises(ShimError) as e:
            call()
        assert e.value.code == code, e.value
    assert c.connect()["shim_pid"] == hello["shim_pid"]  # still there


def test_start_shim_is_idempotent_and_shutdown_ends_an_empty_shim(real_shim, short_dir):
    address, bundle = real_shim
    pid = ShimClient(address).connect()["shim_pid"]
    again = start_shim("unit", "c1", bundle, state_dir=short_dir / "state",
                       runtime_root=short_dir / "rt")
    assert again == address and ShimClient(again).connect()["shim_pid"] == pid
    assert address == f"unix://{socket_path(short_dir / 'state', 'unit', 'c1')}"
    with open(f"/proc/{pid}/comm") as f:
        assert f.read().strip() == "dockyard-shim"
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        assert b"dockyard-shim" in f.read()
    assert ShimClient(address).shutdown() == {}
    deadline = time.monotonic() + 5
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not alive(pid)
    assert not socket_path(short_dir / "state", "unit", "c1").exists()


def test_a_half_closed_connection_still_gets_its_replies(short_dir):
    def client(path: str) -> None:
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(path)
            s.sendall(request(1, "slow") + request(2, "echo", {}))
            s.shutdown(socket.SHUT_WR)
            assert {read_frame(s)["id"], read_frame(s)["id"]} == {1, 2}
            assert s.recv(1) == b""  # then closed

    assert serve_in_process(str(short_dir / "sock"), client) == []
