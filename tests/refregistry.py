"""Debian's reference registry (`docker-registry`, distribution 2.8) on a loopback port, for
interop tests and benchmarks: its own storage directory and config, optional htpasswd basic
auth or token auth (`TokenAuth`), killed and removed afterwards.

    with ref_registry(tmp) as reg:      # reg.url "http://127.0.0.1:<port>", reg.host, reg.root
        ...
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.waiting import wait_http

BINARY = "/usr/bin/docker-registry"


def unavailable() -> str | None:
    if not os.path.exists(BINARY):
        return "Debian's docker-registry is not installed (scripts/install.sh installs it)"
    return None


def skip_unless_available() -> None:
    reason = unavailable()
    if reason is not None:
        import pytest

        pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RefRegistry:
    host: str
    root: Path
    log: Path

    @property
    def url(self) -> str:
        return f"http://{self.host}"


@dataclass(frozen=True)
class TokenAuth:
    """distribution's `auth.token`: where clients get tokens, and whose tokens to trust
    (the issuer, the service as audience, and a PEM bundle of the signing certificates)."""

    realm: str
    service: str
    issuer: str
    rootcertbundle: Path


@contextlib.contextmanager
def ref_registry(tmp: Path, *, htpasswd: Path | None = None, token: TokenAuth | None = None,
                 timeout: float = 20) -> Iterator[RefRegistry]:
    base = Path(tmp) / f"refregistry-{uuid.uuid4().hex[:10]}"
    (base / "data").mkdir(parents=True)
    port = free_port()
    auth = ""
    if htpasswd is not None:
        auth = f"auth:\n  htpasswd:\n    realm: dockyard-test\n    path: {htpasswd}\n"
    elif token is not None:
        auth = (f"auth:\n  token:\n    realm: {token.realm}\n    service: {token.service}\n"
                f"    issuer: {token.issuer}\n    rootcertbundle: {token.rootcertbundle}\n")
    config = base / "config.yml"
    config.write_text(
        "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n"
        f"    rootdirectory: {base / 'data'}\n  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n{auth}")
    log = base / "registry.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([BINARY, "serve", str(config)], stdout=out, stderr=out,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    reg = RefRegistry(f"127.0.0.1:{port}", base / "data", log)
    try:
        wait_http(f"{reg.url}/v2/", proc, timeout=timeout, what="docker-registry",
                  logs=lambda: log.read_text(errors="replace"))
        yield reg
    finally:
        proc.kill()
        proc.wait(10)
        shutil.rmtree(base, ignore_errors=True)
