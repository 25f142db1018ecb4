"""The supervisor as a process: a kill -9 in the middle of a write loses nothing committed
and shows nothing partial, the write resumes after a restart; one supervisor per socket and
per root; SIGTERM stops it cleanly; flags, config file and --version."""

from __future__ import annotations

import hashlib
import os
import signal
import stat
import subprocess

import grpc
import pytest
from google.protobuf import any_pb2

from dockyard.api.services.containers.v1 import containers_pb2 as cpb
from dockyard.api.services.containers.v1 import containers_pb2_grpc as crpc
from dockyard.api.services.content.v1 import content_pb2 as pb
from dockyard.api.services.content.v1 import content_pb2_grpc as rpc
from dockyard.api.services.events.v1 import events_pb2, events_pb2_grpc
from tests.integration.containerd.daemon import COMMAND, Daemon, ns, running_daemon, workdir
from tests.integration.containerd.writes import WriteStream, open_stream

MB = 1 << 20


def test_kill9_mid_write_then_restart() -> None:
    data = os.urandom(3 * MB)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    with running_daemon() as d:
        done = WriteStream(d, "moby").send(action=pb.COMMIT, ref="small", data=b"committed")
        d.stub(crpc.ContainersStub).Create(cpb.CreateContainerRequest(container=cpb.Container(
            id="c1", runtime=cpb.Container.Runtime(name="r"),
            spec=any_pb2.Any(type_url="s", value=b"{}"))), metadata=ns("moby"))
        stream, _ = open_stream(d, "moby", "big", total=len(data), expected=digest)
        stream.send(action=pb.WRITE, offset=0, data=data[:MB])
        stream.send(action=pb.WRITE, offset=MB, data=data[MB:2 * MB])
        d.kill9()
        assert d.address.exists()  # the dead process's socket is still there: stale

        (d.root / "namespaces" / "ghost").mkdir()  # a namespace deletion a crash cut short
        (d.root / "namespaces" / ".removing-old-1234").mkdir()
        d.start()
        assert not (d.root / "namespaces" / "ghost").exists()
        assert not (d.root / "namespaces" / ".removing-old-1234").exists()

        stub = d.stub(rpc.ContentStub)
        assert stub.Info(pb.InfoRequest(digest=done.digest), metadata=ns("moby")).info.size == 9
        assert d.stub(crpc.ContainersStub).Get(cpb.GetContainerRequest(id="c1"),
                                               metadata=ns("moby")).container.id == "c1"
        with pytest.raises(grpc.RpcError) as e:
            stub.Info(pb.InfoRequest(digest=digest), metadata=ns("moby"))
        assert e.value.code() == grpc.StatusCode.NOT_FOUND
        listed = {i.digest for r in stub.List(pb.ListContentRequest(), metadata=ns("moby"))
                  for i in r.info}
        assert listed == {done.digest}
        statuses = stub.ListStatuses(pb.ListStatusesRequest(), metadata=ns("moby")).statuses
        assert [(s.ref, s.offset, s.total, s.expected) for s in statuses] == [
            ("big", 2 * MB, len(data), digest)]

        stream, stat_ = open_stream(d, "moby", "big")
        assert stat_.offset == 2 * MB
        stream.send(action=pb.WRITE, offset=stat_.offset, data=data[stat_.offset:])
        assert stream.send(action=pb.COMMIT, offset=len(data)).digest == digest
        got = b"".join(r.data for r in stub.Read(pb.ReadContentRequest(digest=digest),
                                                 metadata=ns("moby")))
        assert got == data


def test_one_supervisor_per_socket_and_per_root() -> None:
    with running_daemon() as first, workdir() as other:
        same_socket = Daemon(other, address=first.address)
        done = subprocess.run(same_socket.command(), capture_output=True, text=True,
                              timeout=30)
        assert done.returncode == 1
        assert f"{first.address}: another process is serving on it" in done.stderr
        same_root = Daemon(other, root=first.root)
        done = subprocess.run(same_root.command(), capture_output=True, text=True, timeout=30)
        assert done.returncode == 1
        assert "is in use by another dockyard-containerd" in done.stderr
        assert not same_root.address.exists()
        # the first one still serves
        assert first.stub(crpc.ContainersStub).List(cpb.ListContainersRequest(),
                                                    metadata=ns("x")).containers == []


def test_sigterm_stops_it_cleanly_and_the_socket_is_0660() -> None:
    with running_daemon() as d:
        mode = os.stat(d.address).st_mode
        assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o660
        with grpc.insecure_channel(f"unix:{d.address}") as channel:
            subscriber = events_pb2_grpc.EventsStub(channel).Subscribe(
                events_pb2.SubscribeRequest())
            subscriber.initial_metadata()
            assert d.stop(signal.SIGTERM) == 0
            assert list(subscriber) == []  # its stream ended cleanly, not cut
        assert not d.address.exists()
        assert "level=info msg=stopped" in d.logs()


def test_config_file_and_flags() -> None:
    with workdir() as base:
        config = base / "config.toml"
        config.write_text(f'version = 2\nroot = "{base}/from-file-root"\n'
                          f'state = "{base}/state"\n[grpc]\naddress = "{base}/file.sock"\n'
                          '[debug]\nlevel = "debug"\n'
                          '[plugins."io.containerd.grpc.v1.cri"]\nsandbox_image = "x"\n')
        d = Daemon(base, address=base / "file.sock")
        d.command = lambda: [*COMMAND, "--config", str(config),  # type: ignore[method-assign]
                             "--root", str(base / "flag-root")]
        try:
            d.start()
            assert (base / "flag-root" / "meta.db").exists()
            assert not (base / "from-file-root").exists()
        finally:
            d.stop()
        bad = base / "bad.toml"
        bad.write_text("[debug]\nlevel = 3\n")
        done = subprocess.run([*COMMAND, "--config", str(bad)], capture_output=True, text=True,
                              timeout=30)
        assert done.returncode == 1 and "debug.level must be a str" in done.stderr


def test_version() -> None:
    done = subprocess.run([*COMMAND, "--version"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0
    assert done.stdout.startswith("dockyard-containerd dockyard ")
