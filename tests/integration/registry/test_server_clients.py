"""Our server driven by our distribution client (push, chunked push, mount, pull) and run
as `dockyard-registry serve` from a config.yml, over HTTP and HTTPS."""

from __future__ import annotations

import datetime
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import aiohttp
import pytest

from dockyard.distribution.client import Repository
from dockyard.distribution.hosts import Endpoint
from dockyard.distribution.transfer import pull, push
from dockyard.image.imports import bootstrap
from dockyard.image.library import ImageLibrary
from tests.integration.registry import Server, running
from tests.refregistry import free_port

BUSYBOX = "docker.io/library/busybox:latest"
REPO = Path(__file__).resolve().parents[3]


@pytest.mark.root
def test_push_and_pull_with_our_client(tmp_path: Path) -> None:
    import asyncio

    async def main() -> None:
        async with running(tmp_path / "reg") as reg:
            await body(reg)

    async def body(reg: Server) -> None:
        with ImageLibrary(tmp_path / "a") as a, ImageLibrary(tmp_path / "b") as b:
            target = bootstrap(a, unpack=False)
            async with aiohttp.ClientSession() as s:
                pushed = await push(a, BUSYBOX, f"{reg.host}/one/box:v1", session=s,
                                    chunk_size=64 << 10)
                assert pushed.digest == target.digest
                await push(a, BUSYBOX, f"{reg.host}/two/box:v1", session=s,
                           mount_from="one/box")
                pulled = await pull(b, f"{reg.host}/two/box:v1", session=s, unpack=False)
                assert pulled.target.digest == target.digest
                tags = await Repository(s, Endpoint("http", reg.host), "one/box").tags()
                assert tags == ["v1"]
            assert b.resolve(b.get(f"{reg.host}/two/box:v1").target).config == \
                a.resolve(target).config
    asyncio.run(main())


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    import ipaddress
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def _serve(config: Path, *extra: str) -> subprocess.Popen[bytes]:
    launcher = REPO / ".venv" / "bin" / "dockyard-registry"
    cmd = [str(launcher)] if launcher.exists() else [sys.executable, "-m",
                                                     "dockyard.registry.main"]
    return subprocess.Popen([*cmd, "serve", str(config), *extra], stderr=subprocess.PIPE,
                            env={**os.environ, "PYTHONPATH": str(REPO / "src")})


def _wait_listening(proc: subprocess.Popen[bytes]) -> str:
    assert proc.stderr is not None
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        line = proc.stderr.readline().decode()
        if "listening on" in line:
            return line
        if proc.poll() is not None:
            raise AssertionError(f"dockyard-registry exited {proc.returncode}: {line}")
    raise AssertionError("dockyard-registry did not start")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()


def test_serve_from_config_over_http_and_https(tmp_path: Path) -> None:
    import ssl

    cert, key = _self_signed(tmp_path)
    port = free_port()
    config = tmp_path / "config.yml"
    config.write_text(f"""version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: {tmp_path / 'root'}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
  tls:
    certificate: {cert}
    key: {key}
""")
    proc = _serve(config)
    try:
        assert f"https://127.0.0.1:{port}" in _wait_listening(proc)
        ctx = ssl.create_default_context(cafile=str(cert))
        with urllib.request.urlopen(f"https://127.0.0.1:{port}/v2/", context=ctx,
                                    timeout=10) as r:
            assert (r.status, json.loads(r.read())) == (200, {})
            assert r.headers["Docker-Distribution-API-Version"] == "registry/2.0"
    finally:
        _stop(proc)
    port2 = free_port()
    plain = tmp_path / "plain.yml"
    plain.write_text("version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: /nonexistent\n")
    proc = _serve(plain, "--addr", f"127.0.0.1:{port2}", "--root", str(tmp_path / "r2"))
    try:
        _wait_listening(proc)
        with urllib.request.urlopen(f"http://127.0.0.1:{port2}/v2/_catalog", timeout=10) as r:
            assert json.loads(r.read()) == {"repositories": []}
    finally:
        _stop(proc)
    assert (tmp_path / "r2").is_dir()


def test_version_and_bad_config(tmp_path: Path) -> None:
    launcher = REPO / ".venv" / "bin" / "dockyard-registry"
    if not launcher.exists():
        pytest.skip("dockyard-registry is not installed (scripts/install.sh)")
    out = subprocess.run([str(launcher), "--version"], capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 0 and out.stdout.startswith("dockyard-registry ")
    bad = tmp_path / "bad.yml"
    bad.write_text("log: {level: loud}\n")
    out = subprocess.run([str(launcher), "serve", str(bad)], capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 1 and "log.level" in out.stderr


def test_serve_with_htpasswd_auth(tmp_path: Path) -> None:
    import base64
    import urllib.error

    import bcrypt

    users = tmp_path / "htpasswd"
    users.write_bytes(b"me:" + bcrypt.hashpw(b"pw", bcrypt.gensalt(rounds=4)) + b"\n")
    port = free_port()
    config = tmp_path / "config.yml"
    config.write_text(f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: "
                      f"{tmp_path / 'root'}\nhttp:\n  addr: 127.0.0.1:{port}\n"
                      f"auth:\n  htpasswd:\n    realm: test-realm\n    path: {users}\n")
    proc = _serve(config)
    try:
        _wait_listening(proc)
        url = f"http://127.0.0.1:{port}/v2/"
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(url, timeout=10)
        assert info.value.code == 401
        assert info.value.headers["WWW-Authenticate"] == 'Basic realm="test-realm"'
        info.value.close()
        auth = "Basic " + base64.b64encode(b"me:pw").decode()
        with urllib.request.urlopen(urllib.request.Request(url, headers={
                "Authorization": auth}), timeout=10) as r:
            assert r.status == 200
    finally:
        _stop(proc)
