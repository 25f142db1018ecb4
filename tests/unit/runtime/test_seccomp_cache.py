"""The on-disk cache of compiled seccomp filters: what it gives back, and what it refuses."""

from __future__ import annotations

import os

from dockyard.runtime.linux import seccompcache

BPF = bytes(range(8)) * 5


def test_a_kept_program_comes_back_with_its_flags(tmp_path):
    d = str(tmp_path / seccompcache.NAME)
    key = seccompcache.key("profile")
    assert seccompcache.read(d, key) is None
    seccompcache.write(d, key, 4, BPF)
    assert seccompcache.read(d, key) == (4, BPF)
    assert oct(os.stat(d).st_mode & 0o777) == "0o700"
    assert os.listdir(d) == [key]  # no temporary file left


def test_a_damaged_entry_is_ignored(tmp_path):
    d = str(tmp_path / seccompcache.NAME)
    key = seccompcache.key("profile")
    seccompcache.write(d, key, 4, BPF)
    path = os.path.join(d, key)
    data = bytearray(open(path, "rb").read())
    data[-1] ^= 1
    open(path, "wb").write(bytes(data))
    assert seccompcache.read(d, key) is None
    open(path, "wb").write(data[:20])
    assert seccompcache.read(d, key) is None
    open(path, "wb").write(b"")
    assert seccompcache.read(d, key) is None


def test_the_directory_is_emptied_when_full(tmp_path):
    d = str(tmp_path / seccompcache.NAME)
    for n in range(seccompcache.LIMIT):
        seccompcache.write(d, seccompcache.key(str(n)), 0, BPF)
    assert len(os.listdir(d)) == seccompcache.LIMIT
    seccompcache.write(d, seccompcache.key("one more"), 0, BPF)
    assert os.listdir(d) == [seccompcache.key("one more")]


def test_its_name_is_no_container_id():
    from dockyard.runtime import state
    from dockyard.runtime.errors import ConfigError

    try:
        state.check_id(seccompcache.NAME)
    except ConfigError:
        return
    raise AssertionError("a container could take the cache's name")


def test_an_unwritable_cache_is_no_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    seccompcache.write(str(blocker / seccompcache.NAME), "k", 0, BPF)  # ENOTDIR: skipped
