"""Content: writes that resume after a dropped stream, commits that check the digest, reads,
labels and deletion, through a real supervisor."""

from __future__ import annotations

import hashlib
import os

import grpc
import pytest
from google.protobuf import field_mask_pb2

from dockyard.api.services.content.v1 import content_pb2 as pb
from dockyard.api.services.content.v1 import content_pb2_grpc as rpc
from tests.integration.containerd.daemon import Daemon, ns, unique
from tests.integration.containerd.writes import WriteStream, open_stream

MB = 1 << 20


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def read_all(d: Daemon, namespace: str, digest: str, offset: int = 0, size: int = 0) -> bytes:
    return b"".join(r.data for r in d.stub(rpc.ContentStub).Read(
        pb.ReadContentRequest(digest=digest, offset=offset, size=size), metadata=ns(namespace)))


def test_a_dropped_write_resumes_where_it_stopped_and_commits(daemon: Daemon,
                                                               namespace: str) -> None:
    data = os.urandom(3 * MB + 123)
    digest, ref = sha256(data), unique("ref")
    stream, stat = open_stream(daemon, namespace, ref, total=len(data), expected=digest)
    assert stat.offset == 0
    assert stream.send(action=pb.WRITE, offset=0, data=data[:MB]).offset == MB
    assert stream.send(action=pb.WRITE, offset=MB, data=data[MB:2 * MB]).offset == 2 * MB
    stream.drop()

    stub = daemon.stub(rpc.ContentStub)
    with pytest.raises(grpc.RpcError) as e:
        stub.Info(pb.InfoRequest(digest=digest), metadata=ns(namespace))
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    assert e.value.details() == f"content digest {digest}: not found"

    stream, stat = open_stream(daemon, namespace, ref)
    assert (stat.offset, stat.total) == (2 * MB, len(data))
    with pytest.raises(grpc.RpcError) as e:
        stream.send(action=pb.WRITE, offset=MB, data=b"x")
    assert e.value.code() == grpc.StatusCode.OUT_OF_RANGE
    stream, stat = open_stream(daemon, namespace, ref)
    done = stream.send(action=pb.COMMIT, offset=stat.offset, data=data[stat.offset:],
                       labels={"app": "web"})
    assert (done.digest, done.offset) == (digest, len(data))

    info = stub.Info(pb.InfoRequest(digest=digest), metadata=ns(namespace)).info
    assert (info.size, dict(info.labels)) == (len(data), {"app": "web"})
    assert read_all(daemon, namespace, digest) == data
    assert read_all(daemon, namespace, digest, offset=MB - 5, size=10) == data[MB - 5:MB + 5]
    assert not stub.ListStatuses(pb.ListStatusesRequest(), metadata=ns(namespace)).statuses


def test_a_commit_with_the_wrong_digest_stores_nothing(daemon: Daemon, namespace: str) -> None:
    data, wrong, ref = b"hello", sha256(b"something else"), unique("ref")
    stream, _ = open_stream(daemon, namespace, ref)
    with pytest.raises(grpc.RpcError) as e:
        stream.send(action=pb.COMMIT, data=data, total=len(data), expected=wrong)
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    stub = daemon.stub(rpc.ContentStub)
    for digest in (wrong, sha256(data)):
        with pytest.raises(grpc.RpcError) as e:
            stub.Info(pb.InfoRequest(digest=digest), metadata=ns(namespace))
        assert e.value.code() == grpc.StatusCode.NOT_FOUND
    assert not list(stub.List(pb.ListContentRequest(), metadata=ns(namespace)))
    status = stub.Status(pb.StatusRequest(ref=ref), metadata=ns(namespace)).status
    assert status.offset == len(data)  # kept for a resume or an abort
    stub.Abort(pb.AbortRequest(ref=ref), metadata=ns(namespace))
    with pytest.raises(grpc.RpcError) as e:
        stub.Status(pb.StatusRequest(ref=ref), metadata=ns(namespace))
    assert e.value.code() == grpc.StatusCode.NOT_FOUND


def test_a_wrong_size_is_refused_too(daemon: Daemon, namespace: str) -> None:
    stream, _ = open_stream(daemon, namespace, unique("ref"))
    with pytest.raises(grpc.RpcError) as e:
        stream.send(action=pb.COMMIT, data=b"abc", total=4)
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION


def test_one_stream_per_ref_and_no_second_copy(daemon: Daemon, namespace: str) -> None:
    ref = unique("ref")
    first, _ = open_stream(daemon, namespace, ref)
    second = WriteStream(daemon, namespace)
    with pytest.raises(grpc.RpcError) as e:
        second.send(action=pb.STAT, ref=ref)
    assert e.value.code() == grpc.StatusCode.UNAVAILABLE
    done = first.send(action=pb.COMMIT, data=b"once")
    assert done.digest == sha256(b"once")
    third = WriteStream(daemon, namespace)
    with pytest.raises(grpc.RpcError) as e:
        third.send(action=pb.STAT, ref=unique("ref"), expected=done.digest)
    assert e.value.code() == grpc.StatusCode.ALREADY_EXISTS


def test_labels_list_filters_and_delete(daemon: Daemon, namespace: str) -> None:
    stub = daemon.stub(rpc.ContentStub)
    blobs = {}
    for i, app in enumerate(("web", "db")):
        stream, _ = open_stream(daemon, namespace, unique("ref"))
        blobs[app] = stream.send(action=pb.COMMIT, data=f"blob {i}".encode(),
                                 labels={"app": app, "keep": "1"}).digest
    info = stub.Update(pb.UpdateRequest(
        info=pb.Info(digest=blobs["web"], labels={"tier": "front"}),
        update_mask=field_mask_pb2.FieldMask(paths=["labels.tier", "labels.keep"])),
        metadata=ns(namespace)).info
    assert dict(info.labels) == {"app": "web", "tier": "front"}

    def listed(*filters: str) -> set[str]:
        return {i.digest for r in stub.List(pb.ListContentRequest(filters=list(filters)),
                                            metadata=ns(namespace)) for i in r.info}
    assert listed() == set(blobs.values())
    assert listed("labels.app==web") == {blobs["web"]}
    assert listed("labels.keep") == {blobs["db"]}
    assert listed("labels.app==db", "labels.tier==front") == set(blobs.values())
    assert listed("labels.app==db,labels.tier==front") == set()

    stub.Delete(pb.DeleteContentRequest(digest=blobs["web"]), metadata=ns(namespace))
    for call in (stub.Info, stub.Delete):
        request = (pb.InfoRequest if call is stub.Info else pb.DeleteContentRequest)(
            digest=blobs["web"])
        with pytest.raises(grpc.RpcError) as e:
            call(request, metadata=ns(namespace))
        assert e.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as e:
        read_all(daemon, namespace, blobs["db"], offset=1000)
    assert e.value.code() == grpc.StatusCode.OUT_OF_RANGE
    with pytest.raises(grpc.RpcError) as e:
        stub.Info(pb.InfoRequest(digest="sha256:nothex"), metadata=ns(namespace))
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
