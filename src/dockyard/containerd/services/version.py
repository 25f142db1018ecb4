"""Version service: which supervisor answers."""

from __future__ import annotations

import grpc
from google.protobuf import empty_pb2

from dockyard.api.services.version.v1 import version_pb2 as pb
from dockyard.api.services.version.v1 import version_pb2_grpc as rpc
from dockyard.containerd.release import REVISION, version
from dockyard.containerd.service import Registration
from dockyard.containerd.supervisor import Supervisor


class VersionService(rpc.VersionServicer):
    def __init__(self) -> None:
        self.response = pb.VersionResponse(version=version(), revision=REVISION)

    async def Version(self, request: empty_pb2.Empty,
                      context: grpc.aio.ServicerContext) -> pb.VersionResponse:
        return self.response


def service(sup: Supervisor) -> Registration:
    servicer = VersionService()
    return Registration("dockyard.services.version.v1.Version",
                        lambda server: rpc.add_VersionServicer_to_server(servicer, server))
