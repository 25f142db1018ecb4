"""Snapshots: prepare, commit, view, mounts and remove through a real supervisor; mounts are
returned, never performed."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import field_mask_pb2

from dockyard.api.services.snapshots.v1 import snapshots_pb2 as pb
from dockyard.api.services.snapshots.v1 import snapshots_pb2_grpc as rpc
from tests.integration.containerd.daemon import Daemon, ns


def test_prepare_commit_view_mounts_remove(daemon: Daemon, namespace: str) -> None:
    stub = daemon.stub(rpc.SnapshotsStub)
    md = ns(namespace)
    mounts = stub.Prepare(pb.PrepareSnapshotRequest(key="layer-1-active", labels={"a": "1"}),
                          metadata=md).mounts
    assert len(mounts) == 1 and mounts[0].type == "bind" and "rw" in mounts[0].options
    assert mounts[0].source.startswith(str(daemon.root / "namespaces" / namespace))
    stub.Commit(pb.CommitSnapshotRequest(key="layer-1-active", name="layer-1"), metadata=md)
    info = stub.Stat(pb.StatSnapshotRequest(key="layer-1"), metadata=md).info
    assert (info.name, info.kind, info.parent) == ("layer-1", pb.COMMITTED, "")

    active = stub.Prepare(pb.PrepareSnapshotRequest(key="rootfs", parent="layer-1"),
                          metadata=md).mounts
    assert stub.Mounts(pb.MountsRequest(key="rootfs"), metadata=md).mounts == active
    view = stub.View(pb.ViewSnapshotRequest(key="look", parent="layer-1"), metadata=md).mounts
    assert "ro" in view[0].options
    with pytest.raises(grpc.RpcError) as e:
        stub.Mounts(pb.MountsRequest(key="layer-1"), metadata=md)
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION

    listed = {i.name: i for r in stub.List(pb.ListSnapshotsRequest(), metadata=md)
              for i in r.info}
    assert set(listed) == {"layer-1", "rootfs", "look"}
    assert listed["rootfs"].parent == "layer-1" and listed["look"].kind == pb.VIEW
    only = [i.name for r in stub.List(pb.ListSnapshotsRequest(filters=["kind==active"]),
                                      metadata=md) for i in r.info]
    assert only == ["rootfs"]
    updated = stub.Update(pb.UpdateSnapshotRequest(
        info=pb.Info(name="rootfs", labels={"b": "2"}),
        update_mask=field_mask_pb2.FieldMask(paths=["labels.b"])), metadata=md).info
    assert dict(updated.labels) == {"b": "2"}
    usage = stub.Usage(pb.UsageRequest(key="layer-1"), metadata=md)
    assert usage.inodes >= 1

    with pytest.raises(grpc.RpcError) as e:
        stub.Remove(pb.RemoveSnapshotRequest(key="layer-1"), metadata=md)
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION  # it has children
    for key in ("rootfs", "look", "layer-1"):
        stub.Remove(pb.RemoveSnapshotRequest(key=key), metadata=md)
    with pytest.raises(grpc.RpcError) as e:
        stub.Stat(pb.StatSnapshotRequest(key="layer-1"), metadata=md)
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    stub.Cleanup(pb.CleanupRequest(), metadata=md)


def test_errors_are_containerds(daemon: Daemon, namespace: str) -> None:
    stub = daemon.stub(rpc.SnapshotsStub)
    md = ns(namespace)
    stub.Prepare(pb.PrepareSnapshotRequest(key="k"), metadata=md)
    with pytest.raises(grpc.RpcError) as e:
        stub.Prepare(pb.PrepareSnapshotRequest(key="k"), metadata=md)
    assert e.value.code() == grpc.StatusCode.ALREADY_EXISTS
    with pytest.raises(grpc.RpcError) as e:
        stub.Prepare(pb.PrepareSnapshotRequest(key="k2", parent="nothing"), metadata=md)
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as e:
        stub.Prepare(pb.PrepareSnapshotRequest(snapshotter="zfs", key="k3"), metadata=md)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert e.value.details() == "snapshotter not loaded: zfs: invalid argument"
