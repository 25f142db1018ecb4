"""Configuration: defaults < TOML file (containerd's keys) < flags."""

from __future__ import annotations

from pathlib import Path

import pytest

from dockyard.containerd.config import (
    DEFAULT_ADDRESS,
    DEFAULT_ROOT,
    DEFAULT_STATE,
    ConfigError,
    load,
)


def test_defaults() -> None:
    config = load()
    assert (config.address, config.root, config.state, config.log_level) == (
        DEFAULT_ADDRESS, Path(DEFAULT_ROOT), Path(DEFAULT_STATE), "info")


def test_file_then_flags(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('version = 2\nroot = "/r"\nstate = "/s"\n'
                    '[grpc]\naddress = "/x.sock"\ngid = 998\n'
                    '[debug]\nlevel = "debug"\n[dockyard]\nsnapshotter = "native"\n'
                    '[plugins."io.containerd.grpc.v1.cri".containerd]\nsnapshotter = "x"\n')
    config = load(path)
    assert (config.address, config.root, config.state, config.log_level, config.gid,
            config.uid, config.snapshotter) == ("/x.sock", Path("/r"), Path("/s"), "debug",
                                                998, -1, "native")
    config = load(path, address="/y.sock", root=str(tmp_path), log_level=None)
    assert (config.address, config.root, config.log_level) == ("/y.sock", tmp_path, "debug")


@pytest.mark.parametrize(("text", "message"), [
    ("root = 1", "root must be a str"),
    ("grpc = 1", "[grpc] must be a table"),
    ('[debug]\nlevel = "loud"', "log level 'loud'"),
    ('[dockyard]\nsnapshotter = "zfs"', "snapshotter 'zfs'"),
    ('root = "/a"\nstate = "/a"', "root and state must differ"),
    ("[grpc]\nuid = true", "grpc.uid must be a int"),
    ("not toml =", "config file"),
])
def test_bad_files(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load(path)


def test_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="No such file"):
        load(tmp_path / "none.toml")
