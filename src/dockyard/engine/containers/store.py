"""Containers on disk, as dockerd lays them out:

    <data-root>/containers/<id>/
      config.v2.json        the container (model.Container.to_disk); written last at create:
                            a directory without it is a create that did not finish
      hostconfig.json       its HostConfig
      hostname, hosts, resolv.conf      bind-mounted into the container
      <id>-json.log         its log (written by the shim), rotated as <id>-json.log.N
    <data-root>/containers/.<id>.removing/    a removal in progress (finished at next start)

Every file is written whole or not at all (fsutil.write_atomic; which writes are fsynced is
said where they are made). A kill -9 leaves either the old document or the new one.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

from dockyard.engine.containers.model import Container
from dockyard.fsutil import write_atomic

log = logging.getLogger("dockyard.engine")


class ContainerStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True, mode=0o710)

    def directory(self, cid: str) -> Path:
        return self.root / cid

    def prepare(self, cid: str) -> Path:
        d = self.directory(cid)
        d.mkdir(mode=0o710)
        return d

    def save(self, c: Container, *, host_config: bool = False) -> None:
        """Now, in this thread (at create: nothing else knows the container yet)."""
        d = Path(c.directory)
        if host_config:
            write_atomic(d / "hostconfig.json", json.dumps(c.host_config).encode())
        write_atomic(d / "config.v2.json", json.dumps(c.to_disk()).encode(), mode=0o600,
                     sync_dir=True)  # the container exists from here on

    async def commit(self, c: Container, *, host_config: bool = False) -> None:
        """Write the container's state as it is now, in a thread, one write at a time per
        container: saves asked while one is writing are folded into the next (which writes
        the newest state), so the file never goes back to an older one."""
        c.save_asked += 1
        wanted = c.save_asked
        async with c.save_lock:
            if c.save_done >= wanted and not host_config:
                return
            upto = c.save_asked
            doc = json.dumps(c.to_disk()).encode()
            host = json.dumps(c.host_config).encode() if host_config else None
            d = Path(c.directory)

            def write() -> None:
                if host is not None:
                    write_atomic(d / "hostconfig.json", host)
                write_atomic(d / "config.v2.json", doc, mode=0o600)

            try:
                await asyncio.to_thread(write)
            except FileNotFoundError:
                if d.exists():
                    raise  # else: removed meanwhile
            c.save_done = upto

    def load_all(self) -> tuple[list[Container], list[str]]:
        """(containers, ids of half-created ones, whose directories were removed)."""
        found: list[Container] = []
        broken: list[str] = []
        for entry in sorted(self.root.iterdir()):
            if entry.name.startswith("."):
                if entry.name.endswith(".removing"):
                    broken.append(entry.name[1:].removesuffix(".removing"))
                    shutil.rmtree(entry, ignore_errors=True)
                elif entry.name.endswith(".tmp"):
                    entry.unlink(missing_ok=True)
                continue
            try:
                doc = json.loads((entry / "config.v2.json").read_text())
                host_config = json.loads((entry / "hostconfig.json").read_text())
                found.append(Container.from_disk(doc, host_config, str(entry)))
            except (OSError, ValueError, KeyError, TypeError) as e:
                log.warning("removing unfinished container %s: %s", entry.name, e)
                broken.append(entry.name)
                shutil.rmtree(entry, ignore_errors=True)
        return found, broken

    def remove(self, cid: str) -> None:
        """Rename first (one atomic step: the container is gone), then delete."""
        d = self.directory(cid)
        gone = self.root / f".{cid}.removing"
        try:
            os.rename(d, gone)
        except FileNotFoundError:
            return
        shutil.rmtree(gone, ignore_errors=True)


def read_host_file(path: str, fallback: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return fallback


def write_network_files(c: Container, networks: Any, host_network: bool) -> None:
    """hostname, hosts and resolv.conf as dockerd writes them: at create, and again when
    the container's endpoints change (its addresses are in the hosts file, its networks say
    which resolver it uses)."""
    from dockyard.engine.containers import hostfiles, runspec
    from dockyard.engine.networks.endpoints import bridged, parse_link

    d = Path(c.directory)
    hc = c.host_config
    hostname = runspec.hostname(c)
    config = getattr(networks, "config", None)
    resolv_path = getattr(config, "resolv_conf", "/etc/resolv.conf")
    host_resolv = read_host_file(resolv_path, "")
    dns = hc.get("Dns") or list(getattr(config, "dns", []) or [])
    search = hc.get("DnsSearch") or list(getattr(config, "dns_search", []) or [])
    options = hc.get("DnsOptions") or list(getattr(config, "dns_opts", []) or [])
    gateway = networks.host_gateway() if networks is not None else None
    endpoints = (c.network_settings or {}).get("Networks") or {}
    addresses = [a for e in endpoints.values()
                 for a in (e.get("IPAddress"), e.get("GlobalIPv6Address")) if a]
    links: list[hostfiles.Link] = []
    bridge = endpoints.get("bridge")
    if bridge is not None and networks is not None:
        for link in hc.get("Links") or []:
            name, alias = parse_link(link)
            try:
                other = networks.daemon.containers.lookup(name)
            except Exception:  # gone since: dockerd too writes only what it finds
                continue
            theirs = (other.network_settings.get("Networks") or {}).get("bridge") or {}
            found = tuple(a for a in (theirs.get("IPAddress"),
                                      theirs.get("GlobalIPv6Address")) if a)
            links.append(hostfiles.Link(alias, other.name, runspec.hostname(other), found))
    hosts = hostfiles.hosts_file(
        hc.get("ExtraHosts") or [],
        read_host_file("/etc/hosts", "127.0.0.1\tlocalhost\n") if host_network else None,
        host_gateway=gateway, links=links, addresses=addresses, hostname=hostname,
        domainname=c.config.get("Domainname") or "")
    if host_network:
        mode = "host"
    elif not bridged(c):
        mode = "plain"
    elif any(n != "bridge" for n in endpoints) or (not endpoints and any(
            n != "bridge" for n in _configured(c))):
        mode = "internal"
    else:
        mode = "legacy"
    resolv = hostfiles.resolv_conf(host_resolv, dns, search, options, mode=mode,
                                   host_path=resolv_path)
    # No fsync, as dockerd: a power cut may leave them empty, never the container's record.
    write_atomic(d / "hostname", f"{hostname}\n".encode(), sync=False)
    write_atomic(d / "hosts", hosts.encode(), sync=False)
    write_atomic(d / "resolv.conf", resolv.encode(), sync=False)


def _configured(c: Container) -> dict[str, Any]:
    from dockyard.engine.networks.endpoints import configured

    return configured(c)
