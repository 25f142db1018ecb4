"""Our client's authentication against Debian's docker-registry (distribution 2.8):
Basic auth from an htpasswd file with credentials from a config.json, and Docker's token
authentication with the registry trusting OUR token server's certificate."""

from __future__ import annotations

import asyncio
import base64
import datetime
import json
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from dockyard.distribution.auth import RegistryAuth
from dockyard.distribution.credentials import Credentials, DockerConfig
from dockyard.distribution.errors import Denied, Unauthorized
from dockyard.distribution.transfer import pull, push
from dockyard.image.imports import bootstrap
from dockyard.image.library import ImageLibrary
from dockyard.registry.auth.htpasswd import Htpasswd, entry
from dockyard.registry.auth.token import Access, TokenIssuer
from dockyard.registry.auth.tokenserver import token_app
from tests.conformance.snapshot_trees import scratch_dir
from tests.refregistry import TokenAuth, free_port, ref_registry, skip_unless_available

pytestmark = [pytest.mark.root, pytest.mark.interop]

BUSYBOX = "docker.io/library/busybox:latest"
SERVICE, ISSUER = "dockyard-registry", "dockyard-token"


@pytest.fixture
def work() -> Iterator[Path]:
    skip_unless_available()
    with scratch_dir("dyt-dist-auth-") as path:
        yield path


def write_htpasswd(path: Path, users: dict[str, str]) -> Path:
    path.write_text("".join(entry(u, p, rounds=4) + "\n" for u, p in users.items()))
    return path


def run(fn: Callable[[aiohttp.ClientSession], Awaitable[Any]],
        app: Callable[[], web.Application] | None = None, port: int = 0) -> Any:
    """Run `fn(session)`, with the app `app()` makes served on 127.0.0.1:`port` meanwhile."""
    async def main() -> Any:
        runner = None
        if app is not None:
            runner = web.AppRunner(app())
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", port).start()
        try:
            async with aiohttp.ClientSession() as session:
                return await fn(session)
        finally:
            if runner is not None:
                await runner.cleanup()
    return asyncio.run(main())


def test_htpasswd_push_pull_with_docker_config(work: Path) -> None:
    htpasswd = write_htpasswd(work / "htpasswd", {"alice": "s3cret"})
    with ref_registry(work, htpasswd=htpasswd) as reg:
        config = work / "docker" / "config.json"
        config.parent.mkdir()
        auth = base64.b64encode(b"alice:s3cret").decode()
        config.write_text(json.dumps({"auths": {reg.host: {"auth": auth}}}))
        dest = f"{reg.host}/team/busybox:v1"
        with ImageLibrary(work / "a") as a, ImageLibrary(work / "b") as b:
            target = bootstrap(a, unpack=False)
            creds = DockerConfig(path=config).lookup
            pushed = run(lambda s: push(a, BUSYBOX, dest, session=s,
                                        auth=RegistryAuth(creds)))
            assert pushed.digest == target.digest
            pulled = run(lambda s: pull(b, dest, session=s, auth=RegistryAuth(creds)))
            assert pulled.target.digest == target.digest

            config.write_text(json.dumps({"auths": {reg.host: {
                "auth": base64.b64encode(b"alice:wrong").decode()}}}))
            with pytest.raises(Unauthorized):
                run(lambda s: pull(b, dest, session=s,
                                   auth=RegistryAuth(DockerConfig(path=config).lookup)))
            with pytest.raises(Unauthorized):  # no credentials at all
                run(lambda s: pull(b, dest, session=s, auth=RegistryAuth(lambda host: None)))


def self_signed(key: ec.EllipticCurvePrivateKey) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ISSUER)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM)


def writers_and_readers(user: str | None, access: Access) -> list[str]:
    if user == "alice":
        return list(access.actions)
    return [a for a in access.actions if a == "pull"]


def test_token_auth_through_our_token_server(work: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    bundle = work / "root.pem"
    bundle.write_bytes(self_signed(key))
    port = free_port()
    realm = f"http://127.0.0.1:{port}/token"
    users = Htpasswd(write_htpasswd(work / "htpasswd", {"alice": "s3cret", "bob": "b0b"}))
    issuer = TokenIssuer(key, ISSUER, SERVICE)

    def app() -> web.Application:
        return token_app(issuer, users, writers_and_readers)

    def as_user(user: str, password: str) -> RegistryAuth:
        return RegistryAuth(lambda host: Credentials(host, user, password))

    with ref_registry(work, token=TokenAuth(realm, SERVICE, ISSUER, bundle)) as reg:
        dest = f"{reg.host}/team/busybox:v1"
        with ImageLibrary(work / "a") as a, ImageLibrary(work / "b") as b:
            target = bootstrap(a, unpack=False)
            pushed = run(lambda s: push(a, BUSYBOX, dest, session=s,
                                        auth=as_user("alice", "s3cret")), app, port)
            assert pushed.digest == target.digest
            pulled = run(lambda s: pull(b, dest, session=s, auth=as_user("bob", "b0b")),
                         app, port)
            assert pulled.target.digest == target.digest
            anonymous = RegistryAuth(lambda host: None)
            assert run(lambda s: pull(b, dest, session=s, auth=anonymous),
                       app, port).target.digest == target.digest

            with pytest.raises((Unauthorized, Denied)) as refused:  # bob may only pull
                run(lambda s: push(a, BUSYBOX, f"{reg.host}/team/busybox:bob", session=s,
                                   auth=as_user("bob", "b0b")), app, port)
            assert refused.value.status == 401, refused.value
            with pytest.raises(Unauthorized, match="incorrect username or password"):
                run(lambda s: pull(b, dest, session=s, auth=as_user("alice", "nope")),
                    app, port)
