"""TCP with mutual TLS, configured as docker's DOCKER_TLS_VERIFY and DOCKER_CERT_PATH say."""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
import threading
from pathlib import Path

import pytest

from dockyard.client.api import APIClient, DaemonUnreachable


def _write_pki(d: Path) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)

    def cert(subject: str, key, issuer_name, issuer_key, ca: bool, san=None):
        b = (x509.CertificateBuilder()
             .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
             .issuer_name(issuer_name).public_key(key.public_key())
             .serial_number(x509.random_serial_number())
             .not_valid_before(now - datetime.timedelta(minutes=1))
             .not_valid_after(now + datetime.timedelta(hours=1))
             .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if san:
            b = b.add_extension(x509.SubjectAlternativeName(san), critical=False)
        return b.sign(issuer_key, hashes.SHA256())

    def pem_key(key) -> bytes:
        return key.private_bytes(serialization.Encoding.PEM,
                                 serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test-ca")])
    ca = cert("test-ca", ca_key, ca_name, ca_key, True)
    server_key = ec.generate_private_key(ec.SECP256R1())
    server = cert("127.0.0.1", server_key, ca_name, ca_key, False,
                  [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    client_key = ec.generate_private_key(ec.SECP256R1())
    client = cert("client", client_key, ca_name, ca_key, False)
    enc = serialization.Encoding.PEM
    (d / "ca.pem").write_bytes(ca.public_bytes(enc))
    (d / "server-cert.pem").write_bytes(server.public_bytes(enc))
    (d / "server-key.pem").write_bytes(pem_key(server_key))
    (d / "cert.pem").write_bytes(client.public_bytes(enc))
    (d / "key.pem").write_bytes(pem_key(client_key))


def test_mutual_tls_with_dockers_environment(tmp_path, monkeypatch):
    _write_pki(tmp_path)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(tmp_path / "server-cert.pem", tmp_path / "server-key.pem")
    ctx.load_verify_locations(tmp_path / "ca.pem")
    ctx.verify_mode = ssl.CERT_REQUIRED
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    seen: list[bytes] = []

    def serve() -> None:
        for _ in range(2):
            conn, _ = listener.accept()
            try:
                tls = ctx.wrap_socket(conn, server_side=True)
            except (ssl.SSLError, OSError):
                conn.close()
                continue
            seen.append(tls.recv(4096))
            tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                        b"Content-Length: 2\r\n\r\n{}")
            tls.close()

    threading.Thread(target=serve, daemon=True).start()
    monkeypatch.setenv("DOCKER_TLS_VERIFY", "1")
    monkeypatch.setenv("DOCKER_CERT_PATH", str(tmp_path))
    monkeypatch.setenv("DOCKER_API_VERSION", "1.51")
    client = APIClient.from_env(f"tcp://127.0.0.1:{port}")
    assert client.get("/info") == {}
    assert seen[0].startswith(b"GET /v1.51/info HTTP/1.1")
    # without the client certificate, the daemon refuses the handshake
    (tmp_path / "cert.pem").unlink()
    with pytest.raises(DaemonUnreachable):
        APIClient.from_env(f"tcp://127.0.0.1:{port}").get("/info")
