"""Root fixtures for the netlink tests: a registry of unique names that removes everything.

Each test gets a `NetRegistry`: it hands out link names ("dyt" + 8 hex digits, within
IFNAMSIZ) and namespace paths under a unique directory in /run, remembers them, and after the
test (passed or failed) unmounts and unlinks every namespace and deletes every link with
iproute2's own tools, independent of the code under test. The teardown then checks that
nothing of it is left: no link with a handed-out name, no mount under its directory.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest


def link_names() -> set[str]:
    out = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True,
                         check=True).stdout
    return {line.split(":")[1].strip().split("@")[0] for line in out.splitlines()}


def mounts_under(root: Path) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line for line in f if str(root) in line.split()[4]]


@dataclass
class NetRegistry:
    root: Path
    links: list[str] = field(default_factory=list)
    namespaces: list[Path] = field(default_factory=list)

    def link(self, prefix: str = "dyt") -> str:
        name = prefix + secrets.token_hex(4)
        self.links.append(name)
        return name

    def netns(self) -> Path:
        path = self.root / f"ns-{secrets.token_hex(4)}"
        self.namespaces.append(path)
        return path

    def leftovers(self) -> list[str]:
        left = [f"link {n}" for n in sorted(set(self.links) & link_names())]
        left += [f"mount {line.split()[4]}" for line in mounts_under(self.root)]
        return left

    def cleanup(self) -> None:
        for path in self.namespaces:
            subprocess.run(["umount", "-l", str(path)], capture_output=True)
            if os.path.lexists(path):
                os.unlink(path)
        for name in self.links:
            subprocess.run(["ip", "link", "del", name], capture_output=True)
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def net() -> Iterator[NetRegistry]:
    registry = NetRegistry(Path("/run") / f"dyt-netlink-{secrets.token_hex(4)}")
    try:
        yield registry
    finally:
        registry.cleanup()
    assert registry.leftovers() == []


@pytest.fixture(scope="session")
def busybox() -> str:
    path = shutil.which("busybox")
    if path is None:
        pytest.skip("busybox is needed to ping inside a namespace")
    return path
