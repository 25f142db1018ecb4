"""A throwaway CA with a server certificate (127.0.0.1) and a client certificate, written as
the docker CLI expects them in DOCKER_CERT_PATH: ca.pem, cert.pem, key.pem."""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _cert(subject: str, key, issuer_name, issuer_key, *, ca: bool = False,
          server: bool = False) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    b = (x509.CertificateBuilder()
         .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
         .issuer_name(issuer_name).public_key(key.public_key())
         .serial_number(x509.random_serial_number())
         .not_valid_before(now - datetime.timedelta(minutes=5))
         .not_valid_after(now + datetime.timedelta(days=1))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if server:
        b = b.add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        b = b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                            critical=False)
    elif not ca:
        b = b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]),
                            critical=False)
    return b.sign(issuer_key, hashes.SHA256())


def make_pki(d: Path) -> tuple[Path, Path]:
    """(server directory, client directory), each with ca.pem, cert.pem and key.pem."""
    ca_key = _key()
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dockyard test CA")])
    ca = _cert("dockyard test CA", ca_key, ca_name, ca_key, ca=True)
    out = []
    for kind in ("server", "client"):
        key = _key()
        cert = _cert(kind, key, ca_name, ca_key, server=kind == "server")
        sub = d / kind
        sub.mkdir(parents=True)
        (sub / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
        (sub / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        (sub / "key.pem").write_bytes(_pem_key(key))
        out.append(sub)
    return out[0], out[1]
