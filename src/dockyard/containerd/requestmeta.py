"""What a request carries beside its message: gRPC metadata headers, as containerd reads them.

    containerd-namespace   the namespace of every namespaced call (required: a call without
                           it fails with FailedPrecondition "namespace is required")
    containerd-lease       a lease that what the call makes is added to (optional)

containerd's own header names, so that its clients (ctr, nerdctl, the CRI plugin's client)
work unchanged; we read no other name.
"""

from __future__ import annotations

import grpc

from dockyard.containerd import identifiers
from dockyard.containerd.errors import FailedPrecondition, InvalidArgument

NAMESPACE_HEADER = "containerd-namespace"
LEASE_HEADER = "containerd-lease"


def header(context: grpc.aio.ServicerContext, name: str) -> str:
    """The value of header `name` ("" when absent); the first one if sent twice."""
    for key, value in context.invocation_metadata() or ():
        if key == name:
            return value if isinstance(value, str) else value.decode()
    return ""


def namespace(context: grpc.aio.ServicerContext) -> str:
    ns = header(context, NAMESPACE_HEADER)
    if not ns:
        raise FailedPrecondition("namespace is required")
    try:
        return identifiers.validate(ns)
    except InvalidArgument as e:
        raise InvalidArgument(f"namespace validation: {e}") from None


def lease(context: grpc.aio.ServicerContext) -> str | None:
    return header(context, LEASE_HEADER) or None
