"""A client of dockyard-containerd: the gRPC stubs behind one channel and one namespace, and the
few steps that every caller composes the same way (read an image's config through the content
service, make a container from an image, run it). `dockyard-ctr`, the benchmarks and the tests
use it; the engine will too.

Synchronous (grpcio's blocking stubs): callers that need concurrency use threads, which the
channel supports.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import any_pb2

from dockyard.api.services.containers.v1 import containers_pb2 as containers_pb
from dockyard.api.services.containers.v1 import containers_pb2_grpc as containers_rpc
from dockyard.api.services.content.v1 import content_pb2 as content_pb
from dockyard.api.services.content.v1 import content_pb2_grpc as content_rpc
from dockyard.api.services.images.v1 import images_pb2 as images_pb
from dockyard.api.services.images.v1 import images_pb2_grpc as images_rpc
from dockyard.api.services.snapshots.v1 import snapshots_pb2 as snapshots_pb
from dockyard.api.services.snapshots.v1 import snapshots_pb2_grpc as snapshots_rpc
from dockyard.api.services.tasks.v1 import tasks_pb2 as tasks_pb
from dockyard.api.services.tasks.v1 import tasks_pb2_grpc as tasks_rpc
from dockyard.api.services.transfer.v1 import transfer_pb2 as transfer_pb
from dockyard.api.services.transfer.v1 import transfer_pb2_grpc as transfer_rpc
from dockyard.api.services.version.v1 import version_pb2_grpc as version_rpc
from dockyard.image.descriptor import Descriptor
from dockyard.image.layers.chain import chain_id
from dockyard.image.library import Resolved, resolve
from dockyard.image.platforms import Platform
from dockyard.runtime.specgen import CONTAINER_CAPS, default_spec

DEFAULT_ADDRESS = "/run/dockyard/containerd/containerd.sock"
DEFAULT_NAMESPACE = "default"
SPEC_TYPE = "types.containerd.io/opencontainers/runtime-spec/1/Spec"
RUNTIME = "io.containerd.runc.v2"
DEFAULT_SNAPSHOTTER = os.environ.get("CONTAINERD_SNAPSHOTTER", "overlayfs")  # ctr's default


@dataclass(frozen=True)
class Image:
    name: str
    target: Descriptor
    resolved: Resolved

    @property
    def chain_id(self) -> str:
        return str(chain_id(self.resolved.config.rootfs_diff_ids))


class Client:
    def __init__(self, address: str = DEFAULT_ADDRESS, namespace: str = DEFAULT_NAMESPACE,
                 timeout: float | None = None) -> None:
        target = address if address.startswith("unix:") else f"unix://{address}"
        self.channel = grpc.insecure_channel(target, options=[
            ("grpc.max_receive_message_length", 16 << 20)])
        self.namespace = namespace
        self.metadata = (("containerd-namespace", namespace),)
        self.timeout = timeout
        self.containers = containers_rpc.ContainersStub(self.channel)
        self.content = content_rpc.ContentStub(self.channel)
        self.images = images_rpc.ImagesStub(self.channel)
        self.snapshots = snapshots_rpc.SnapshotsStub(self.channel)
        self.tasks = tasks_rpc.TasksStub(self.channel)
        self.transfer = transfer_rpc.TransferStub(self.channel)
        self.version = version_rpc.VersionStub(self.channel)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.channel.close()

    def call(self, method: Any, request: Any) -> Any:
        """A unary call in this client's namespace."""
        return method(request, metadata=self.metadata, timeout=self.timeout)

    def stream(self, method: Any, request: Any) -> Iterator[Any]:
        return method(request, metadata=self.metadata, timeout=self.timeout)

    # -- images -----------------------------------------------------------------------------

    def read_blob(self, digest: str) -> bytes:
        parts = [r.data for r in self.stream(self.content.Read,
                                             content_pb.ReadContentRequest(digest=digest))]
        return b"".join(parts)

    def image(self, name: str, platform: Platform | None = None) -> Image:
        """The image `name` resolved for `platform` (the host's): manifest and config."""
        got = self.call(self.images.Get, images_pb.GetImageRequest(name=name)).image
        target = Descriptor(got.target.media_type, got.target.digest, got.target.size)
        return Image(got.name, target,
                     resolve(lambda d: self.read_blob(str(d.digest)), target, platform))

    def pull(self, ref: str, *, unpack: bool = True, mirrors: Sequence[str] = (),
             insecure: Sequence[str] = (), hosts: dict[str, Any] | None = None
             ) -> Iterator[transfer_pb.Progress]:
        registry = transfer_pb.RegistryConfig(registry_mirrors=list(mirrors),
                                              insecure_registries=list(insecure))
        for host, entry in (hosts or {}).items():
            registry.hosts[host].CopyFrom(transfer_pb.RegistryHost(**entry))
        return self.stream(self.transfer.Pull, transfer_pb.PullRequest(
            ref=ref, unpack=unpack, registry=registry))

    def import_archive(self, path: str, *, unpack: bool = True, base_name: str = ""
                       ) -> Iterator[transfer_pb.Progress]:
        """Load the image archive at `path` (streamed to the supervisor)."""
        def chunks() -> Iterator[transfer_pb.ImportRequest]:
            yield transfer_pb.ImportRequest(no_unpack=not unpack, base_name=base_name)
            with open(path, "rb") as f:
                while data := f.read(1 << 20):
                    yield transfer_pb.ImportRequest(data=data)
        return self.stream(self.transfer.Import, chunks())

    def export_archive(self, path: str, names: Sequence[str]) -> None:
        """Write an archive of `names` to `path` (whole, or not at all)."""
        tmp = f"{path}.{os.getpid()}.tmp"
        try:
            with open(tmp, "wb") as f:
                for r in self.stream(self.transfer.Export,
                                     transfer_pb.ExportRequest(names=list(names))):
                    f.write(r.data)
            os.replace(tmp, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    # -- containers ---------------------------------------------------------------------------

    def new_container(self, cid: str, image: Image, args: Sequence[str] = (), *,
                      terminal: bool = False, env: Sequence[str] = (),
                      cwd: str | None = None, snapshotter: str = DEFAULT_SNAPSHOTTER,
                      labels: dict[str, str] | None = None) -> list[Any]:
        """A container record for `image` with a fresh snapshot `cid` on its top layer;
        returns the snapshot's mounts (what tasks.Create wants as rootfs)."""
        mounts = self.call(self.snapshots.Prepare, snapshots_pb.PrepareSnapshotRequest(
            snapshotter=snapshotter, key=cid, parent=image.chain_id)).mounts
        spec = image_spec(image.resolved.config.config, args, cid=cid,
                          namespace=self.namespace, terminal=terminal, env=env, cwd=cwd)
        packed = any_pb2.Any(type_url=SPEC_TYPE, value=json.dumps(spec).encode())
        try:
            self.call(self.containers.Create, containers_pb.CreateContainerRequest(
                container=containers_pb.Container(
                    id=cid, image=image.name, labels=labels or {}, spec=packed,
                    runtime=containers_pb.Container.Runtime(name=RUNTIME),
                    snapshotter=snapshotter, snapshot_key=cid)))
        except BaseException:
            self.call(self.snapshots.Remove, snapshots_pb.RemoveSnapshotRequest(
                snapshotter=snapshotter, key=cid))
            raise
        return list(mounts)

    def remove_container(self, cid: str, snapshotter: str = DEFAULT_SNAPSHOTTER) -> None:
        """The container record and its snapshot (what `ctr run --rm` removes)."""
        self.call(self.containers.Delete, containers_pb.DeleteContainerRequest(id=cid))
        try:
            self.call(self.snapshots.Remove, snapshots_pb.RemoveSnapshotRequest(
                snapshotter=snapshotter, key=cid))
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.NOT_FOUND:
                raise

    def create_task(self, cid: str, mounts: Sequence[Any] = (), *, terminal: bool = False,
                    stdin: bool = False, log_path: str = "", log_max_size: int = 0,
                    log_max_file: int = 1) -> int:
        return self.call(self.tasks.Create, tasks_pb.CreateTaskRequest(
            container_id=cid, rootfs=list(mounts), terminal=terminal, stdin=stdin,
            log_path=log_path, log_max_size=log_max_size, log_max_file=log_max_file)).pid

    def start(self, cid: str, exec_id: str = "") -> int:
        return self.call(self.tasks.Start, tasks_pb.StartRequest(container_id=cid,
                                                                 exec_id=exec_id)).pid

    def wait(self, cid: str, exec_id: str = "") -> int:
        return self.call(self.tasks.Wait, tasks_pb.WaitRequest(container_id=cid,
                                                               exec_id=exec_id)).exit_status

    def delete_task(self, cid: str) -> int:
        return self.call(self.tasks.Delete,
                         tasks_pb.DeleteTaskRequest(container_id=cid)).exit_status

    def run(self, cid: str, image: Image, args: Sequence[str] = ()) -> int:
        """Create, start, wait for and remove a container, as `ctr run --rm` does; returns
        its exit status (no output is attached)."""
        mounts = self.new_container(cid, image, args)
        try:
            self.create_task(cid, mounts)
            try:
                self.start(cid)
                return self.wait(cid)
            finally:
                self.delete_task(cid)
        finally:
            self.remove_container(cid)


def image_spec(config: Any, args: Sequence[str], *, cid: str, namespace: str,
               terminal: bool = False, env: Sequence[str] = (), cwd: str | None = None
               ) -> dict[str, Any]:
    """The runtime spec containerd's client would make for an image (oci.WithImageConfig on
    its default spec): the image's Env over the default PATH, Entrypoint+Cmd unless `args`
    are given, WorkingDir, a numeric User; cgroups at /<namespace>/<id>."""
    spec = default_spec(list(args) or [*(config.get("Entrypoint") or []),
                                       *(config.get("Cmd") or [])] or ["sh"], terminal=terminal)
    process = spec["process"]
    merged: dict[str, str] = {}
    for item in [*process["env"][:1], *(config.get("Env") or []), *env]:
        key = item.partition("=")[0]
        merged[key] = item
    process["env"] = list(merged.values())
    if terminal:
        process["env"].append("TERM=xterm")
    process["cwd"] = cwd or config.get("WorkingDir") or "/"
    user = config.get("User") or ""
    uid, _, gid = user.partition(":")
    if uid.isdigit():
        process["user"] = {"uid": int(uid), "gid": int(gid) if gid.isdigit() else 0}
    process["capabilities"] = {k: list(CONTAINER_CAPS)
                               for k in ("bounding", "effective", "permitted")}
    process["noNewPrivileges"] = False
    spec["root"] = {"path": "rootfs", "readonly": False}
    spec.pop("hostname", None)
    spec["linux"]["cgroupsPath"] = f"/{namespace}/{cid}"
    return spec


def default_address() -> str:
    return os.environ.get("CONTAINERD_ADDRESS", DEFAULT_ADDRESS)
