"""A busybox root filesystem and OCI bundle from Debian's busybox-static.

Every test that needs a container, and the README's first command, starts here: no image,
no registry, no network. The rootfs holds the static binary, one symlink per applet, and the
few files a shell expects (/etc/passwd, /etc/group, /tmp).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from dockyard.runtime.specgen import default_spec

BUSYBOX_CANDIDATES = ("/bin/busybox", "/usr/bin/busybox")

PASSWD = """root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
user:x:1000:1000:user:/home/user:/bin/sh
"""
GROUP = """root:x:0:
daemon:x:1:
tty:x:5:
wheel:x:10:user
users:x:100:
user:x:1000:
nogroup:x:65534:
"""


class BusyboxNotFound(RuntimeError):
    pass


def find_busybox() -> Path:
    """The host's busybox, which must be static: it runs in a rootfs with no libc."""
    for cand in BUSYBOX_CANDIDATES:
        p = Path(cand)
        if p.is_file():
            with p.open("rb") as f:
                head = f.read(4096)
            if b"ld-linux" not in head and b"/lib64/ld" not in head:
                return p
    raise BusyboxNotFound("busybox-static is not installed (apt-get install busybox-static)")


def applets(busybox: Path) -> list[str]:
    out = subprocess.run([str(busybox), "--list-full"], capture_output=True, text=True,
                         check=True).stdout
    return [line.strip() for line in out.splitlines() if line.strip()]


def make_rootfs(rootfs: Path, busybox: Path | None = None) -> Path:
    busybox = busybox or find_busybox()
    rootfs.mkdir(parents=True, exist_ok=True)
    for d in ("bin", "sbin", "usr/bin", "usr/sbin", "etc", "tmp", "root", "home/user", "proc",
              "sys", "dev", "var/run"):
        (rootfs / d).mkdir(parents=True, exist_ok=True)
    os.chmod(rootfs / "tmp", 0o1777)
    shutil.copy2(busybox, rootfs / "bin" / "busybox")
    for applet in applets(busybox):
        link = rootfs / applet
        if applet == "bin/busybox" or link.exists() or link.is_symlink():
            continue
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(rootfs / "bin" / "busybox", link.parent))
    (rootfs / "etc" / "passwd").write_text(PASSWD)
    (rootfs / "etc" / "group").write_text(GROUP)
    (rootfs / "etc" / "hostname").write_text("dockyard\n")
    return rootfs


def make_bundle(bundle: Path, args: list[str] | None = None, *, terminal: bool = False,
                rootfs: Path | None = None, **overrides: Any) -> Path:
    """A bundle at `bundle` with runc's default config running `args`.

    `rootfs` may name an existing busybox rootfs to copy instead of building one anew;
    `overrides` are merged into the top level of the config (e.g. linux=..., mounts=...).
    """
    bundle.mkdir(parents=True, exist_ok=True)
    target = bundle / "rootfs"
    if rootfs is not None:
        shutil.copytree(rootfs, target, symlinks=True)
    else:
        make_rootfs(target)
    spec = default_spec(args or ["sh"], terminal=terminal)
    spec.update(overrides)
    write_config(bundle, spec)
    return bundle


def write_config(bundle: Path, spec: dict[str, Any]) -> None:
    (bundle / "config.json").write_text(json.dumps(spec, indent=2))


def read_config(bundle: Path) -> dict[str, Any]:
    return json.loads((bundle / "config.json").read_text())
