"""Compiled seccomp filters kept on disk, so that libseccomp builds each profile once.

    <root>/@seccomp/                   under the runtime's --root (mode 0700): `@` is not
                                       allowed in a container id, so no container can
                                       claim it, and `list` skips it (no state.json)
      <sha256 of what made it>         one file a filter: MAGIC, the sha256 of the rest,
                                       the seccomp(2) flags (u32, little endian), the BPF

The key is the digest of everything the program depends on: the compiled rules, the
libseccomp version and API level, the kernel release and machine (seccomp.program makes
it). A file is written under a temporary name and renamed (fsutil.write_atomic): a process
killed at any moment leaves no entry or a complete one, at worst a temporary file. A file that
does not check out (short, another format, a digest that does not match) is ignored and
made again. The directory holds at most LIMIT names, temporary ones included: past that it
is emptied (entries are cheap to make again), so neither a stream of distinct profiles nor
killed writers can fill the runtime's root.
"""

from __future__ import annotations

import hashlib
import os

from dockyard.fsutil import write_atomic

NAME = "@seccomp"
MAGIC = b"dyseccomp1\n"
LIMIT = 64
_DIGEST = 32


def key(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def directory(root: str) -> str:
    return os.path.join(root, NAME)


def read(cache_dir: str, name: str) -> tuple[int, bytes] | None:
    """(flags, BPF) kept under `name`, or None."""
    try:
        with open(os.path.join(cache_dir, name), "rb") as f:
            data = f.read()
    except OSError:
        return None
    head = len(MAGIC) + _DIGEST
    if len(data) < head + 4 or not data.startswith(MAGIC):
        return None
    body = data[head:]
    if hashlib.sha256(body).digest() != data[len(MAGIC):head]:
        return None
    bpf = body[4:]
    if not bpf or len(bpf) % 8:
        return None
    return int.from_bytes(body[:4], "little"), bpf


def write(cache_dir: str, name: str, flags: int, bpf: bytes) -> None:
    """Keep (flags, BPF) under `name`; best effort: a cache that cannot be written only
    costs the next create the compile."""
    body = flags.to_bytes(4, "little") + bpf
    data = MAGIC + hashlib.sha256(body).digest() + body
    try:
        os.makedirs(cache_dir, mode=0o700, exist_ok=True)
        _make_room(cache_dir)
        # no fsync: a cache; an entry a power cut damages fails its digest and is made again
        write_atomic(os.path.join(cache_dir, name), data, mode=0o600, sync=False)
    except OSError:
        pass


def _make_room(cache_dir: str) -> None:
    names = os.listdir(cache_dir)
    if len(names) < LIMIT:
        return
    for n in names:
        try:
            os.unlink(os.path.join(cache_dir, n))
        except OSError:
            pass
