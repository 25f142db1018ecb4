"""/networks against dockyardd: Docker's predefined networks (bridge, host, none) in dockerd's
shape, with IDs that survive a restart; user-defined bridge networks created, listed,
filtered, removed and pruned; what dockerd refuses refused in its words. Checked against
Debian's dockerd 20.10 (API 1.41) where it has an answer. What the networks do (addresses,
names, ports, isolation) is in test_bridge_networks.py."""

from __future__ import annotations

import json
import re

import pytest

from tests.conftest import unique

pytestmark = pytest.mark.root

KEYS = {"Name", "Id", "Created", "Scope", "Driver", "EnableIPv4", "EnableIPv6", "IPAM",
        "Internal", "Attachable", "Ingress", "ConfigFrom", "ConfigOnly", "Containers",
        "Options", "Labels"}


def call(engine, method: str, path: str, body=None, **params):
    api = engine.sdk.api
    url = api._url(path)
    if body is None:
        return getattr(api, f"_{method}")(url, params=params)
    return getattr(api, f"_{method}")(url, params=params, data=json.dumps(body),
                                      headers={"Content-Type": "application/json"})


def listed(engine, **filters) -> list[dict]:
    r = call(engine, "get", "/networks", filters=json.dumps(filters)) if filters \
        else call(engine, "get", "/networks")
    assert r.status_code == 200, r.text
    return r.json()


def test_the_predefined_networks_in_dockers_shape(engine):
    nets = {n["Name"]: n for n in listed(engine)}
    assert set(nets) == {"bridge", "host", "none"}
    assert {k: nets[k]["Driver"] for k in nets} == {"bridge": "bridge", "host": "host",
                                                    "none": "null"}
    for n in nets.values():
        assert set(n) == KEYS
        assert re.fullmatch(r"[0-9a-f]{64}", n["Id"])
        assert n["Scope"] == "local" and n["IPAM"]["Driver"] == "default"
        assert n["ConfigFrom"] == {"Network": ""} and n["Labels"] == {}
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z", n["Created"])
    assert nets["bridge"]["Options"]["com.docker.network.bridge.default_bridge"] == "true"
    assert nets["none"]["Options"] == {} and nets["host"]["Options"] == {}


def test_docker_network_ls_and_inspect(engine):
    out = engine.docker("network", "ls", "--format", "{{.Name}} {{.Driver}} {{.Scope}}")
    assert sorted(out.stdout.decode().splitlines()) == ["bridge bridge local",
                                                        "host host local", "none null local"]
    doc = json.loads(engine.docker("network", "inspect", "none").stdout)[0]
    by_id = json.loads(engine.docker("network", "inspect", doc["Id"][:12]).stdout)[0]
    assert by_id == doc
    assert engine.sdk.networks.get("host").attrs["Driver"] == "host"


def test_inspect_by_name_id_and_prefix_and_404(engine):
    host = call(engine, "get", "/networks/host").json()
    assert call(engine, "get", f"/networks/{host['Id']}").json()["Name"] == "host"
    assert call(engine, "get", f"/networks/{host['Id'][:5]}").json()["Name"] == "host"
    assert call(engine, "get", "/networks/host", scope="swarm").status_code == 404
    missing = call(engine, "get", "/networks/nope")
    assert missing.status_code == 404
    assert missing.json() == {"message": "network nope not found"}


@pytest.mark.parametrize(("filters", "names"), [
    ({"driver": ["null"]}, {"none"}),
    ({"name": ["o"]}, {"none", "host"}),
    ({"name": ["^h"]}, {"host"}),
    ({"type": ["builtin"]}, {"bridge", "host", "none"}),
    ({"type": ["custom"]}, set()),
    ({"dangling": ["true"]}, set()),
    ({"dangling": ["false"]}, {"bridge", "host", "none"}),
    ({"scope": ["swarm"]}, set()),
    ({"scope": ["local"]}, {"bridge", "host", "none"}),
    ({"label": ["a"]}, set()),
])
def test_list_filters(engine, filters, names):
    assert {n["Name"] for n in listed(engine, **filters)} == names


def test_list_filter_by_id(engine):
    none = call(engine, "get", "/networks/none").json()
    assert [n["Name"] for n in listed(engine, id=[none["Id"][:10]])] == ["none"]


@pytest.mark.parametrize(("filters", "message"), [
    ({"foo": ["x"]}, "invalid filter 'foo'"),
    ({"type": ["zz"]}, "invalid filter: 'type'='zz'"),
    ({"dangling": ["zz"]}, "invalid value for filter 'dangling', must be \"true\" (or \"1\"), "
                           "or \"false\" (or \"0\")"),
])
def test_bad_filters_are_refused(engine, filters, message):
    r = call(engine, "get", "/networks", filters=json.dumps(filters))
    assert r.status_code == 400 and r.json() == {"message": message}


@pytest.mark.parametrize(("body", "status", "message"), [
    ({"Name": "x", "Driver": "foo"}, 404, 'plugin "foo" not found'),
    ({"Name": "x", "Driver": "host"}, 403, 'only one instance of "host" network is allowed'),
    ({"Name": "x", "Driver": "null"}, 403, 'only one instance of "null" network is allowed'),
    ({"Name": "bridge"}, 403, "operation is not permitted on predefined bridge network "),
    ({}, 400, "invalid name: "),
])
def test_create_answers_as_dockerd(engine, body, status, message):
    r = call(engine, "post", "/networks/create", body)
    assert (r.status_code, r.json()) == (status, {"message": message})


def test_a_user_defined_network_is_created_listed_and_removed(engine):
    name = unique("net")
    ipam = {"Config": [{"Subnet": "10.251.7.0/24"}]}
    r = call(engine, "post", "/networks/create", {"Name": name, "Labels": {"k": "v"},
                                                  "IPAM": ipam})
    assert r.status_code == 201, r.text
    assert set(r.json()) == {"Id", "Warning"} and r.json()["Warning"] == ""
    net_id = r.json()["Id"]
    try:
        doc = call(engine, "get", f"/networks/{name}").json()
        assert set(doc) == KEYS and doc["Id"] == net_id and doc["Driver"] == "bridge"
        assert doc["IPAM"]["Config"] == [{"Subnet": "10.251.7.0/24", "Gateway": "10.251.7.1"}]
        assert doc["Labels"] == {"k": "v"} and doc["Containers"] == {}
        assert name in {n["Name"] for n in listed(engine, type=["custom"])}
        again = call(engine, "post", "/networks/create", {"Name": name})
        assert (again.status_code, again.json()) == (
            409, {"message": f"network with name {name} already exists"})
        overlap = call(engine, "post", "/networks/create", {
            "Name": unique("net"), "IPAM": {"Config": [{"Subnet": "10.251.7.128/25"}]}})
        assert overlap.status_code == 403 and "overlaps" in overlap.json()["message"]
    finally:
        assert call(engine, "delete", f"/networks/{net_id}").status_code == 204
    assert name not in {n["Name"] for n in listed(engine)}
    assert call(engine, "delete", f"/networks/{net_id}").status_code == 404


def test_predefined_networks_cannot_be_removed(engine):
    for name in ("bridge", "host", "none"):
        r = call(engine, "delete", f"/networks/{name}")
        assert r.status_code == 403
        assert r.json() == {"message": f"{name} is a pre-defined network and cannot be removed"}
    assert call(engine, "delete", "/networks/nope").status_code == 404
    cli = engine.docker("network", "rm", "bridge", check=False)
    assert cli.returncode == 1
    assert b"bridge is a pre-defined network and cannot be removed" in cli.stderr


def test_connect_and_disconnect(engine):
    missing = call(engine, "post", "/networks/none/connect", {"Container": "abc"})
    assert missing.status_code == 404 and missing.json() == {"message": "No such container: abc"}
    name = unique("cn")
    engine.docker("create", "--name", name, "--network", "none", "busybox", "true")
    hosted = unique("ch")
    engine.docker("create", "--name", hosted, "--network", "host", "busybox", "true")
    try:
        r = call(engine, "post", "/networks/host/connect", {"Container": name})
        assert r.status_code == 400 and r.json()["message"] == (
            "container cannot be disconnected from host network or connected to host network")
        r = call(engine, "post", "/networks/none/connect", {"Container": hosted})
        assert r.status_code == 400 and "cannot be connected to any other network" in \
            r.json()["message"]
        assert call(engine, "post", "/networks/nope/connect",
                    {"Container": name}).status_code == 404
        r = call(engine, "post", "/networks/bridge/connect", {"Container": name})
        assert r.status_code == 400 and r.json()["message"] == (
            "container cannot be connected to multiple networks with one of the networks "
            "in private (none) mode")
        r = call(engine, "post", "/networks/bridge/disconnect", {"Container": name})
        assert r.status_code == 403 and "is not connected to network bridge" in \
            r.json()["message"]
        assert call(engine, "post", "/networks/bridge/connect").status_code == 400
    finally:
        engine.docker("rm", "-f", name, hosted)


def test_prune_deletes_unused_user_networks_only(engine):
    unused, used = unique("pn"), unique("pu")
    engine.docker("network", "create", "--label", "p=1", unused)
    engine.docker("network", "create", used)
    holder = unique("ph")
    engine.docker("create", "--name", holder, "--network", used, "busybox", "true")
    try:
        bad = call(engine, "post", "/networks/prune", filters=json.dumps({"foo": ["x"]}))
        assert bad.status_code == 400
        r = call(engine, "post", "/networks/prune", filters=json.dumps({"label": ["p=2"]}))
        assert r.status_code == 200 and r.json() == {"NetworksDeleted": None}
        assert engine.sdk.networks.prune(filters={"label": "p=1"}) == \
            {"NetworksDeleted": [unused]}
        names = {n["Name"] for n in listed(engine)}
        assert used in names and unused not in names
        assert {"bridge", "host", "none"} <= names
    finally:
        engine.docker("rm", "-f", holder)
        engine.docker("network", "rm", used, check=False)


def test_a_running_container_is_listed_on_its_network(engine):
    name = unique("run")
    cid = engine.docker("run", "-d", "--name", name, "--network", "none", "busybox",
                        "sleep", "30").stdout.decode().strip()
    try:
        none = call(engine, "get", "/networks/none").json()
        assert none["Containers"][cid]["Name"] == name
        assert cid not in call(engine, "get", "/networks/host").json()["Containers"]
    finally:
        engine.docker("rm", "-f", name)
    assert cid not in call(engine, "get", "/networks/none").json()["Containers"]


def test_ids_survive_a_restart(fresh_engine):
    before = {n["Name"]: (n["Id"], n["Created"]) for n in listed(fresh_engine)}
    assert (fresh_engine.data_root / "network" / "predefined.json").is_file()
    fresh_engine.stop()
    fresh_engine._sdk = None
    fresh_engine.start()
    assert {n["Name"]: (n["Id"], n["Created"]) for n in listed(fresh_engine)} == before


@pytest.mark.parametrize("mode", ["none", "host", "bridge"])
def test_a_container_lists_the_network_its_mode_names(engine, mode):
    name = unique("nm")
    cid = engine.docker("create", "--name", name, "--network", mode, "busybox",
                        "true").stdout.decode().strip()
    try:
        doc = engine.sdk.api.inspect_container(cid)
        assert list(doc["NetworkSettings"]["Networks"]) == [mode]
        (entry,) = engine.sdk.api.containers(all=True, filters={"id": cid})
        assert list(entry["NetworkSettings"]["Networks"]) == [mode]
    finally:
        engine.docker("rm", "-f", name)


def test_the_default_network_mode_is_listed_as_bridge(engine):
    name = unique("nd")
    cid = engine.docker("create", "--name", name, "busybox", "true").stdout.decode().strip()
    try:
        doc = engine.sdk.api.inspect_container(cid)
        assert doc["HostConfig"]["NetworkMode"] == "default"
        assert list(doc["NetworkSettings"]["Networks"]) == ["bridge"]
    finally:
        engine.docker("rm", "-f", name)


def test_a_started_container_names_its_network_id(engine):
    name = unique("ni")
    engine.docker("run", "--name", name, "--network", "none", "busybox", "true")
    try:
        none = call(engine, "get", "/networks/none").json()
        doc = engine.sdk.api.inspect_container(name)
        assert doc["NetworkSettings"]["Networks"]["none"]["NetworkID"] == none["Id"]
    finally:
        engine.docker("rm", "-f", name)
