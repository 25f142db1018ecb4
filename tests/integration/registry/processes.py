"""`dockyard-registry` run as a process for tests, and a signing key with its certificate."""

from __future__ import annotations

import contextlib
import datetime
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.waiting import wait_http

TOOL = [sys.executable, "-m", "dockyard.registry.main"]


@contextlib.contextmanager
def process(args: list[str], url: str) -> Iterator[subprocess.Popen[bytes]]:
    """`dockyard-registry ARGS` until the test is done; up once `url` answers."""
    proc = subprocess.Popen([*TOOL, *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True)
    try:
        wait_http(url, proc, what="dockyard-registry",
                  logs=lambda: proc.stderr.read().decode() if proc.poll() is not None else "")
        yield proc
    finally:
        proc.kill()
        proc.wait(10)


def signing_key(work: Path, ip: str | None = None) -> tuple[Path, Path]:
    """An EC P-256 key and a self-signed certificate for it (valid for `ip` if given)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ip or "dockyard-token")])
    now = datetime.datetime.now(datetime.UTC)
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(days=1))
               .not_valid_after(now + datetime.timedelta(days=1)))
    if ip is not None:
        import ipaddress

        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address(ip))]), critical=False)
    cert = builder.sign(key, hashes.SHA256())
    (work / "key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    (work / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return work / "key.pem", work / "cert.pem"


