"""The pure parts behind docker diff, stats and commit: the upper directory read as changes,
the stats document, the committed config."""

from __future__ import annotations

import os
from pathlib import Path

from dockyard.engine.containers import changes, commit, stats
from dockyard.engine.containers.model import Container


def _container() -> Container:
    return Container(id="a" * 64, name="web", created="", image="sha256:x", image_ref="busybox",
                     config={"Cmd": ["sh"], "Env": ["PATH=/bin", "A=1"], "Image": "busybox",
                             "Labels": {"l": "1"}}, host_config={})


def test_changes_from_an_upper_directory(tmp_path: Path) -> None:
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    (lower / "etc").mkdir(parents=True)
    (lower / "etc" / "group").write_text("g")
    (lower / "etc" / "passwd").write_text("p")
    os.symlink("/", lower / "hostlink")
    (upper / "etc").mkdir(parents=True)
    (upper / "etc" / "passwd").write_text("changed")
    os.mknod(upper / "etc" / "group", 0o600 | 0o020000, os.makedev(0, 0))
    (upper / "etc" / "hosts").write_text("")  # the runtime's mount point
    (upper / "new" / "d").mkdir(parents=True)
    (upper / "hostlink").mkdir()  # replaced a symlink: looked up without following it
    (upper / "hostlink" / "etc").mkdir()
    found = changes.changes(str(upper), [str(lower)])
    assert found == [{"Path": "/etc", "Kind": 0}, {"Path": "/etc/group", "Kind": 2},
                     {"Path": "/etc/passwd", "Kind": 0}, {"Path": "/hostlink", "Kind": 0},
                     {"Path": "/hostlink/etc", "Kind": 1}, {"Path": "/new", "Kind": 1},
                     {"Path": "/new/d", "Kind": 1}]


def test_a_directory_copied_up_for_mount_points_only_is_no_change(tmp_path: Path) -> None:
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    (lower / "etc").mkdir(parents=True)
    (upper / "etc").mkdir(parents=True)
    for f in ("hosts", "hostname", "resolv.conf"):
        (upper / "etc" / f).write_text("")
    assert changes.changes(str(upper), [str(lower)]) == []
    os.chmod(upper / "etc", 0o700)
    assert changes.changes(str(upper), [str(lower)]) == [{"Path": "/etc", "Kind": 0}]


def test_stats_document_of_a_reading_after_another() -> None:
    c = _container()
    raw = {"cpu": {"usage": {"total": 500, "percpu": [200, 300], "kernel": 10, "user": 20},
                   "throttling": {}},
           "memory": {"usage": {"usage": 4096, "max": 8192, "limit": 2 ** 63, "failcnt": 0},
                      "raw": {"cache": 1, "total_inactive_file": 2}},
           "pids": {"current": 3},
           "blkio": {"ioServiceBytesRecursive": [{"major": 8, "minor": 0, "op": "Read",
                                                   "value": 7}]}}
    pre = stats.Sample(read="2026-01-01T00:00:00Z", cgroup={**raw, "cpu": {"usage": {
        "total": 100}}}, system_cpu=1000)
    now = stats.Sample(read="2026-01-01T00:00:01Z", cgroup=raw, system_cpu=3000,
                       networks={"eth0": {"rx_bytes": 1}})
    doc = stats.document(c, now, pre, online=2, host_mem=1 << 30)
    assert doc["name"] == "/web" and doc["id"] == c.id and doc["preread"] == pre.read
    assert doc["cpu_stats"]["cpu_usage"] == {"total_usage": 500, "percpu_usage": [200, 300],
                                             "usage_in_kernelmode": 10,
                                             "usage_in_usermode": 20}
    assert doc["cpu_stats"]["system_cpu_usage"] == 3000
    assert doc["precpu_stats"]["cpu_usage"]["total_usage"] == 100
    assert doc["memory_stats"] == {"usage": 4096, "max_usage": 8192,
                                   "stats": {"cache": 1, "total_inactive_file": 2},
                                   "limit": 1 << 30}
    assert doc["pids_stats"] == {"current": 3}
    assert doc["blkio_stats"]["io_service_bytes_recursive"] == [
        {"major": 8, "minor": 0, "op": "Read", "value": 7}]
    assert doc["blkio_stats"]["io_serviced_recursive"] == []
    assert doc["networks"] == {"eth0": {"rx_bytes": 1}}


def test_stats_of_a_stopped_container_are_zeroes_without_networks() -> None:
    doc = stats.document(_container(), None, None, online=2, host_mem=1)
    assert doc["read"] == "0001-01-01T00:00:00Z" and doc["memory_stats"] == {}
    assert "networks" not in doc and doc["pids_stats"] == {}
    assert doc["blkio_stats"]["io_serviced_recursive"] is None


def test_network_counters_leave_out_the_loopback() -> None:
    text = ("Inter-|   Receive |  Transmit\n face |bytes packets errs drop fifo frame\n"
            "    lo: 1 2 0 0 0 0 0 0 1 2 0 0 0 0 0 0\n"
            "  eth0: 100 3 0 1 0 0 0 0 200 4 0 2 0 0 0 0\n")
    assert stats.networks(text) == {"eth0": {
        "rx_bytes": 100, "rx_packets": 3, "rx_errors": 0, "rx_dropped": 1, "tx_bytes": 200,
        "tx_packets": 4, "tx_errors": 0, "tx_dropped": 2}}


def test_system_cpu_usage_sums_proc_stat() -> None:
    assert stats.system_cpu_usage("cpu  1 2 3 4 5 6 7 8 9\ncpu0 1\n") == \
        28 * 1_000_000_000 // stats._CLK_TCK


def test_commit_config_is_the_containers_with_changes() -> None:
    c = _container()
    config = commit.commit_config(None, c.config, ["ENV A=2", "LABEL m=2", 'CMD ["x"]',
                                                  "EXPOSE 80"])
    assert config["Env"] == ["PATH=/bin", "A=2"] and config["Cmd"] == ["x"]
    assert config["Labels"] == {"l": "1", "m": "2"} and config["Image"] == "busybox"
    assert config["ExposedPorts"] == {"80/tcp": {}}


def test_commit_entrypoint_change_clears_the_command() -> None:
    config = commit.commit_config(None, _container().config, ['ENTRYPOINT ["top"]'])
    assert config["Entrypoint"] == ["top"] and not config.get("Cmd")


def test_commit_config_given_is_completed_from_the_container() -> None:
    config = commit.commit_config({"Cmd": ["y"]}, _container().config, [])
    assert config["Cmd"] == ["y"] and "A=1" in config["Env"]


def test_commit_image_name() -> None:
    assert commit.image_name("", "x") == ""
    assert commit.image_name("repo", "") == "docker.io/library/repo:latest"
    assert commit.image_name("localhost:5000/a/b", "v1") == "localhost:5000/a/b:v1"


def test_a_pid_that_is_not_the_containers_gives_no_root() -> None:
    from dockyard.engine.containers import rootview

    c = _container()
    c.state.running, c.state.pid = True, os.getpid()  # a host process, not the container
    assert rootview.open_live(c) is None
    c.state.running = False
    assert rootview.open_live(c) is None


def test_writes_to_read_only_volumes_and_rootfs_are_refused() -> None:
    import pytest

    from dockyard.engine.containers import rootview
    from dockyard.engine.errors import EngineError

    c = _container()
    c.host_config = {"ReadonlyRootfs": True}
    c.mount_points = [{"type": "volume", "destination": "/vol", "source": "v", "rw": True},
                      {"type": "bind", "destination": "/ro", "source": "/x", "rw": False}]
    rootview.check_writable(c, "/vol/sub")
    with pytest.raises(EngineError, match="mounted volume is marked read-only"):
        rootview.check_writable(c, "/ro/../ro/x")
    with pytest.raises(EngineError, match="container rootfs is marked read-only"):
        rootview.check_writable(c, "/volume")


def test_commit_refuses_an_unknown_instruction_in_dockerd_words() -> None:
    import pytest

    from dockyard.engine.errors import InvalidParameter

    with pytest.raises(InvalidParameter, match=r"^bogus is not a valid change command$"):
        commit.commit_config(None, _container().config, ["BOGUS x"])


def test_only_a_writable_overlay_is_made_volatile() -> None:
    from types import SimpleNamespace

    from dockyard.engine.containers import rootview

    rw = SimpleNamespace(type="overlay", source="overlay",
                         options=["index=off", "lowerdir=/l", "upperdir=/u", "workdir=/w"])
    ro = SimpleNamespace(type="overlay", source="overlay", options=["ro", "lowerdir=/a:/b"])
    bind = SimpleNamespace(type="bind", source="/s", options=["rbind", "rw"])
    out = rootview.volatile([rw, ro, bind])
    assert out[0].options == (*rw.options, "volatile") and out[0].type == "overlay"
    assert out[1] is ro and out[2] is bind
    assert rootview.volatile(out)[0].options.count("volatile") == 1
