from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest

from dockyard.distribution.credentials import (
    HUB_KEY,
    CredentialHelper,
    Credentials,
    DockerConfig,
    config_dir,
    hostname,
    server_key,
)
from dockyard.distribution.errors import CredentialsError

# A credential helper speaking the real protocol, keeping one file per server URL in $STORE.
HELPER = r"""#!/bin/sh
set -eu
key() { printf %s "$1" | md5sum | cut -c1-32; }
case "$1" in
get)
    url=$(cat)
    if [ -f "$STORE/$(key "$url")" ]; then cat "$STORE/$(key "$url")"; exit 0; fi
    echo "credentials not found in native keychain"; exit 1 ;;
store)
    doc=$(cat)
    url=$(printf %s "$doc" | sed -n 's/.*"ServerURL": *"\([^"]*\)".*/\1/p')
    printf %s "$doc" > "$STORE/$(key "$url")" ;;
erase)
    url=$(cat)
    if [ -f "$STORE/$(key "$url")" ]; then rm "$STORE/$(key "$url")"; exit 0; fi
    echo "credentials not found in native keychain"; exit 1 ;;
*)
    echo "unknown action $1" >&2; exit 3 ;;
esac
"""

BROKEN = """#!/bin/sh
echo "keychain locked" >&2
exit 2
"""

GARBAGE = """#!/bin/sh
echo "this is not json"
"""


def _auth(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("test", HELPER), ("broken", BROKEN), ("garbage", GARBAGE)):
        program = bin_dir / f"docker-credential-{name}"
        program.write_text(text)
        program.chmod(0o755)
    store = tmp_path / "store"
    store.mkdir()
    return {"PATH": f"{bin_dir}:/usr/bin:/bin", "STORE": str(store),
            "DOCKER_CONFIG": str(tmp_path / "dotdocker")}


def _config(env: dict[str, str], doc: object) -> DockerConfig:
    path = Path(env["DOCKER_CONFIG"]) / "config.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return DockerConfig(env=env)


@pytest.mark.parametrize(("key", "host"), [
    ("https://index.docker.io/v1/", "index.docker.io"),
    ("http://myreg:5000/v2/", "myreg:5000"),
    ("myreg:5000", "myreg:5000"),
    ("ghcr.io/some/path", "ghcr.io"),
])
def test_hostname(key: str, host: str) -> None:
    assert hostname(key) == host


@pytest.mark.parametrize(("host", "key"), [
    ("docker.io", HUB_KEY), ("index.docker.io", HUB_KEY), ("registry-1.docker.io", HUB_KEY),
    (HUB_KEY, HUB_KEY), ("quay.io", "quay.io"), ("localhost:5000", "localhost:5000"),
    ("https://quay.io/v1/", "quay.io"),
])
def test_server_key(host: str, key: str) -> None:
    assert server_key(host) == key


def test_config_dir_prefers_docker_config(tmp_path: Path) -> None:
    assert config_dir({"DOCKER_CONFIG": "/etc/dc"}) == Path("/etc/dc")
    assert config_dir({}, home=str(tmp_path)) == tmp_path / ".docker"
    assert DockerConfig(env={"DOCKER_CONFIG": "/etc/dc"}).path == Path("/etc/dc/config.json")


AUTHS = {
    "auths": {
        HUB_KEY: {"auth": _auth("hubuser", "hubpass")},
        "https://legacy.example:5000/v1/": {"auth": _auth("legacy", "pw:with:colons")},
        "fields.example": {"username": "u", "password": "p"},
        "ghcr.io": {"auth": _auth("gh", "x"), "identitytoken": "refresh-me"},
        "tokenonly.example": {"identitytoken": "rt"},
        "empty.example": {},
    },
}


@pytest.mark.parametrize(("host", "want"), [
    ("docker.io", Credentials(HUB_KEY, "hubuser", "hubpass")),
    ("index.docker.io", Credentials(HUB_KEY, "hubuser", "hubpass")),
    ("registry-1.docker.io", Credentials(HUB_KEY, "hubuser", "hubpass")),
    ("legacy.example:5000", Credentials("legacy.example:5000", "legacy", "pw:with:colons")),
    ("fields.example", Credentials("fields.example", "u", "p")),
    ("ghcr.io", Credentials("ghcr.io", "gh", "x", "refresh-me")),
    ("tokenonly.example", Credentials("tokenonly.example", identity_token="rt")),
    ("empty.example", None),
    ("legacy.example", None),
    ("unknown.example", None),
])
def test_lookup_from_auths(env: dict[str, str], host: str, want: Credentials | None) -> None:
    assert _config(env, AUTHS).lookup(host) == want


def test_repr_hides_secrets() -> None:
    text = repr(Credentials("quay.io", "alice", "s3cret", "refresh-token"))
    assert "alice" in text
    assert "s3cret" not in text
    assert "refresh-token" not in text


def test_lookup_without_a_config_file(env: dict[str, str]) -> None:
    assert DockerConfig(env=env).lookup("docker.io") is None
    assert _config(env, "  \n").lookup("docker.io") is None


@pytest.mark.parametrize(("doc", "why"), [
    ("{not json", "invalid JSON"),
    ("[]", "want a JSON object"),
    ({"auths": []}, "'auths' must be a JSON object"),
    ({"credsStore": 5}, "'credsStore' must be a JSON string"),
    ({"credHelpers": "x"}, "'credHelpers' must be a JSON object"),
    ({"auths": {"quay.io": "x"}}, "must be an object"),
    ({"auths": {"quay.io": {"auth": "!!!"}}}, "not base64"),
    ({"auths": {"quay.io": {"auth": base64.b64encode(b"nocolon").decode()}}}, "user:password"),
    ({"auths": {"quay.io": {"username": 5}}}, "want strings"),
])
def test_bad_config_names_the_file(env: dict[str, str], doc: object, why: str) -> None:
    config = _config(env, doc)
    with pytest.raises(CredentialsError, match=why) as info:
        config.lookup("quay.io")
    assert str(config.path) in str(info.value)


def test_store_and_erase_in_the_file(env: dict[str, str]) -> None:
    config = _config(env, {"auths": {"https://quay.io/v1/": {"auth": _auth("old", "old")}},
                           "psFormat": "table {{.ID}}"})
    config.store("quay.io", Credentials("ignored", "alice", "s3cret"))
    config.store("docker.io", Credentials("", identity_token="rt"))
    doc = json.loads(config.path.read_text())
    assert doc == {"auths": {"quay.io": {"auth": _auth("alice", "s3cret")},
                             HUB_KEY: {"identitytoken": "rt"}},
                   "psFormat": "table {{.ID}}"}
    assert stat.S_IMODE(config.path.stat().st_mode) == 0o600
    assert os.listdir(config.path.parent) == ["config.json"]
    assert config.lookup("quay.io") == Credentials("quay.io", "alice", "s3cret")
    config.erase("quay.io")
    assert config.lookup("quay.io") is None
    assert config.lookup("docker.io") == Credentials(HUB_KEY, identity_token="rt")
    config.erase("nothing.example")  # nothing to do, not an error


def test_store_creates_the_directory_private(tmp_path: Path) -> None:
    config = DockerConfig(tmp_path / "new" / "config.json")
    config.store("localhost:5000", Credentials("", "u", "p"))
    assert stat.S_IMODE((tmp_path / "new").stat().st_mode) == 0o700
    assert stat.S_IMODE(config.path.stat().st_mode) == 0o600
    assert config.lookup("localhost:5000") == Credentials("localhost:5000", "u", "p")


def test_creds_store_helper_round_trip(env: dict[str, str]) -> None:
    config = _config(env, {"credsStore": "test"})
    assert config.lookup("quay.io") is None  # "credentials not found in native keychain"
    config.store("quay.io", Credentials("", "alice", "s3cret"))
    config.store("docker.io", Credentials("", identity_token="refresh"))
    assert json.loads(config.path.read_text()) == {
        "credsStore": "test", "auths": {"quay.io": {}, HUB_KEY: {}}}
    assert config.lookup("quay.io") == Credentials("quay.io", "alice", "s3cret")
    assert config.lookup("index.docker.io") == Credentials(HUB_KEY, identity_token="refresh")
    config.erase("quay.io")
    assert config.lookup("quay.io") is None
    assert json.loads(config.path.read_text())["auths"] == {HUB_KEY: {}}
    config.erase("quay.io")  # the helper says "not found": not an error


def test_cred_helpers_pick_per_registry(env: dict[str, str]) -> None:
    CredentialHelper("test", env).store(Credentials("ghcr.io", "gh", "tok"))
    config = _config(env, {"credsStore": "broken", "credHelpers": {"ghcr.io": "test"},
                           "auths": {"ghcr.io": {"auth": _auth("file", "file")}}})
    assert config.lookup("ghcr.io") == Credentials("ghcr.io", "gh", "tok")
    with pytest.raises(CredentialsError):
        config.lookup("quay.io")  # falls to credsStore, which fails


def test_helper_that_fails_is_an_error(env: dict[str, str]) -> None:
    helper = CredentialHelper("broken", env)
    with pytest.raises(CredentialsError, match=r"error getting credentials - err: exit "
                                               r"status 2, out: `keychain locked`"):
        helper.get("quay.io")
    with pytest.raises(CredentialsError, match="error storing credentials"):
        helper.store(Credentials("quay.io", "u", "p"))
    with pytest.raises(CredentialsError, match="error erasing credentials"):
        helper.erase("quay.io")


def test_helper_with_garbage_output_is_an_error(env: dict[str, str]) -> None:
    with pytest.raises(CredentialsError, match="invalid answer"):
        CredentialHelper("garbage", env).get("quay.io")


def test_missing_helper_is_an_error(env: dict[str, str]) -> None:
    config = _config(env, {"credsStore": "nosuchhelper"})
    with pytest.raises(CredentialsError, match="docker-credential-nosuchhelper"):
        config.lookup("quay.io")
