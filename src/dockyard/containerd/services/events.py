"""Events service: publish into, and subscribe to, the supervisor's event bus (events.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
from google.protobuf import empty_pb2

from dockyard.api.services.events.v1 import events_pb2 as pb
from dockyard.api.services.events.v1 import events_pb2_grpc as rpc
from dockyard.api.types.event_pb2 import Envelope
from dockyard.containerd import identifiers, requestmeta
from dockyard.containerd.errors import InvalidArgument
from dockyard.containerd.events import validate_topic
from dockyard.containerd.service import Registration
from dockyard.containerd.supervisor import Supervisor


class EventsService(rpc.EventsServicer):
    def __init__(self, sup: Supervisor) -> None:
        self.sup = sup

    async def Publish(self, request: pb.PublishRequest,
                      context: grpc.aio.ServicerContext) -> empty_pb2.Empty:
        ns = requestmeta.namespace(context)
        if not request.HasField("event"):
            raise InvalidArgument("event must not be empty")
        self.sup.events.publish(ns, request.topic, request.event)
        return empty_pb2.Empty()

    async def Forward(self, request: pb.ForwardRequest,
                      context: grpc.aio.ServicerContext) -> empty_pb2.Empty:
        env = request.envelope
        identifiers.validate(env.namespace)
        validate_topic(env.topic)
        self.sup.events.forward(env)
        return empty_pb2.Empty()

    async def Subscribe(self, request: pb.SubscribeRequest,
                        context: grpc.aio.ServicerContext) -> AsyncIterator[Envelope]:
        with self.sup.events.subscribe(request.filters) as subscription:
            await context.send_initial_metadata(())  # the subscriber knows it is listening
            async for env in subscription:
                yield env


def service(sup: Supervisor) -> Registration:
    servicer = EventsService(sup)
    return Registration("dockyard.services.events.v1.Events",
                        lambda server: rpc.add_EventsServicer_to_server(servicer, server))
