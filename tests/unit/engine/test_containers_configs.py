"""The create body as dockerd reads it: types, the merge with the image, defaults, policies;
names; restart decisions; the list's filters and status words; the on-disk store."""

from __future__ import annotations

import json

import pytest

from dockyard.engine.containers import configs, names, restart, views
from dockyard.engine.containers.model import Container, State
from dockyard.engine.containers.runtime import parse_signal
from dockyard.engine.containers.store import ContainerStore
from dockyard.engine.errors import InvalidParameter

BUSYBOX = {"Env": ["PATH=/usr/bin:/bin"], "Cmd": ["sh"], "Labels": {"from": "image"},
           "WorkingDir": "/srv", "StopSignal": "SIGQUIT"}


def test_a_string_where_a_list_belongs_is_refused_as_go_words_it():
    with pytest.raises(InvalidParameter) as e:
        configs.parse_create({"Image": "busybox", "Env": "A=1"})
    assert e.value.message == ("json: cannot unmarshal string into Go struct field "
                               "CreateRequest.Env of type []string")
    with pytest.raises(InvalidParameter, match=r"CreateRequest\.HostConfig\.AutoRemove of type"):
        configs.parse_create({"Image": "x", "HostConfig": {"AutoRemove": "yes"}})
    with pytest.raises(InvalidParameter, match="into Go value of type"):
        configs.parse_create([1, 2])


def test_cmd_may_be_one_string():
    config, _, _ = configs.parse_create({"Image": "x", "Cmd": "true"})
    assert config["Cmd"] == ["true"]


def test_merge_takes_the_images_cmd_env_labels_and_workdir():
    config = {"Image": "busybox", "Env": ["A=1", "PATH=/mine"], "Labels": {"k": "v"}}
    configs.merge_image(config, BUSYBOX)
    assert config["Cmd"] == ["sh"] and config["Env"] == ["A=1", "PATH=/mine"]
    assert config["Labels"] == {"from": "image", "k": "v"}
    assert config["WorkingDir"] == "/srv" and config["StopSignal"] == "SIGQUIT"
    assert configs.command(config) == ("sh", [])


def test_an_entrypoint_given_drops_the_images_cmd():
    config = {"Image": "busybox", "Entrypoint": ["echo"]}
    configs.merge_image(config, BUSYBOX)
    assert config["Cmd"] is None
    assert configs.command(config) == ("echo", [])


def test_no_command_at_all_is_refused():
    config = {"Image": "scratchy"}
    configs.merge_image(config, {})
    with pytest.raises(InvalidParameter, match="no command specified"):
        configs.command(config)


@pytest.mark.parametrize("policy,auto_remove,message", [
    ({"Name": "sometimes"}, False, "invalid restart policy: unknown policy 'sometimes'"),
    ({"Name": "always", "MaximumRetryCount": 2}, False, "can only be used with 'on-failure'"),
    ({"Name": "on-failure", "MaximumRetryCount": -1}, False, "cannot be negative"),
    ({"Name": "always"}, True, "can't create 'AutoRemove' container with restart policy"),
])
def test_restart_policies_are_checked(policy, auto_remove, message):
    with pytest.raises(InvalidParameter, match=message):
        configs.check_restart_policy(policy, auto_remove)


def test_host_config_defaults():
    host: dict = {}
    configs.check_host_config(host)
    assert host["RestartPolicy"] == {"Name": "no", "MaximumRetryCount": 0}
    assert host["NetworkMode"] == "bridge" and host["LogConfig"]["Type"] == "json-file"
    with pytest.raises(InvalidParameter, match="Minimum memory limit allowed is 6MB"):
        configs.check_host_config({"Memory": 1024})


def test_names_follow_dockers_rule():
    assert names.check_name("/web.1") == "web.1"
    with pytest.raises(InvalidParameter, match=r"Invalid container name \(a b\)"):
        names.check_name("a b")
    with pytest.raises(InvalidParameter):
        names.check_name("x")  # one character is not enough
    assert "_" in names.random_name() and len(names.new_id()) == 64


def test_signals_by_name_and_number():
    assert parse_signal("KILL") == 9 and parse_signal("SIGTERM") == 15
    assert parse_signal("9") == 9 and parse_signal(None) == 9
    with pytest.raises(InvalidParameter, match="Invalid signal: NOPE"):
        parse_signal("NOPE")


def test_restart_decisions():
    on_failure = {"Name": "on-failure", "MaximumRetryCount": 2}
    assert restart.should_restart(on_failure, 1, 0, False)
    assert restart.should_restart(on_failure, 1, 1, False)
    assert not restart.should_restart(on_failure, 1, 2, False)
    assert not restart.should_restart(on_failure, 0, 0, False)
    assert restart.should_restart({"Name": "always"}, 0, 10, False)
    assert not restart.should_restart({"Name": "always"}, 0, 0, True)
    assert restart.restarts_with_daemon({"Name": "always"}, True)
    assert not restart.restarts_with_daemon({"Name": "unless-stopped"}, True)


def test_backoff_doubles_and_resets_after_a_long_run():
    b = restart.Backoff()
    assert [b.next(0), b.next(0), b.next(0)] == [0.1, 0.2, 0.4]
    assert b.next(30) == 0.1


def container(cid: str = "a" * 64, **kw) -> Container:
    created = kw.pop("created", "2026-01-01T00:00:00Z")
    return Container(id=cid, name=kw.pop("name", "c"), created=created,
                     image="sha256:" + "b" * 64, image_ref="busybox",
                     config={"Image": "busybox", "Labels": kw.pop("labels", {})},
                     host_config={"NetworkMode": "none"}, **kw)


def test_status_words():
    assert views.human_duration(0.2) == "Less than a second"
    assert views.human_duration(90) == "About a minute"
    assert views.human_duration(3 * 3600) == "3 hours"
    c = container()
    assert views.status_text(c) == "Created"
    c.state = State(status="exited", exit_code=3, started_at="2026-01-01T00:00:00Z",
                    finished_at="2026-01-01T00:00:01Z")
    assert views.status_text(c).startswith("Exited (3) ")


def test_list_filters():
    a = container("a" * 64, name="one", labels={"team": "x"}, created="2026-01-01T00:00:01Z")
    b = container("b" * 64, name="two", created="2026-01-01T00:00:02Z")
    b.state = State(status="exited", exit_code=1)
    every = [b, a]
    by = {c.id: c for c in every}
    lookup = by.__getitem__

    def pick(filters, all_=True):
        return [c.name for c in views.select(every, filters, all_=all_, limit=None,
                                             lookup=lookup, image_ids={})]

    assert pick({"label": ["team=x"]}) == ["one"]
    assert pick({"status": ["exited"]}) == ["two"]
    assert pick({"exited": ["1"]}) == ["two"]
    assert pick({"name": ["tw"]}) == ["two"]
    assert pick({"since": ["a" * 64]}) == ["two"]
    assert pick({"before": ["b" * 64]}) == ["one"]
    with pytest.raises(InvalidParameter, match="invalid filter 'nope'"):
        pick({"nope": ["1"]})


def test_the_store_survives_half_written_containers(tmp_path):
    store = ContainerStore(tmp_path / "containers")
    c = container()
    c.directory = str(store.prepare(c.id))
    store.save(c, host_config=True)
    store.prepare("c" * 64)  # a create that died before config.v2.json
    (store.root / ("c" * 64) / "hostconfig.json").write_text("{}")
    found, broken = store.load_all()
    assert [x.id for x in found] == [c.id] and broken == ["c" * 64]
    assert not (store.root / ("c" * 64)).exists()
    doc = json.loads((store.root / c.id / "config.v2.json").read_text())
    assert doc["Name"] == "/c" and doc["State"]["Status"] == "created"
    store.remove(c.id)
    assert list(store.root.iterdir()) == []


def test_healthcheck_commands_and_limits():
    from dockyard.engine.containers.health import probe_command

    assert probe_command({"Healthcheck": {"Test": ["CMD", "true"]}}) == ["true"]
    assert probe_command({"Healthcheck": {"Test": ["CMD-SHELL", "exit 1"]}}) == \
        ["/bin/sh", "-c", "exit 1"]
    assert probe_command({"Healthcheck": {"Test": ["NONE"]}}) is None
    assert probe_command({}) is None
    with pytest.raises(InvalidParameter, match="Interval in Healthcheck cannot be less than"):
        configs.check_healthcheck({"Healthcheck": {"Interval": 10}})


def test_running_status_shows_health():
    c = container()
    c.state.set_running(42)
    c.health = {"Status": "starting"}
    assert views.status_text(c).endswith("(health: starting)")
    c.health = {"Status": "healthy"}
    assert views.status_text(c).endswith("(healthy)")


def test_commits_write_the_newest_state(tmp_path):
    import asyncio

    async def main() -> dict:
        store = ContainerStore(tmp_path / "containers")
        c = container()
        c.directory = str(store.prepare(c.id))
        store.save(c, host_config=True)
        writes = []
        for n in range(5):
            c.restart_count = n
            writes.append(asyncio.create_task(store.commit(c)))
        await asyncio.gather(*writes)
        return json.loads((store.root / c.id / "config.v2.json").read_text())

    assert asyncio.run(main())["RestartCount"] == 4
