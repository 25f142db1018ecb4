"""Tokens and htpasswd: what is signed verifies, anything altered, expired, foreign or
malformed is refused; bcrypt entries check as the reference registry's do."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from dockyard.registry.auth.htpasswd import Htpasswd, HtpasswdError, entry, parse
from dockyard.registry.auth.token import Access, TokenError, TokenIssuer, TokenVerifier, key_id

EC_KEY = ec.generate_private_key(ec.SECP256R1())
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PULL = Access("repository", "library/app", ("pull",))


@pytest.mark.parametrize("key", [EC_KEY, RSA_KEY], ids=["ES256", "RS256"])
def test_issued_tokens_verify_and_carry_their_access(key) -> None:
    issuer = TokenIssuer(key, "dockyard-token", "registry.test")
    verifier = TokenVerifier([key.public_key()], "dockyard-token", "registry.test")
    claims = verifier.verify(issuer.issue("alice", [PULL]))
    assert claims.subject == "alice"
    assert claims.allows("repository", "library/app", "pull")
    assert not claims.allows("repository", "library/app", "push")
    assert not claims.allows("repository", "library/other", "pull")
    body = issuer.response("alice", [PULL])
    assert body["token"] == body["access_token"] and body["expires_in"] == 300
    header = json.loads(base64.urlsafe_b64decode(body["token"].split(".")[0] + "=="))
    assert header == {"typ": "JWT", "alg": "ES256" if key is EC_KEY else "RS256",
                      "kid": key_id(key.public_key())}


def test_key_ids_are_libtrust_shaped() -> None:
    kid = key_id(EC_KEY.public_key())
    assert len(kid) == 59 and kid.count(":") == 11
    assert all((len(g) == 4 and g.isupper()) or g.isdigit() for g in kid.split(":"))


def test_refused_tokens() -> None:
    issuer = TokenIssuer(EC_KEY, "iss", "svc", ttl=10)
    verifier = TokenVerifier([EC_KEY.public_key()], "iss", "svc")
    token = issuer.issue("bob", [PULL], now=1_000_000)
    assert verifier.verify(token, now=1_000_005).subject == "bob"
    with pytest.raises(TokenError, match="expired"):
        verifier.verify(token, now=1_000_100)
    with pytest.raises(TokenError, match="not valid yet"):
        verifier.verify(token, now=999_000)
    head, claims, sig = token.split(".")
    forged = json.loads(base64.urlsafe_b64decode(claims + "=="))
    forged["access"][0]["actions"] = ["push"]
    forged_b64 = base64.urlsafe_b64encode(json.dumps(forged).encode()).rstrip(b"=").decode()
    with pytest.raises(TokenError, match="signature"):
        verifier.verify(f"{head}.{forged_b64}.{sig}", now=1_000_005)
    with pytest.raises(TokenError, match="unknown key"):
        TokenVerifier([RSA_KEY.public_key()], "iss", "svc").verify(token, now=1_000_005)
    with pytest.raises(TokenError, match="not 'other'"):
        TokenVerifier([EC_KEY.public_key()], "iss", "other").verify(token, now=1_000_005)
    for junk in ("", "a.b", "a.b.c", "!!!.???.***"):
        with pytest.raises(TokenError):
            verifier.verify(junk)


def test_htpasswd(tmp_path: Path) -> None:
    path = tmp_path / "htpasswd"
    path.write_text(f"# users\n{entry('alice', 's3cret')}\n\n")
    users = Htpasswd(path)
    assert users.check("alice", "s3cret")
    assert not users.check("alice", "wrong") and not users.check("mallory", "s3cret")
    path.write_text(path.read_text() + entry("bob", "pw") + "\n")
    assert users.check("bob", "pw")  # read again when the file changes
    with pytest.raises(HtpasswdError, match="only bcrypt"):
        parse("carol:{SHA}abc")
    with pytest.raises(HtpasswdError, match="want user:hash"):
        parse("nocolon")
