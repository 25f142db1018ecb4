"""Images emit events that a subscriber with a filter sees, in order, and nothing else;
clients publish and forward events too."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import any_pb2, field_mask_pb2

from dockyard.api.events import image_pb2 as events
from dockyard.api.events import task_pb2 as task_events
from dockyard.api.services.events.v1 import events_pb2 as epb
from dockyard.api.services.events.v1 import events_pb2_grpc as erpc
from dockyard.api.services.images.v1 import images_pb2 as pb
from dockyard.api.services.images.v1 import images_pb2_grpc as rpc
from dockyard.api.types.descriptor_pb2 import Descriptor
from dockyard.api.types.event_pb2 import Envelope
from tests.integration.containerd.daemon import Daemon, Subscriber, ns

MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def target(n: int) -> Descriptor:
    return Descriptor(media_type=MANIFEST, digest="sha256:" + f"{n:02x}" * 32, size=100 + n)


def unpacked(env: Envelope, kind: type) -> object:
    msg = kind()
    assert env.event.Unpack(msg), env.event.type_url
    return msg


def test_image_crud_emits_events_a_filtered_subscriber_sees(daemon: Daemon,
                                                            namespace: str) -> None:
    stub = daemon.stub(rpc.ImagesStub)
    md = ns(namespace)
    images = Subscriber(daemon, f'namespace=={namespace},topic~="^/images/"')
    deletes = Subscriber(daemon, f'topic=="/images/delete",namespace=={namespace}')
    try:
        name = "docker.io/library/busybox:latest"
        made = stub.Create(pb.CreateImageRequest(image=pb.Image(
            name=name, target=target(1), labels={"a": "1"})), metadata=md).image
        assert made.created_at.seconds > 0 and made.target == target(1)
        with pytest.raises(grpc.RpcError) as e:
            stub.Create(pb.CreateImageRequest(image=pb.Image(name=name, target=target(1))),
                        metadata=md)
        assert e.value.code() == grpc.StatusCode.ALREADY_EXISTS
        assert e.value.details() == f'image "{name}": already exists'
        stub.Update(pb.UpdateImageRequest(
            image=pb.Image(name=name, labels={"b": "2"}),
            update_mask=field_mask_pb2.FieldMask(paths=["labels.b"])), metadata=md)
        stub.Update(pb.UpdateImageRequest(image=pb.Image(name=name, target=target(2))),
                    metadata=md)
        got = stub.Get(pb.GetImageRequest(name=name), metadata=md).image
        assert got.target == target(2) and dict(got.labels) == {}
        stub.Create(pb.CreateImageRequest(image=pb.Image(name="other:1", target=target(3),
                                                         labels={"app": "x"})), metadata=md)
        listed = stub.List(pb.ListImagesRequest(filters=["labels.app==x"]), metadata=md)
        assert [i.name for i in listed.images] == ["other:1"]
        stub.Delete(pb.DeleteImageRequest(name=name, sync=True), metadata=md)
        with pytest.raises(grpc.RpcError) as e:
            stub.Get(pb.GetImageRequest(name=name), metadata=md)
        assert e.value.code() == grpc.StatusCode.NOT_FOUND
        assert e.value.details() == f'image "{name}": not found'

        seen = [images.get() for _ in range(5)]
        assert [e.topic for e in seen] == ["/images/create", "/images/update",
                                          "/images/update", "/images/create",
                                          "/images/delete"]
        assert all(e.namespace == namespace for e in seen)
        create = unpacked(seen[0], events.ImageCreate)
        assert (create.name, dict(create.labels)) == (name, {"a": "1"})
        assert unpacked(seen[1], events.ImageUpdate).labels == {"a": "1", "b": "2"}
        assert unpacked(seen[4], events.ImageDelete).name == name
        assert images.nothing_more()
        assert [e.topic for e in [deletes.get()]] == ["/images/delete"]
        assert deletes.nothing_more()
    finally:
        images.close()
        deletes.close()


def test_filters_on_event_fields_and_client_published_events(daemon: Daemon,
                                                             namespace: str) -> None:
    stub = daemon.stub(erpc.EventsStub)
    exits = Subscriber(daemon, f'topic=="/tasks/exit",event.container_id==c2,'
                               f'namespace=={namespace}')
    try:
        for cid in ("c1", "c2"):
            packed = any_pb2.Any()
            packed.Pack(task_events.TaskExit(container_id=cid, exit_status=3))
            stub.Publish(epb.PublishRequest(topic="/tasks/exit", event=packed),
                         metadata=ns(namespace))
        forwarded = Envelope(namespace=namespace, topic="/tasks/exit")
        forwarded.timestamp.FromSeconds(1_000_000_000)
        forwarded.event.Pack(task_events.TaskExit(container_id="c2", exit_status=4))
        stub.Forward(epb.ForwardRequest(envelope=forwarded))
        first, second = exits.get(), exits.get()
        assert unpacked(first, task_events.TaskExit).exit_status == 3
        assert second == forwarded
        assert exits.nothing_more()
    finally:
        exits.close()
    with pytest.raises(grpc.RpcError) as e:
        stub.Publish(epb.PublishRequest(topic="tasks/exit", event=any_pb2.Any()),
                     metadata=ns(namespace))
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    bad = stub.Subscribe(epb.SubscribeRequest(filters=['topic~="("']), timeout=5)
    with pytest.raises(grpc.RpcError) as e:
        next(bad)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
