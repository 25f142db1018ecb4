"""Access controllers: who may do what, and the challenge a refusal carries."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

import pytest
from aiohttp.test_utils import make_mocked_request
from cryptography.hazmat.primitives.asymmetric import ec

from dockyard.distribution.challenge import parse_challenges
from dockyard.registry.auth.access import (
    HtpasswdAccess,
    NoAccessControl,
    TokenAccess,
    basic_credentials,
    scope_text,
)
from dockyard.registry.auth.htpasswd import Htpasswd, entry
from dockyard.registry.auth.token import Access, TokenIssuer, TokenVerifier
from dockyard.registry.errors import RegistryError

KEY = ec.generate_private_key(ec.SECP256R1())
OTHER_KEY = ec.generate_private_key(ec.SECP256R1())
ISSUER = TokenIssuer(KEY, "dockyard-token", "registry.test")
VERIFIER = TokenVerifier([KEY.public_key()], "dockyard-token", "registry.test")
REALM = "http://127.0.0.1:5001/token"

PULL = [("repository", "app", frozenset({"pull"}))]
PUSH = [("repository", "app", frozenset({"pull", "push"}))]
CATALOG = [("registry", "catalog", frozenset({"*"}))]


def request(authorization: str | None = None):  # type: ignore[no-untyped-def]
    headers = {"Authorization": authorization} if authorization is not None else {}
    return make_mocked_request("GET", "/v2/app/manifests/v1", headers=headers)


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def authorize(controller, req, scopes):  # type: ignore[no-untyped-def]
    return asyncio.run(controller.authorize(req, scopes))


def refused(controller, req, scopes) -> RegistryError:  # type: ignore[no-untyped-def]
    with pytest.raises(RegistryError) as info:
        authorize(controller, req, scopes)
    return info.value


def test_no_access_control_allows_everyone() -> None:
    ctl = NoAccessControl()
    assert authorize(ctl, request(), PUSH) is None
    assert ctl.challenge(request(), PUSH) == {}


def test_scope_text_orders_actions_like_distribution() -> None:
    assert scope_text(PUSH) == "repository:app:pull,push"
    assert scope_text(PUSH + CATALOG) == "repository:app:pull,push registry:catalog:*"
    assert scope_text([("repository", "a/b", frozenset({"delete", "push", "pull"}))]) == \
        "repository:a/b:pull,push,delete"


def test_basic_credentials_parsing() -> None:
    assert basic_credentials(request(basic("alice", "pa:ss"))) == ("alice", "pa:ss")
    assert basic_credentials(request("basic " + basic("bob", "x")[6:])) == ("bob", "x")
    for bad in ("Basic", "Basic !!!", "Bearer abc", "Basic " +
                base64.b64encode(b"nocolon").decode(), basic("", "pw")):
        assert basic_credentials(request(bad)) is None


@pytest.fixture
def htpasswd(tmp_path: Path) -> Htpasswd:
    path = tmp_path / "htpasswd"
    path.write_text(entry("alice", "secret", rounds=4) + "\n")
    return Htpasswd(path)


def test_htpasswd_valid_user_may_do_anything(htpasswd: Htpasswd) -> None:
    ctl = HtpasswdAccess(htpasswd, "dockyard")
    assert authorize(ctl, request(basic("alice", "secret")), PUSH) == "alice"
    assert authorize(ctl, request(basic("alice", "secret")), CATALOG) == "alice"


@pytest.mark.parametrize("auth", [None, basic("alice", "wrong"), basic("mallory", "secret"),
                                  "Bearer abc"])
def test_htpasswd_refuses_missing_or_wrong_credentials(htpasswd: Htpasswd,
                                                       auth: str | None) -> None:
    ctl = HtpasswdAccess(htpasswd, "dockyard")
    err = refused(ctl, request(auth), PULL)
    assert err.code == "UNAUTHORIZED" and err.status == 401
    assert err.detail == [{"Type": "repository", "Name": "app", "Action": "pull"}]
    assert ctl.challenge(request(auth), PULL) == {"WWW-Authenticate": 'Basic realm="dockyard"'}


def test_htpasswd_missing_file_is_a_server_error(tmp_path: Path) -> None:
    ctl = HtpasswdAccess(Htpasswd(tmp_path / "absent"), "dockyard")
    assert refused(ctl, request(basic("alice", "secret")), PULL).code == "UNKNOWN"


def bearer(access: list[Access], issuer: TokenIssuer = ISSUER, subject: str = "alice") -> str:
    return "Bearer " + issuer.issue(subject, access)


def challenge_params(ctl: TokenAccess, req, scopes) -> dict[str, str]:  # type: ignore[no-untyped-def]
    (header,) = ctl.challenge(req, scopes).values()
    (challenge,) = parse_challenges(header)
    assert challenge.scheme == "bearer"
    return challenge.params


def test_token_grants_what_its_claims_allow() -> None:
    ctl = TokenAccess(VERIFIER, REALM, "registry.test")
    token = bearer([Access("repository", "app", ("pull", "push"))])
    assert authorize(ctl, request(token), PUSH) == "alice"
    assert authorize(ctl, request(token), PULL) == "alice"
    star = bearer([Access("registry", "catalog", ("*",))])
    assert authorize(ctl, request(star), CATALOG) == "alice"
    anonymous = bearer([Access("repository", "app", ("pull",))], subject="")
    assert authorize(ctl, request(anonymous), PULL) is None


def test_token_missing_asks_for_one_with_the_scope() -> None:
    ctl = TokenAccess(VERIFIER, REALM, "registry.test")
    err = refused(ctl, request(), PUSH)
    assert err.code == "UNAUTHORIZED"
    assert challenge_params(ctl, request(), PUSH) == {
        "realm": REALM, "service": "registry.test", "scope": "repository:app:pull,push"}
    assert "scope" not in challenge_params(ctl, request(), [])


def test_token_without_the_scope_is_insufficient() -> None:
    ctl = TokenAccess(VERIFIER, REALM, "registry.test")
    for token in (bearer([Access("repository", "app", ("pull",))]),
                  bearer([Access("repository", "other", ("pull", "push"))]), bearer([])):
        assert refused(ctl, request(token), PUSH).code == "UNAUTHORIZED"
        params = challenge_params(ctl, request(token), PUSH)
        assert params["error"] == "insufficient_scope"
        assert params["scope"] == "repository:app:pull,push"


@pytest.mark.parametrize("auth", [
    "Bearer not.a.token",
    "Bearer " + TokenIssuer(OTHER_KEY, "dockyard-token", "registry.test").issue(
        "alice", [Access("repository", "app", ("pull",))]),
    "Bearer " + TokenIssuer(KEY, "someone-else", "registry.test").issue(
        "alice", [Access("repository", "app", ("pull",))]),
    "Bearer " + TokenIssuer(KEY, "dockyard-token", "other.service").issue(
        "alice", [Access("repository", "app", ("pull",))]),
    "Bearer " + TokenIssuer(KEY, "dockyard-token", "registry.test", ttl=-3600).issue(
        "alice", [Access("repository", "app", ("pull",))]),
], ids=["malformed", "foreign-key", "foreign-issuer", "foreign-service", "expired"])
def test_untrusted_tokens_are_invalid(auth: str) -> None:
    ctl = TokenAccess(VERIFIER, REALM, "registry.test")
    assert refused(ctl, request(auth), PULL).code == "UNAUTHORIZED"
    assert challenge_params(ctl, request(auth), PULL)["error"] == "invalid_token"


def test_basic_credentials_do_not_pass_token_access() -> None:
    ctl = TokenAccess(VERIFIER, REALM, "registry.test")
    assert refused(ctl, request(basic("alice", "secret")), PULL).code == "UNAUTHORIZED"
    assert "error" not in challenge_params(ctl, request(basic("alice", "x")), PULL)
