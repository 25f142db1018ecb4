"""A Write stream driven one request at a time, as containerd's remote writer drives it."""

from __future__ import annotations

import queue
import time
from typing import Any

import grpc

from dockyard.api.services.content.v1 import content_pb2 as pb
from dockyard.api.services.content.v1 import content_pb2_grpc as rpc
from tests.integration.containerd.daemon import Daemon, ns


class WriteStream:
    def __init__(self, d: Daemon, namespace: str, metadata: list[tuple[str, str]] | None = None
                 ) -> None:
        self._requests: queue.Queue[Any] = queue.Queue()
        self.call = d.stub(rpc.ContentStub).Write(iter(self._requests.get, None),
                                                  metadata=ns(namespace) + (metadata or []))

    def send(self, **fields: Any) -> pb.WriteContentResponse:
        self._requests.put(pb.WriteContentRequest(**fields))
        return next(self.call)

    def drop(self) -> None:
        """Break the stream off, as a client that dies does."""
        self.call.cancel()
        self._requests.put(None)

    def close(self) -> None:
        self._requests.put(None)


def open_stream(d: Daemon, namespace: str, ref: str, timeout: float = 5,
                **fields: Any) -> tuple[WriteStream, pb.WriteContentResponse]:
    """A stream on `ref` and its first STAT; waits out the moment in which the supervisor
    still holds the ref for a stream that was just dropped."""
    deadline = time.monotonic() + timeout
    while True:
        stream = WriteStream(d, namespace)
        try:
            return stream, stream.send(action=pb.STAT, ref=ref, **fields)
        except grpc.RpcError as e:
            stream.close()
            if e.code() != grpc.StatusCode.UNAVAILABLE or time.monotonic() > deadline:
                raise
            time.sleep(0.05)
