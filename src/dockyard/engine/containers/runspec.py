"""What a start needs to make the container's OCI spec: the namespaces to join (the network
mode), the files to bind-mount (hostname, hosts, resolv.conf) and its mount points, the
cgroup parent, the layers to read /etc/passwd from. spec.py (make_spec) turns that into
Docker's spec.

Network modes: "none" and "host" as Docker has them; "container:<id>" joins that container's
network namespace; "bridge"/"default" and user-defined networks join the sandbox the
networks service made for the container (networks/endpoints.py).
"""

from __future__ import annotations

import socket
from collections.abc import Sequence
from typing import Any

from dockyard.engine.containers import spec as docker_spec
from dockyard.engine.containers.model import Container
from dockyard.engine.errors import Conflict


def hostname(c: Container) -> str:
    if c.host_config.get("NetworkMode") == "host":
        return socket.gethostname()
    return c.config.get("Hostname") or c.id[:12]


def file_mounts(c: Container) -> list[dict[str, Any]]:
    opts = ["rbind", "rprivate"]
    ro = ["ro"] if c.host_config.get("ReadonlyRootfs") else []
    return [{"destination": dest, "type": "bind", "source": src, "options": [*opts, *ro]}
            for dest, src in (("/etc/resolv.conf", c.resolv_conf_path),
                              ("/etc/hostname", c.hostname_path),
                              ("/etc/hosts", c.hosts_path))]


def netns_path(c: Container, peer: Container | None, sandbox: str | None = None) -> str | None:
    """The network namespace to join: the sandbox the networks service made (bridge
    networks), the peer's (container:<id>), else None (host, none)."""
    if sandbox:
        return sandbox
    mode = c.host_config.get("NetworkMode") or ""
    if not mode.startswith("container:"):
        return None
    if peer is None or not peer.state.running:
        target = mode.partition(":")[2]
        raise Conflict(f"cannot join network namespace of a non running container: "
                       f"container {target} is {peer.state.status if peer else 'missing'}")
    return f"/proc/{peer.state.pid}/ns/net"


def make(c: Container, cgroup_parent: str, peer: Container | None,
         rootfs_mounts: Sequence[Any] = (), sandbox: str | None = None) -> dict[str, Any]:
    from dockyard.engine.containers import mounts as points

    parent = c.host_config.get("CgroupParent") or cgroup_parent
    mounts = [*points.oci(c), *file_mounts(c)]
    net = netns_path(c, peer, sandbox)
    return docker_spec.make_spec(docker_spec.SpecInput(
        id=c.id, config=c.config, host_config=c.host_config, mounts=tuple(mounts),
        cgroup_parent=parent, netns_path=net, hostname=hostname(c),
        rootfs=tuple(points.layer_dirs(list(rootfs_mounts)))))


def check(c: Container) -> None:
    """What the spec would refuse, found at create (as dockerd does) rather than at start."""
    docker_spec.check(docker_spec.SpecInput(id=c.id, config=c.config,
                                            host_config=c.host_config))
