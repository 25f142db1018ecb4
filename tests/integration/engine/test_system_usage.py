"""GET /system/df and POST /build/prune against dockyardd: the documents dockerd gives (its
20.10 answers were the reference), `docker system df [-v]` tables, and `docker system prune`
end to end (containers, networks, images and build cache prune)."""

from __future__ import annotations

import json
import re

import pytest

from tests.conftest import unique

pytestmark = pytest.mark.root


def call(engine, method: str, path: str, **params):
    api = engine.sdk.api
    return getattr(api, f"_{method}")(api._url(path), params=params)


@pytest.fixture
def workload(engine):
    """A stopped container that wrote 4 bytes, a created one and a volume holding 3 bytes."""
    vol, wrote, created = unique("dfv"), unique("dfw"), unique("dfc")
    engine.docker("volume", "create", vol)
    engine.docker("run", "--name", wrote, "-v", f"{vol}:/data", "busybox", "sh", "-c",
                  "echo hi > /data/x; echo abc > /y")
    engine.docker("create", "--name", created, "busybox", "true")
    yield {"volume": vol, "wrote": wrote, "created": created}
    engine.docker("rm", "-f", wrote, created, check=False)
    engine.docker("volume", "rm", "-f", vol, check=False)


def test_disk_usage_document(engine, workload):
    r = call(engine, "get", "/system/df")
    assert r.status_code == 200
    doc = r.json()
    assert set(doc) == {"LayersSize", "Images", "Containers", "Volumes", "BuildCache"}
    assert doc["BuildCache"] == []
    (image,) = [i for i in doc["Images"] if "busybox:latest" in i["RepoTags"]]
    assert image["Containers"] >= 2 and image["SharedSize"] == 0
    assert doc["LayersSize"] >= image["Size"] > 0
    by_name = {c["Names"][0][1:]: c for c in doc["Containers"]}
    wrote, created = by_name[workload["wrote"]], by_name[workload["created"]]
    assert wrote["SizeRw"] > 0 and wrote["SizeRootFs"] == image["Size"] + wrote["SizeRw"]
    assert "SizeRw" not in created and created["SizeRootFs"] == image["Size"]
    (vol,) = [v for v in doc["Volumes"] if v["Name"] == workload["volume"]]
    assert vol["UsageData"]["RefCount"] == 1 and vol["UsageData"]["Size"] > 0


def test_the_type_query_picks_what_is_computed(engine, workload):
    doc = call(engine, "get", "/system/df", type="volume").json()
    assert doc["Images"] is None and doc["Containers"] is None and doc["BuildCache"] is None
    assert workload["volume"] in {v["Name"] for v in doc["Volumes"]}
    api = engine.sdk.api
    both = api._get(api._url("/system/df"), params=[("type", "container"),
                                                    ("type", "build-cache")]).json()
    assert both["Volumes"] is None and both["BuildCache"] == [] and both["Containers"]
    bad = call(engine, "get", "/system/df", type="foo")
    assert bad.status_code == 400 and bad.json() == {"message": "unknown object type: foo"}
    # before API 1.42 there is no `type`: everything, whatever it says
    old = api._get(f"{api.base_url}/v1.41/system/df", params={"type": "foo"})
    assert old.status_code == 200 and old.json()["Images"]


def test_docker_system_df_tables(engine, workload):
    out = engine.docker("system", "df").stdout.decode()
    rows = {line.split("  ")[0]: line for line in out.splitlines()}
    assert set(rows) >= {"TYPE", "Images", "Containers", "Local Volumes", "Build Cache"}
    assert re.match(r"Build Cache\s+0\s+0\s+0B\s+0B", rows["Build Cache"])
    verbose = engine.docker("system", "df", "-v").stdout.decode()
    for heading in ("Images space usage:", "Containers space usage:",
                    "Local Volumes space usage:", "Build cache usage: 0B"):
        assert heading in verbose
    for name in workload.values():
        assert name in verbose
    assert engine.sdk.df()["BuildCache"] == []


def test_build_prune_answers_dockers_empty_report(engine):
    r = call(engine, "post", "/build/prune", all="1")
    assert r.status_code == 200
    assert r.json() == {"CachesDeleted": None, "SpaceReclaimed": 0}
    bad = call(engine, "post", "/build/prune", filters=json.dumps({"nope": ["x"]}))
    assert bad.status_code == 400
    assert engine.docker("builder", "prune", "-f").returncode == 0


def test_docker_system_prune_end_to_end(engine):
    gone, kept = unique("pr"), unique("pk")
    engine.docker("create", "--name", gone, "busybox", "true")
    engine.docker("run", "-d", "--name", kept, "busybox", "sleep", "30")
    try:
        out = engine.docker("system", "prune", "-f").stdout.decode()
        assert "Deleted Containers:" in out and "Total reclaimed space:" in out
        names = engine.docker("ps", "-a", "--format", "{{.Names}}").stdout.decode().split()
        assert gone not in names and kept in names
        assert engine.docker("image", "inspect", "busybox").returncode == 0
        assert len(engine.sdk.networks.list()) == 3
    finally:
        engine.docker("rm", "-f", gone, kept, check=False)


def test_a_volumes_size_is_its_files_apparent_size(engine, workload):
    doc = call(engine, "get", "/system/df", type="volume").json()
    (vol,) = [v for v in doc["Volumes"] if v["Name"] == workload["volume"]]
    assert vol["UsageData"]["Size"] == 3  # "hi\n"
