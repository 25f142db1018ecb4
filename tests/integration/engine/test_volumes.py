"""Volumes through the docker CLI and SDK against dockyardd: the local driver's life cycle."""

from __future__ import annotations

import json

import pytest

from tests.conftest import unique

pytestmark = pytest.mark.root


def test_create_inspect_list_remove(engine):
    name = unique("vol")
    assert engine.docker("volume", "create", "--label", "team=a", name).stdout.decode().strip() \
        == name
    doc = json.loads(engine.docker("volume", "inspect", name).stdout)[0]
    assert doc["Name"] == name and doc["Driver"] == "local" and doc["Scope"] == "local"
    assert doc["Labels"] == {"team": "a"}
    assert doc["Mountpoint"] == str(engine.data_root / "volumes" / name / "_data")
    listed = engine.docker("volume", "ls", "-q", "--filter", "label=team=a").stdout.split()
    assert name.encode() in listed
    assert engine.docker("volume", "ls", "-q", "--filter", "label=team=b").stdout.strip() == b""
    engine.docker("volume", "rm", name)
    gone = engine.docker("volume", "inspect", name, check=False)
    assert gone.returncode == 1 and b"no such volume" in gone.stderr


def test_bad_names_and_options_are_refused(engine):
    bad = engine.docker("volume", "create", "no/slashes", check=False)
    assert bad.returncode == 1 and b"includes invalid characters" in bad.stderr
    opt = engine.docker("volume", "create", "--opt", "foo=bar", unique("vol"), check=False)
    assert opt.returncode == 1 and b"invalid option key" in opt.stderr
    missing = engine.docker("volume", "rm", unique("nosuch"), check=False)
    assert missing.returncode == 1 and b"no such volume" in missing.stderr


def test_a_tmpfs_volume_through_driver_options_and_prune(engine):
    sdk = engine.sdk
    v = sdk.volumes.create(unique("tv"), driver_opts={"type": "tmpfs", "device": "tmpfs",
                                                      "o": "size=1m"})
    assert v.attrs["Options"] == {"type": "tmpfs", "device": "tmpfs", "o": "size=1m"}
    anon = sdk.volumes.create()  # no name: anonymous, what prune removes by default
    pruned = sdk.volumes.prune()
    assert anon.name in (pruned["VolumesDeleted"] or [])
    assert v.name not in (pruned["VolumesDeleted"] or [])
    v.remove()


def test_a_volume_bound_from_a_host_directory_through_driver_options(engine, tmp_path):
    host_dir = tmp_path / "shared"
    host_dir.mkdir()
    name = unique("bv")
    engine.docker("volume", "create", "--opt", "type=none", "--opt", f"device={host_dir}",
                  "--opt", "o=bind", name)
    try:
        engine.docker("run", "--rm", "--network", "none", "-v", f"{name}:/data", "busybox",
                      "sh", "-c", "echo through > /data/file")
        assert (host_dir / "file").read_text() == "through\n"
    finally:
        engine.docker("volume", "rm", name)
    assert not any(line.split()[4].startswith(str(engine.data_root / "volumes" / name))
                   for line in open("/proc/self/mountinfo"))  # unmounted with its last user
    assert (host_dir / "file").read_text() == "through\n"  # removing it left the device be
