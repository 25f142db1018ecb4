"""Binds, Mounts and image Volumes parsed as Docker parses them."""

from __future__ import annotations

import pytest

from dockyard.engine.errors import InvalidParameter
from dockyard.engine.volumes.mountpoints import parse_bind, parse_mount, plan


def test_a_host_path_is_a_bind_made_if_missing_and_mode_is_kept():
    mp = parse_bind("/srv/data:/data:ro,rshared")
    assert (mp.type, mp.source, mp.destination, mp.rw, mp.propagation, mp.mode) == \
        ("bind", "/srv/data", "/data", False, "rshared", "ro,rshared")
    assert mp.create_source
    assert mp.oci() == {"destination": "/data", "type": "bind", "source": "/srv/data",
                        "options": ["rbind", "rshared", "ro"]}


def test_a_name_is_a_named_volume_and_a_lone_path_an_anonymous_one():
    named = parse_bind("cache:/var/cache:nocopy")
    assert (named.type, named.source, named.copy) == ("volume", "cache", False)
    anon = parse_bind("/scratch")
    assert (anon.type, anon.source, anon.destination) == ("volume", "", "/scratch")


@pytest.mark.parametrize(("spec", "message"), [
    ("/a:relative", "invalid volume specification: '/a:relative'"),
    ("/a:/", "destination can't be '/'"),
    ("/a:/b:bogus", "invalid mode: bogus"),
    ("bad name!:/b", "includes invalid characters for a local volume name"),
    ("a:b:c:d", "invalid volume specification: 'a:b:c:d'"),
])
def test_bad_binds_are_refused_in_dockers_words(spec, message):
    with pytest.raises(InvalidParameter) as e:
        parse_bind(spec)
    assert message in e.value.message


def test_mounts_objects():
    b = parse_mount({"Type": "bind", "Source": "/etc", "Target": "/host-etc", "ReadOnly": True,
                     "BindOptions": {"Propagation": "rslave"}})
    assert (b.type, b.path, b.rw, b.propagation) == ("bind", "/etc", False, "rslave")
    t = parse_mount({"Type": "tmpfs", "Target": "/t",
                     "TmpfsOptions": {"SizeBytes": 1 << 20, "Mode": 0o1777}})
    assert t.oci()["options"] == ["noexec", "nosuid", "nodev", "size=1048576", "mode=1777"]
    with pytest.raises(InvalidParameter, match="field Source must not be specified"):
        parse_mount({"Type": "tmpfs", "Source": "x", "Target": "/t"})
    with pytest.raises(InvalidParameter, match="field Target must not be empty"):
        parse_mount({"Type": "bind", "Source": "/etc"})
    with pytest.raises(InvalidParameter, match='mount type unknown: "nfs"'):
        parse_mount({"Type": "nfs", "Target": "/n"})


def test_plan_orders_user_mounts_then_image_volumes_not_covered():
    points = plan({"Binds": ["/srv:/data"], "Mounts": [{"Type": "volume", "Target": "/v"}],
                   "Tmpfs": {"/run": ""}}, {"/data": {}, "/logs": {}, "/run": {}})
    assert [(p.type, p.destination) for p in points] == \
        [("bind", "/data"), ("volume", "/v"), ("volume", "/logs")]
    with pytest.raises(InvalidParameter, match="Duplicate mount point: /data"):
        plan({"Binds": ["/a:/data", "b:/data"]}, None)


def test_inspect_entries_look_like_dockers():
    mp = parse_bind("vol1:/data")
    mp.path = "/var/lib/dockyard/volumes/vol1/_data"
    assert mp.inspect() == {"Type": "volume", "Name": "vol1",
                            "Source": "/var/lib/dockyard/volumes/vol1/_data",
                            "Destination": "/data", "Driver": "local", "Mode": "", "RW": True,
                            "Propagation": ""}
