"""Bearer tokens of Docker's token authentication: a JWT (compact JWS, ES256 or RS256) whose
claims say who asked and what they may do.

    header   {"typ": "JWT", "alg": "ES256", "kid": "<libtrust key id>"}
    claims   {"iss", "sub", "aud": <service>, "exp", "nbf", "iat", "jti",
              "access": [{"type": "repository", "name": "app", "actions": ["pull", "push"]}]}

The token endpoint answers {"token", "access_token", "expires_in", "issued_at"}. The key id
is libtrust's (the reference registry finds the signing key by it): the SHA-256 of the
public key's DER SubjectPublicKeyInfo, its first 240 bits in base32, in groups of four
joined by ":". An ES256 signature is r||s, 32 bytes each, not DER.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey
LEEWAY = 60  # seconds of clock skew accepted on nbf and exp, as distribution allows


class TokenError(Exception):
    """A token that cannot be trusted: malformed, badly signed, expired, or for another
    service; the registry answers 401 UNAUTHORIZED with a fresh challenge."""


@dataclass(frozen=True)
class Access:
    type: str
    name: str
    actions: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, "name": self.name, "actions": list(self.actions)}


@dataclass(frozen=True)
class Claims:
    subject: str
    access: tuple[Access, ...]
    expires: int

    def allows(self, type: str, name: str, action: str) -> bool:
        return any(a.type == type and a.name == name and (action in a.actions or
                                                          "*" in a.actions)
                   for a in self.access)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError) as e:
        raise TokenError(f"malformed token: {e}") from None


def key_id(key: PublicKey) -> str:
    der = key.public_bytes(serialization.Encoding.DER,
                           serialization.PublicFormat.SubjectPublicKeyInfo)
    text = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode()
    return ":".join(text[i:i + 4] for i in range(0, len(text), 4))


def _alg(key: PrivateKey | PublicKey) -> str:
    return "ES256" if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey) \
        else "RS256"


def _sign(key: PrivateKey, data: bytes) -> bytes:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")
    return key.sign(data, padding.PKCS1v15(), hashes.SHA256())


def _verify(key: PublicKey, signature: bytes, data: bytes) -> None:
    if isinstance(key, ec.EllipticCurvePublicKey):
        if len(signature) != 64:
            raise InvalidSignature
        der = encode_dss_signature(int.from_bytes(signature[:32], "big"),
                                   int.from_bytes(signature[32:], "big"))
        key.verify(der, data, ec.ECDSA(hashes.SHA256()))
    else:
        key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())


class TokenIssuer:
    """What a token endpoint signs with."""

    def __init__(self, key: PrivateKey, issuer: str, service: str, ttl: int = 300) -> None:
        self.key, self.issuer, self.service, self.ttl = key, issuer, service, ttl
        self.kid = key_id(key.public_key())

    def issue(self, subject: str, access: Sequence[Access], now: float | None = None) -> str:
        now = int(time.time() if now is None else now)
        header = {"typ": "JWT", "alg": _alg(self.key), "kid": self.kid}
        claims = {"iss": self.issuer, "sub": subject, "aud": self.service, "exp": now + self.ttl,
                  "nbf": now - 1, "iat": now, "jti": secrets.token_hex(16),
                  "access": [a.to_json() for a in access]}
        signing = (_b64(json.dumps(header, separators=(",", ":")).encode()) + "." +
                   _b64(json.dumps(claims, separators=(",", ":")).encode()))
        return signing + "." + _b64(_sign(self.key, signing.encode()))

    def response(self, subject: str, access: Sequence[Access]) -> dict[str, Any]:
        now = time.time()
        token = self.issue(subject, access, now)
        issued = datetime.fromtimestamp(int(now), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return {"token": token, "access_token": token, "expires_in": self.ttl,
                "issued_at": issued}


class TokenVerifier:
    """What a registry checks tokens with: the issuer's public keys, by key id."""

    def __init__(self, keys: Iterable[PublicKey], issuer: str, service: str) -> None:
        self.keys: Mapping[str, PublicKey] = {key_id(k): k for k in keys}
        self.issuer, self.service = issuer, service

    def verify(self, token: str, now: float | None = None) -> Claims:
        parts = token.split(".")
        if len(parts) != 3:
            raise TokenError("malformed token: want three dot-separated parts")
        try:
            header, claims = json.loads(_unb64(parts[0])), json.loads(_unb64(parts[1]))
        except ValueError as e:
            raise TokenError(f"malformed token: {e}") from None
        if not isinstance(header, dict) or not isinstance(claims, dict):
            raise TokenError("malformed token: header and claims must be objects")
        key = self.keys.get(str(header.get("kid")))
        if key is None:
            raise TokenError("token signed by an unknown key")
        if header.get("alg") != _alg(key):
            raise TokenError(f"token algorithm {header.get('alg')!r} does not fit its key")
        try:
            _verify(key, _unb64(parts[2]), f"{parts[0]}.{parts[1]}".encode())
        except InvalidSignature:
            raise TokenError("token signature is invalid") from None
        return self._claims(claims, time.time() if now is None else now)

    def _claims(self, c: dict[str, Any], now: float) -> Claims:
        if c.get("iss") != self.issuer:
            raise TokenError(f"token issuer {c.get('iss')!r} is not {self.issuer!r}")
        aud = c.get("aud")
        if self.service not in (aud if isinstance(aud, list) else [aud]):
            raise TokenError(f"token is for {aud!r}, not {self.service!r}")
        exp, nbf = c.get("exp"), c.get("nbf", 0)
        if not isinstance(exp, int) or not isinstance(nbf, int):
            raise TokenError("token exp and nbf must be integers")
        if now > exp + LEEWAY:
            raise TokenError("token has expired")
        if now + LEEWAY < nbf:
            raise TokenError("token is not valid yet")
        access = []
        for a in c.get("access") or []:
            if (not isinstance(a, dict) or not isinstance(a.get("type"), str)
                    or not isinstance(a.get("name"), str)
                    or not isinstance(a.get("actions"), list)
                    or not all(isinstance(x, str) for x in a["actions"])):
                raise TokenError("token access entries must have type, name and actions")
            access.append(Access(a["type"], a["name"], tuple(a["actions"])))
        return Claims(str(c.get("sub", "")), tuple(access), exp)
