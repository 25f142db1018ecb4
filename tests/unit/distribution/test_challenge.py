from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dockyard.distribution import errors, scopes
from dockyard.distribution.challenge import (
    MIN_TOKEN_LIFETIME,
    Challenge,
    Token,
    TokenCache,
    find,
    parse_challenges,
    parse_token,
    token_key,
    token_request,
)
from dockyard.distribution.errors import ChallengeError
from dockyard.image import errors as image_errors
from dockyard.image import reference
from dockyard.image.errors import InvalidArgument

HUB = ('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
       'scope="repository:library/busybox:pull"')


@pytest.mark.parametrize(("header", "want"), [
    (HUB, [Challenge("bearer", {"realm": "https://auth.docker.io/token",
                                "service": "registry.docker.io",
                                "scope": "repository:library/busybox:pull"})]),
    ('Basic realm="Registry Realm"', [Challenge("basic", {"realm": "Registry Realm"})]),
    ("Basic", [Challenge("basic")]),
    ("BASIC realm=x", [Challenge("basic", {"realm": "x"})]),
    ('Bearer REALM="r", Service = "s"', [Challenge("bearer", {"realm": "r", "service": "s"})]),
    # commas inside quotes, several scopes in one parameter
    ('Bearer realm="https://a/t",scope="repository:a:pull,push repository:b:pull"',
     [Challenge("bearer", {"realm": "https://a/t",
                           "scope": "repository:a:pull,push repository:b:pull"})]),
    # two challenges in one header
    ('Basic realm="x", Bearer realm="https://a/t",service="s"',
     [Challenge("basic", {"realm": "x"}),
      Challenge("bearer", {"realm": "https://a/t", "service": "s"})]),
    ('Newauth realm="apps", type=1, title="Login to \\"apps\\"", Basic realm="simple"',
     [Challenge("newauth", {"realm": "apps", "type": "1", "title": 'Login to "apps"'}),
      Challenge("basic", {"realm": "simple"})]),
    ("Negotiate abc/+def==", [Challenge("negotiate", token68="abc/+def==")]),
    ("Negotiate, Basic realm=x", [Challenge("negotiate"), Challenge("basic", {"realm": "x"})]),
    (" , Basic realm=x ,, ", [Challenge("basic", {"realm": "x"})]),
    ('Bearer realm=""', [Challenge("bearer", {"realm": ""})]),
    ("", []),
])
def test_parse_challenges(header: str, want: list[Challenge]) -> None:
    assert parse_challenges(header) == want


def test_parse_challenges_accepts_a_repeated_header() -> None:
    got = parse_challenges(['Basic realm="x"', HUB])
    assert [c.scheme for c in got] == ["basic", "bearer"]
    assert find(got, "Bearer") is got[1]
    assert find(got, "digest") is None


@pytest.mark.parametrize("header", [
    'Bearer realm="unterminated',
    'Bearer realm="ends with backslash\\',
    'Bearer realm="a", realm="b"',
    "Bearer realm=a b",
    '"Bearer" realm=x',
    "Bearer realm=a;service=b",
    "Basic= realm",
    'Bearer realm="bell\x07"',
    "Negotiate abc def",
])
def test_malformed_challenges_raise_challenge_error(header: str) -> None:
    with pytest.raises(ChallengeError, match="malformed WWW-Authenticate") as info:
        parse_challenges(header)
    assert isinstance(info.value, InvalidArgument)


_tokens = st.text("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-.^_`|~",
                  min_size=1, max_size=12)
_values = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7e) | st.just("\t"),
                  max_size=30)
_challenges = st.builds(
    lambda scheme, params: Challenge(scheme.lower(), {k.lower(): v for k, v in params}),
    _tokens, st.lists(st.tuples(_tokens, _values), max_size=4,
                      unique_by=lambda kv: kv[0].lower()))


@given(st.lists(_challenges, max_size=4))
def test_challenges_round_trip_through_their_text(challenges: list[Challenge]) -> None:
    header = ", ".join(str(c) for c in challenges)
    assert parse_challenges(header) == challenges


@given(st.text(max_size=40))
def test_any_text_parses_or_raises_challenge_error(header: str) -> None:
    try:
        parse_challenges(header)
    except ChallengeError:
        pass


def test_token_request_for_docker_hub() -> None:
    (challenge,) = parse_challenges(HUB)
    url, query = token_request(challenge, [scopes.repository("library/busybox", "push")])
    assert url == "https://auth.docker.io/token"
    assert query == [("service", "registry.docker.io"),
                     ("scope", "repository:library/busybox:pull,push")]


def test_token_request_has_one_scope_parameter_per_resource() -> None:
    challenge = Challenge("bearer", {"realm": "http://127.0.0.1:5001/token?x=1"})
    url, query = token_request(
        challenge, ["repository:b:pull", "repository:a:push", scopes.catalog()],
        service="local", account="alice")
    assert url == "http://127.0.0.1:5001/token?x=1"
    assert query == [("service", "local"), ("scope", "registry:catalog:*"),
                     ("scope", "repository:a:push"), ("scope", "repository:b:pull"),
                     ("account", "alice")]


def test_token_request_without_service_or_scopes() -> None:
    assert token_request(Challenge("bearer", {"realm": "https://a/t"})) == ("https://a/t", [])


@pytest.mark.parametrize("challenge", [
    Challenge("basic", {"realm": "https://a/t"}),
    Challenge("bearer", {}),
    Challenge("bearer", {"realm": "ftp://a/t"}),
    Challenge("bearer", {"realm": "/token"}),
    Challenge("bearer", {"realm": "https://a/t", "scope": "nonsense"}),
])
def test_token_request_rejects_unusable_challenges(challenge: Challenge) -> None:
    with pytest.raises(ChallengeError):
        token_request(challenge)


NOW = 1_700_000_000.0


@pytest.mark.parametrize(("body", "want"), [
    ({"token": "t"}, Token("t", NOW + 60)),
    ({"access_token": "a"}, Token("a", NOW + 60)),
    ({"token": "t", "access_token": "a", "expires_in": 300}, Token("t", NOW + 300)),
    ({"token": "t", "expires_in": 10}, Token("t", NOW + MIN_TOKEN_LIFETIME)),
    ({"token": "t", "expires_in": 300, "issued_at": "2024-01-01T00:00:00Z"},
     Token("t", 1_704_067_200.0 + 300)),
    ({"token": "t", "issued_at": "2024-01-01T01:00:00.123456789+01:00"},  # Go's RFC3339Nano
     Token("t", 1_704_067_200.123456 + 60)),
    ({"token": "t", "refresh_token": "r"}, Token("t", NOW + 60, "r")),
])
def test_parse_token(body: dict[str, object], want: Token) -> None:
    got = parse_token(json.dumps(body).encode(), NOW)
    assert got.token == want.token
    assert got.refresh_token == want.refresh_token
    assert got.expires_at == pytest.approx(want.expires_at)


@pytest.mark.parametrize("body", [
    b"not json", b"[]", b"{}", b'{"token": ""}', b'{"token": 5}',
    b'{"token": "t", "expires_in": "300"}', b'{"token": "t", "expires_in": true}',
    b'{"token": "t", "issued_at": "yesterday"}',
    b'{"token": "t", "issued_at": "2024-01-01T00:00:00"}',
])
def test_bad_token_responses_raise_challenge_error(body: bytes) -> None:
    with pytest.raises(ChallengeError, match="token response"):
        parse_token(body, NOW)


def test_token_cache_honours_expiry() -> None:
    now = [NOW]
    cache = TokenCache(clock=lambda: now[0], leeway=5)
    key = token_key("https://a/t", "s", ["repository:x:push", "repository:x:pull"])
    assert key == ("https://a/t", "s", ("repository:x:pull,push",))
    assert cache.get(key) is None
    cache.put(key, Token("t", NOW + 60))
    assert cache.get(token_key("https://a/t", "s", [scopes.repository("x", "pull", "push")]))
    assert cache.get(token_key("https://a/t", "s", ["repository:x:pull"])) is None
    assert cache.get(token_key("https://a/t", "other", ["repository:x:pull,push"])) is None
    now[0] = NOW + 54
    assert cache.get(key) == Token("t", NOW + 60)
    now[0] = NOW + 55
    assert cache.get(key) is None
    cache.put(key, Token("t2", NOW + 600))
    cache.clear()
    assert cache.get(key) is None


# Registry error responses (errors.from_response): a 401 is where the challenge flow starts,
# so the mapping of every error body is tested here too.

def _body(*errors: tuple[str, str]) -> bytes:
    return json.dumps({"errors": [{"code": c, "message": m, "detail": {"x": 1}}
                                  for c, m in errors]}).encode()


@pytest.mark.parametrize(("code", "status", "cls"), [
    ("BLOB_UNKNOWN", 404, errors.NotFound),
    ("BLOB_UPLOAD_INVALID", 400, errors.Invalid),
    ("BLOB_UPLOAD_UNKNOWN", 404, errors.NotFound),
    ("DIGEST_INVALID", 400, errors.Invalid),
    ("MANIFEST_BLOB_UNKNOWN", 400, errors.Invalid),
    ("MANIFEST_INVALID", 400, errors.Invalid),
    ("MANIFEST_UNKNOWN", 404, errors.NotFound),
    ("NAME_INVALID", 400, errors.Invalid),
    ("NAME_UNKNOWN", 404, errors.NotFound),
    ("SIZE_INVALID", 400, errors.Invalid),
    ("UNAUTHORIZED", 401, errors.Unauthorized),
    ("DENIED", 403, errors.Denied),
    ("UNSUPPORTED", 405, errors.Unsupported),
    ("TOOMANYREQUESTS", 429, errors.TooManyRequests),
    ("denied", 403, errors.Denied),  # codes are matched case-insensitively
    ("MANIFEST_UNKNOWN", 200, errors.NotFound),  # the code wins over the status
])
def test_from_response_maps_each_code(code: str, status: int,
                                      cls: type[errors.RegistryError]) -> None:
    err = errors.from_response(status, _body((code, "some message")), "https://r/v2/x")
    assert type(err) is cls
    assert (err.status, err.url, err.code) == (status, "https://r/v2/x", code.upper())
    assert err.errors == (errors.ErrorDetail(code.upper(), "some message", {"x": 1}),)
    assert str(err) == f"{code.lower().replace('_', ' ')}: some message"


def test_from_response_families() -> None:
    assert isinstance(errors.from_response(404, b"", "u"), image_errors.NotFound)
    assert isinstance(errors.from_response(400, b"", "u"), image_errors.InvalidArgument)
    assert isinstance(errors.from_response(429, b"", "u"), image_errors.Unavailable)
    assert isinstance(errors.from_response(401, b"", "u"), errors.DistributionError)


@pytest.mark.parametrize(("status", "body", "cls", "text"), [
    (401, b"", errors.Unauthorized, "unexpected status from u: 401"),
    (403, b"<html>nope</html>", errors.Denied, "unexpected status from u: 403: <html>nope"),
    (404, b'{"errors": "x"}', errors.NotFound, 'unexpected status from u: 404: {"errors"'),
    (500, b"[1]", errors.RegistryError, "unexpected status from u: 500: [1]"),
    (503, b"\xff\xfe", errors.RegistryError, "unexpected status from u: 503"),
    (404, _body(("SOMETHING_NEW", "hm")), errors.NotFound, "something new: hm"),
    (502, _body(("SOMETHING_NEW", "")), errors.RegistryError, "something new"),
])
def test_from_response_without_known_codes(status: int, body: bytes,
                                           cls: type[errors.RegistryError], text: str) -> None:
    err = errors.from_response(status, body, "u")
    assert type(err) is cls
    assert str(err).startswith(text)


def test_from_response_with_several_errors_uses_the_first_known() -> None:
    err = errors.from_response(400, _body(("WHATEVER", "a"), ("DIGEST_INVALID", "b"),
                                          ("SIZE_INVALID", "c")), "u")
    assert type(err) is errors.Invalid
    assert str(err) == "errors:\nwhatever: a\ndigest invalid: b\nsize invalid: c\n"
    assert err.code == "WHATEVER"


def test_from_response_skips_malformed_entries() -> None:
    body = json.dumps({"errors": ["x", {"code": 5, "message": None}, {"code": "DENIED"}]})
    err = errors.from_response(403, body.encode(), "u")
    assert err.errors == (errors.ErrorDetail(""), errors.ErrorDetail("DENIED"))


@pytest.mark.parametrize(("ref", "code", "message", "want"), [
    ("busybox:nosuchtag", "MANIFEST_UNKNOWN", "manifest unknown",
     "manifest for busybox:nosuchtag not found: manifest unknown: manifest unknown"),
    ("x", "DENIED", "requested access to the resource is denied",
     "pull access denied for x, repository does not exist or may require 'docker login': "
     "denied: requested access to the resource is denied"),
    ("localhost:5000/nope:1", "NAME_UNKNOWN", "repository name not known to registry",
     "repository localhost:5000/nope not found: name unknown: repository name not known "
     "to registry"),
    ("busybox", "TOOMANYREQUESTS", "slow down", "toomanyrequests: slow down"),
])
def test_for_pull_uses_dockers_words(ref: str, code: str, message: str, want: str) -> None:
    err = errors.from_response(404, _body((code, message)), "u")
    pulled = errors.for_pull(err, reference.parse(ref))
    assert str(pulled) == want
    assert type(pulled) is type(err)
    assert pulled.errors == err.errors


def test_for_pull_of_a_bare_401() -> None:
    err = errors.for_pull(errors.from_response(401, b"", "u"), reference.parse("x/y"))
    assert str(err).startswith("pull access denied for x/y, repository does not exist")
