"""Namespaces: what one namespace holds is invisible from another; namespaces are made by a
first write, refused deletion while not empty, and every call names one in containerd's
header."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import any_pb2, field_mask_pb2

from dockyard.api.services.containers.v1 import containers_pb2 as cpb
from dockyard.api.services.containers.v1 import containers_pb2_grpc as crpc
from dockyard.api.services.content.v1 import content_pb2 as contentpb
from dockyard.api.services.content.v1 import content_pb2_grpc as contentrpc
from dockyard.api.services.images.v1 import images_pb2 as ipb
from dockyard.api.services.images.v1 import images_pb2_grpc as irpc
from dockyard.api.services.namespaces.v1 import namespace_pb2 as npb
from dockyard.api.services.namespaces.v1 import namespace_pb2_grpc as nrpc
from dockyard.api.services.snapshots.v1 import snapshots_pb2 as spb
from dockyard.api.services.snapshots.v1 import snapshots_pb2_grpc as srpc
from dockyard.api.types.descriptor_pb2 import Descriptor
from tests.integration.containerd.daemon import Daemon, ns, unique

SPEC = any_pb2.Any(type_url="types.containerd.io/opencontainers/runtime-spec/1/Spec",
                   value=b'{"ociVersion": "1.1.0"}')
DIGEST = "sha256:" + "ab" * 32


def container(id: str) -> cpb.Container:
    return cpb.Container(id=id, runtime=cpb.Container.Runtime(name="io.containerd.runc.v2"),
                         spec=SPEC)


def image(name: str) -> ipb.Image:
    return ipb.Image(name=name, target=Descriptor(
        media_type="application/vnd.oci.image.manifest.v1+json", digest=DIGEST, size=10))


def write_blob(d: Daemon, namespace: str, data: bytes) -> str:
    import hashlib

    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    stub = d.stub(contentrpc.ContentStub)
    responses = list(stub.Write(iter([contentpb.WriteContentRequest(
        action=contentpb.COMMIT, ref=f"ref-{digest}", data=data, total=len(data),
        expected=digest)]), metadata=ns(namespace)))
    assert responses[-1].digest == digest
    return digest


def test_what_one_namespace_holds_is_not_visible_from_another(daemon: Daemon) -> None:
    a, b = unique("a"), unique("b")
    containers = daemon.stub(crpc.ContainersStub)
    images = daemon.stub(irpc.ImagesStub)
    containers.Create(cpb.CreateContainerRequest(container=container("c1")), metadata=ns(a))
    images.Create(ipb.CreateImageRequest(image=image("docker.io/library/x:1")), metadata=ns(a))
    digest = write_blob(daemon, a, b"only in a")
    daemon.stub(srpc.SnapshotsStub).Prepare(spb.PrepareSnapshotRequest(key="k1"),
                                            metadata=ns(a))

    for call in (lambda: containers.Get(cpb.GetContainerRequest(id="c1"), metadata=ns(b)),
                 lambda: images.Get(ipb.GetImageRequest(name="docker.io/library/x:1"),
                                    metadata=ns(b)),
                 lambda: daemon.stub(contentrpc.ContentStub).Info(
                     contentpb.InfoRequest(digest=digest), metadata=ns(b)),
                 lambda: daemon.stub(srpc.SnapshotsStub).Stat(
                     spb.StatSnapshotRequest(key="k1"), metadata=ns(b))):
        with pytest.raises(grpc.RpcError) as e:
            call()
        assert e.value.code() == grpc.StatusCode.NOT_FOUND, e.value.details()
    assert not containers.List(cpb.ListContainersRequest(), metadata=ns(b)).containers
    assert not images.List(ipb.ListImagesRequest(), metadata=ns(b)).images
    # b now exists (a write made it) and is still empty of a's things
    containers.Create(cpb.CreateContainerRequest(container=container("c1")), metadata=ns(b))
    assert [c.id for c in containers.List(cpb.ListContainersRequest(),
                                          metadata=ns(a)).containers] == ["c1"]
    assert len(images.List(ipb.ListImagesRequest(), metadata=ns(a)).images) == 1


def test_a_first_write_makes_the_namespace_and_a_read_does_not(daemon: Daemon) -> None:
    name = unique("implicit")
    stub = daemon.stub(nrpc.NamespacesStub)
    daemon.stub(irpc.ImagesStub).List(ipb.ListImagesRequest(), metadata=ns(name))
    assert name not in [n.name for n in stub.List(npb.ListNamespacesRequest()).namespaces]
    daemon.stub(irpc.ImagesStub).Create(ipb.CreateImageRequest(image=image("x")),
                                        metadata=ns(name))
    assert name in [n.name for n in stub.List(npb.ListNamespacesRequest()).namespaces]


def test_namespace_crud_and_deletion_only_when_empty(daemon: Daemon) -> None:
    name = unique("crud")
    stub = daemon.stub(nrpc.NamespacesStub)
    made = stub.Create(npb.CreateNamespaceRequest(
        namespace=npb.Namespace(name=name, labels={"a": "1", "b": "2"}))).namespace
    assert dict(made.labels) == {"a": "1", "b": "2"}
    with pytest.raises(grpc.RpcError) as e:
        stub.Create(npb.CreateNamespaceRequest(namespace=npb.Namespace(name=name)))
    assert e.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert e.value.details() == f'namespace "{name}": already exists'
    updated = stub.Update(npb.UpdateNamespaceRequest(
        namespace=npb.Namespace(name=name, labels={"c": "3"}),
        update_mask=field_mask_pb2.FieldMask(paths=["labels.c", "labels.a"]))).namespace
    assert dict(updated.labels) == {"b": "2", "c": "3"}
    assert stub.Get(npb.GetNamespaceRequest(name=name)).namespace == updated
    assert [n.name for n in stub.List(npb.ListNamespacesRequest(
        filter=f"name=={name}")).namespaces] == [name]

    daemon.stub(crpc.ContainersStub).Create(cpb.CreateContainerRequest(
        container=container("c")), metadata=ns(name))
    daemon.stub(irpc.ImagesStub).Create(ipb.CreateImageRequest(image=image("i")),
                                        metadata=ns(name))
    with pytest.raises(grpc.RpcError) as e:
        stub.Delete(npb.DeleteNamespaceRequest(name=name))
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert e.value.details() == (f'namespace "{name}" must be empty, but it still has '
                                 "images, containers: failed precondition")
    daemon.stub(crpc.ContainersStub).Delete(cpb.DeleteContainerRequest(id="c"),
                                            metadata=ns(name))
    daemon.stub(irpc.ImagesStub).Delete(ipb.DeleteImageRequest(name="i"), metadata=ns(name))
    stub.Delete(npb.DeleteNamespaceRequest(name=name))
    with pytest.raises(grpc.RpcError) as e:
        stub.Get(npb.GetNamespaceRequest(name=name))
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    assert not (daemon.root / "namespaces" / name).exists()


def test_a_call_without_a_namespace_or_with_a_bad_one_is_refused(daemon: Daemon) -> None:
    stub = daemon.stub(crpc.ContainersStub)
    with pytest.raises(grpc.RpcError) as e:
        stub.List(cpb.ListContainersRequest())
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert e.value.details() == "namespace is required: failed precondition"
    with pytest.raises(grpc.RpcError) as e:
        stub.List(cpb.ListContainersRequest(), metadata=ns("../etc"))
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert e.value.details().startswith('namespace validation: identifier "../etc" must match')
    with pytest.raises(grpc.RpcError) as e:
        daemon.stub(nrpc.NamespacesStub).Create(npb.CreateNamespaceRequest(
            namespace=npb.Namespace(name="Bad!")))
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
