"""Containers: create, get, list with filters, update by field mask, delete; with events."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import any_pb2, field_mask_pb2

from dockyard.api.events import container_pb2 as events
from dockyard.api.services.containers.v1 import containers_pb2 as pb
from dockyard.api.services.containers.v1 import containers_pb2_grpc as rpc
from tests.integration.containerd.daemon import Daemon, Subscriber, ns

SPEC_URL = "types.containerd.io/opencontainers/runtime-spec/1/Spec"


def spec(text: str) -> any_pb2.Any:
    return any_pb2.Any(type_url=SPEC_URL, value=text.encode())


def make(id: str, **fields: object) -> pb.Container:
    fields.setdefault("runtime", pb.Container.Runtime(name="io.containerd.runc.v2"))
    fields.setdefault("spec", spec('{"ociVersion": "1.1.0"}'))
    return pb.Container(id=id, **fields)


def test_container_crud(daemon: Daemon, namespace: str) -> None:
    stub = daemon.stub(rpc.ContainersStub)
    md = ns(namespace)
    events_seen = Subscriber(daemon, f'namespace=={namespace},topic~="^/containers/"')
    try:
        options = any_pb2.Any(type_url="types.dockyard.dev/runc/options", value=b'{"a":1}')
        made = stub.Create(pb.CreateContainerRequest(container=make(
            "web-1", image="docker.io/library/nginx:latest", labels={"app": "web"},
            runtime=pb.Container.Runtime(name="io.containerd.runc.v2", options=options),
            snapshotter="overlayfs", snapshot_key="web-1-rootfs",
            extensions={"moby": any_pb2.Any(type_url="x", value=b"ext")})),
            metadata=md).container
        assert made.created_at == made.updated_at and made.created_at.seconds > 0
        got = stub.Get(pb.GetContainerRequest(id="web-1"), metadata=md).container
        assert got == made and got.runtime.options == options
        assert got.extensions["moby"].value == b"ext"
        stub.Create(pb.CreateContainerRequest(container=make("db-1", labels={"app": "db"})),
                    metadata=md)
        with pytest.raises(grpc.RpcError) as e:
            stub.Create(pb.CreateContainerRequest(container=make("db-1")), metadata=md)
        assert e.value.code() == grpc.StatusCode.ALREADY_EXISTS
        assert e.value.details() == 'container "db-1": already exists'

        def ids(*filters: str) -> list[str]:
            return [c.id for c in stub.List(pb.ListContainersRequest(filters=list(filters)),
                                            metadata=md).containers]
        assert ids() == ["db-1", "web-1"]
        assert ids("labels.app==web") == ["web-1"]
        assert ids("image~=nginx", "id==db-1") == ["db-1", "web-1"]
        assert ids("runtime.name==io.containerd.runc.v2,labels.app==db") == ["db-1"]
        assert [m.container.id for m in stub.ListStream(pb.ListContainersRequest(),
                                                        metadata=md)] == ["db-1", "web-1"]

        updated = stub.Update(pb.UpdateContainerRequest(
            container=make("web-1", labels={"tier": "front"}, spec=spec("{}")),
            update_mask=field_mask_pb2.FieldMask(paths=["labels.tier", "spec"])),
            metadata=md).container
        assert dict(updated.labels) == {"app": "web", "tier": "front"}
        assert updated.spec.value == b"{}" and updated.image == made.image
        assert updated.created_at == made.created_at
        assert updated.updated_at.ToNanoseconds() > made.updated_at.ToNanoseconds()
        with pytest.raises(grpc.RpcError) as e:  # immutable without a mask
            stub.Update(pb.UpdateContainerRequest(container=make(
                "web-1", runtime=pb.Container.Runtime(name="other"),
                snapshotter="overlayfs")), metadata=md)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        with pytest.raises(grpc.RpcError) as e:
            stub.Update(pb.UpdateContainerRequest(container=make("web-1"), update_mask=(
                field_mask_pb2.FieldMask(paths=["runtime"]))), metadata=md)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT

        stub.Delete(pb.DeleteContainerRequest(id="web-1"), metadata=md)
        with pytest.raises(grpc.RpcError) as e:
            stub.Get(pb.GetContainerRequest(id="web-1"), metadata=md)
        assert e.value.code() == grpc.StatusCode.NOT_FOUND
        assert e.value.details() == (f'container "web-1" in namespace "{namespace}": '
                                     "not found")
        with pytest.raises(grpc.RpcError) as e:
            stub.Delete(pb.DeleteContainerRequest(id="web-1"), metadata=md)
        assert e.value.code() == grpc.StatusCode.NOT_FOUND

        seen = [events_seen.get() for _ in range(4)]
        assert [e.topic for e in seen] == ["/containers/create", "/containers/create",
                                          "/containers/update", "/containers/delete"]
        create = events.ContainerCreate()
        assert seen[0].event.Unpack(create)
        assert (create.id, create.image, create.runtime.name) == (
            "web-1", "docker.io/library/nginx:latest", "io.containerd.runc.v2")
        assert events_seen.nothing_more()
    finally:
        events_seen.close()


def test_invalid_containers_are_refused(daemon: Daemon, namespace: str) -> None:
    stub = daemon.stub(rpc.ContainersStub)
    for bad in (make("../x"), make(""), make("c", runtime=pb.Container.Runtime()),
                pb.Container(id="c", runtime=pb.Container.Runtime(name="r")),
                make("c", snapshot_key="k")):
        with pytest.raises(grpc.RpcError) as e:
            stub.Create(pb.CreateContainerRequest(container=bad), metadata=ns(namespace))
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT, bad
