"""The shims' fork server: a shim it forks runs containers as an exec'd one does, shows as
`dockyard-shim -namespace … -id …` in ps, outlives the zygote; with the zygote gone,
start_shim falls back to exec; a bad request gets an error and the zygote serves on."""

from __future__ import annotations

import os
import signal
import socket
from pathlib import Path

import pytest

from dockyard.shim.client import ShimClient
from dockyard.shim.protocol import encode
from dockyard.shim.spawn import start_shim, start_zygote
from tests.integration.shim.conftest import Shims, alive, shim_pid, wait_for

pytestmark = pytest.mark.root


def cmdline(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").decode().split("\0")


def test_a_forked_shim_runs_a_container_and_outlives_the_zygote(shims: Shims) -> None:
    proc, path = start_zygote(shims.state)
    try:
        bundle, cid = shims.bundle(["sh", "-c", "read x; exit $x"])
        shims.held.append((bundle, cid))
        address = start_shim("test", cid, bundle, state_dir=shims.state,
                             runtime_root=shims.runtime_root, zygote=path)
        client = ShimClient(address, timeout=30)
        shims.clients.append(client)
        pid = shim_pid(bundle)
        argv = cmdline(pid)
        assert argv[:5] == ["dockyard-shim", "-namespace", "test", "-id", cid]
        assert Path(f"/proc/{pid}/comm").read_text().strip() == "dockyard-shim"
        assert os.getsid(pid) not in (os.getsid(0), os.getsid(proc.pid))  # its own session
        client.create(stdin=True)
        proc.kill()  # the zygote goes; its shim does not
        proc.wait()
        client.start()
        sock = client.attach(stdin=True, stdout=False, stderr=False, stdin_once=True)
        sock.sendall(b"9\n")
        sock.shutdown(socket.SHUT_WR)
        assert client.wait()["exit_status"] == 9
        assert alive(pid)
        client.delete()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_without_a_zygote_the_shim_is_execd(shims: Shims) -> None:
    bundle, cid = shims.bundle(["true"])
    shims.held.append((bundle, cid))
    gone = shims.state / "s" / "no-zygote"
    start_shim("test", cid, bundle, state_dir=shims.state, runtime_root=shims.runtime_root,
               zygote=gone)
    argv = cmdline(shim_pid(bundle))
    assert argv[0].endswith("dockyard-shim") and "-id" in argv and cid in argv


def test_a_bad_request_is_refused_and_the_zygote_serves_on(shims: Shims) -> None:
    proc, path = start_zygote(shims.state)
    try:
        for request in (encode({"argv": "not a list"}), encode({"argv": ["-bogus"]})):
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(10)
                s.connect(str(path))
                s.sendall(request)
                answer = b""
                while chunk := s.recv(4096):
                    answer += chunk
            assert answer.startswith(b"error: "), answer
        assert proc.poll() is None
        bundle, cid = shims.bundle(["true"])
        shims.held.append((bundle, cid))
        start_shim("test", cid, bundle, state_dir=shims.state, runtime_root=shims.runtime_root,
                   zygote=path)
        wait_for(lambda: (bundle / "shim.pid").exists(), what="the shim")
        assert cmdline(shim_pid(bundle))[0] == "dockyard-shim"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
