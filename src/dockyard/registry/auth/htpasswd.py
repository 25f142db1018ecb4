"""Basic auth against an htpasswd file, bcrypt entries only, as the reference registry reads
it (`htpasswd -B`): one `user:$2y$…` per line; blank lines and `#` comments are skipped.

The file is read again when it changes, so users can be added without a restart. Checking a
wrong user costs a bcrypt round too, so a timing does not tell which users exist.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import bcrypt

_DUMMY = bcrypt.hashpw(b"not a password", bcrypt.gensalt(rounds=10))


class HtpasswdError(Exception):
    pass


def parse(text: str, source: str = "htpasswd") -> dict[str, bytes]:
    users: dict[str, bytes] = {}
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, hashed = line.partition(":")
        if not sep or not user:
            raise HtpasswdError(f"{source}:{n}: want user:hash")
        if not hashed.startswith(("$2y$", "$2a$", "$2b$")):
            raise HtpasswdError(f"{source}:{n}: user {user!r}: only bcrypt entries are "
                                "supported (htpasswd -B)")
        users[user] = hashed.encode()
    return users


class Htpasswd:
    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._users: dict[str, bytes] = {}

    def _load(self) -> dict[str, bytes]:
        st = os.stat(self.path)
        stamp = (st.st_mtime_ns, st.st_size)
        with self._lock:
            if stamp != self._stamp:
                self._users = parse(self.path.read_text(), str(self.path))
                self._stamp = stamp
            return self._users

    def check(self, user: str, password: str) -> bool:
        hashed = self._load().get(user)
        ok = bcrypt.checkpw(password.encode(), hashed if hashed is not None else _DUMMY)
        return ok and hashed is not None


def entry(user: str, password: str, rounds: int = 10) -> str:
    """One htpasswd line, as `htpasswd -nbB user password` writes it."""
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=rounds)).decode()
    return f"{user}:{'$2y$' + hashed[4:]}"
