"""Where dockyardd listens: TCP only with mutual TLS (or an explicit opt-out), a pid file
that keeps a second engine out."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import pytest

from tests.integration.engine.harness import Engine, V
from tests.integration.engine.tls import make_pki

pytestmark = pytest.mark.root


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def docker_tls(client: Path, port: int, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
    env.update({"DOCKER_HOST": f"tcp://127.0.0.1:{port}", "DOCKER_TLS_VERIFY": "1",
                "DOCKER_CERT_PATH": str(client), "DOCKER_CONFIG": str(client)})
    return subprocess.run(["docker", *args], env=env, capture_output=True, timeout=60)


def test_tcp_without_tls_is_refused_unless_opted_out(tmp_path):
    port = free_port()
    done = subprocess.run([str(V / "dockyardd"), "--data-root", str(tmp_path / "d"),
                           "--exec-root", str(tmp_path / "e"), "--config-file", "/dev/null",
                           "-H", f"tcp://127.0.0.1:{port}"], capture_output=True, timeout=30)
    assert done.returncode == 1
    assert b"refusing to listen on tcp://127.0.0.1" in done.stderr
    assert b"Traceback" not in done.stderr


def test_mutual_tls_lets_the_docker_cli_in_and_keeps_others_out(tmp_path):
    server, client = make_pki(tmp_path / "pki")
    port = free_port()
    e = Engine(Path("/var/tmp"), extra=[
        "-H", f"tcp://127.0.0.1:{port}", "--tlsverify", "--tlscacert", str(server / "ca.pem"),
        "--tlscert", str(server / "cert.pem"), "--tlskey", str(server / "key.pem")])
    try:
        e.start()
        ok = docker_tls(client, port, "version", "--format", "{{.Server.APIVersion}}")
        assert ok.returncode == 0, ok.stderr
        assert ok.stdout.strip() == b"1.51"
        # No client certificate: the handshake fails, nothing is served.
        import ssl

        ctx = ssl.create_default_context(cafile=str(server / "ca.pem"))
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
                pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError)), \
                ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            tls.sendall(b"GET /_ping HTTP/1.0\r\n\r\n")
            assert tls.recv(100) == b""
            raise ConnectionResetError("closed without an answer")
    finally:
        assert not e.destroy()


def test_a_second_engine_on_the_same_pid_file_is_refused(fresh_engine):
    pid_file = fresh_engine.exec_root / "dockyardd.pid"
    done = subprocess.run([*fresh_engine.command(), "--pidfile", str(pid_file)],
                          capture_output=True, timeout=30)
    assert done.returncode == 1 and b"pid file found" in done.stderr
