"""The supervisor's gRPC API: .proto files of our own, modelled on containerd's services,
and the Python stubs generated from them (scripts/gen-protos.sh; committed, never edited).

    types/                  dockyard.types: Mount, Descriptor, Platform, Metric, Process,
                            Envelope
    events/                 dockyard.events: the message of each event topic
    services/<name>/v1/     dockyard.services.<name>.v1: namespaces, content, snapshots,
                            images, containers, leases, events, tasks, transfer, version

A proto imports another by its path from `src` ("dockyard/api/types/mount.proto"), so its
stubs import the other's as this package ("from dockyard.api.types import mount_pb2").
The namespace of a request travels as containerd's does: the gRPC metadata header
`containerd-namespace`; a lease as `containerd-lease`.
"""
