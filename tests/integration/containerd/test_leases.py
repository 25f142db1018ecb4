"""Leases: create, list, resources, delete; a lease named in a call's header holds what the
call writes, and the collector keeps what images and leases reach."""

from __future__ import annotations

import hashlib

import grpc
import pytest

from dockyard.api.services.content.v1 import content_pb2 as cpb
from dockyard.api.services.content.v1 import content_pb2_grpc as crpc
from dockyard.api.services.images.v1 import images_pb2 as ipb
from dockyard.api.services.images.v1 import images_pb2_grpc as irpc
from dockyard.api.services.leases.v1 import leases_pb2 as pb
from dockyard.api.services.leases.v1 import leases_pb2_grpc as rpc
from dockyard.api.types.descriptor_pb2 import Descriptor
from tests.integration.containerd.daemon import Daemon, ns
from tests.integration.containerd.writes import WriteStream


def test_lease_crud_and_resources(daemon: Daemon, namespace: str) -> None:
    stub = daemon.stub(rpc.LeasesStub)
    md = ns(namespace)
    lease = stub.Create(pb.CreateRequest(id="pull-1", labels={"a": "1"}), metadata=md).lease
    assert lease.id == "pull-1" and lease.created_at.seconds > 0
    random = stub.Create(pb.CreateRequest(), metadata=md).lease
    assert random.id
    with pytest.raises(grpc.RpcError) as e:
        stub.Create(pb.CreateRequest(id="pull-1"), metadata=md)
    assert e.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert e.value.details() == 'lease "pull-1": already exists'
    assert {x.id for x in stub.List(pb.ListRequest(), metadata=md).leases} == {"pull-1",
                                                                              random.id}
    assert [x.id for x in stub.List(pb.ListRequest(filters=["labels.a==1"]),
                                    metadata=md).leases] == ["pull-1"]
    digest = "sha256:" + "cd" * 32
    resources = [pb.Resource(id=digest, type="content"), pb.Resource(id="ref-1", type="ingests"),
                 pb.Resource(id="key-1", type="snapshots/overlayfs")]
    for r in resources:
        stub.AddResource(pb.AddResourceRequest(id="pull-1", resource=r), metadata=md)
    listed = stub.ListResources(pb.ListResourcesRequest(id="pull-1"), metadata=md).resources
    assert sorted((r.type, r.id) for r in listed) == sorted((r.type, r.id) for r in resources)
    stub.DeleteResource(pb.DeleteResourceRequest(id="pull-1", resource=resources[1]),
                        metadata=md)
    assert len(stub.ListResources(pb.ListResourcesRequest(id="pull-1"),
                                  metadata=md).resources) == 2
    with pytest.raises(grpc.RpcError) as e:
        stub.AddResource(pb.AddResourceRequest(id="pull-1", resource=pb.Resource(
            id="x", type="volumes")), metadata=md)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    stub.Delete(pb.DeleteRequest(id="pull-1"), metadata=md)
    with pytest.raises(grpc.RpcError) as e:
        stub.Delete(pb.DeleteRequest(id="pull-1"), metadata=md)
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    assert e.value.details() == 'lease "pull-1": not found'


def test_a_lease_header_holds_what_a_write_makes_until_an_image_does(daemon: Daemon,
                                                                     namespace: str) -> None:
    leases, content = daemon.stub(rpc.LeasesStub), daemon.stub(crpc.ContentStub)
    images = daemon.stub(irpc.ImagesStub)
    md = ns(namespace)
    lease = "import-1"
    leases.Create(pb.CreateRequest(id=lease), metadata=md)
    data = b'{"schemaVersion": 2}'
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    stream = WriteStream(daemon, namespace, metadata=[("containerd-lease", lease)])
    assert stream.send(action=cpb.COMMIT, ref="m", data=data).digest == digest
    held = leases.ListResources(pb.ListResourcesRequest(id=lease), metadata=md).resources
    assert {(r.type, r.id) for r in held} == {("ingests", "m"), ("content", digest)}

    def stored() -> bool:
        try:
            content.Info(cpb.InfoRequest(digest=digest), metadata=md)
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.NOT_FOUND
            return False
        return True

    images.Create(ipb.CreateImageRequest(image=ipb.Image(name="x:1", target=Descriptor(
        media_type="application/vnd.oci.image.manifest.v1+json", digest=digest,
        size=len(data)))), metadata=md)
    leases.Delete(pb.DeleteRequest(id=lease, sync=True), metadata=md)
    assert stored()  # the image keeps it
    images.Delete(ipb.DeleteImageRequest(name="x:1", sync=True), metadata=md)
    assert not stored()  # nothing does any more: collected
