"""Published ports (`docker run -p`, `-P`) as dockerd 28 does them, for the bridge networks.

Four steps, each its own function, because they happen at different times:

    check(HostConfig)                 at create: refuse a bad PortBindings with dockerd's 400
    requests(Config, HostConfig)      at start: what to publish (PortBindings, and with -P
                                      every exposed port not bound, on a random host port)
    PortAllocator.allocate(...)       at start: reserve host ports, all or nothing
                                      (portalloc.py, which says why they are held sockets)
    nft_mappings / ports_document /   after: the DNAT rules, NetworkSettings.Ports and the
    list_ports                        "Ports" of GET /containers/json

This module parses and writes documents and touches no socket; portalloc.py imports its
PortRequest and Binding, so it must not import portalloc.py back.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dockyard.engine.errors import InvalidParameter
from dockyard.network import nftrules

PROTOCOLS = nftrules.PROTOCOLS

_DIGITS = re.compile(r"[0-9]+")


@dataclass(frozen=True)
class PortRequest:
    """One requested binding: container port (or range) → host address and port (or range).

    host_ip "" is every address; host_port 0 is a random port. A container range maps onto a
    host range of the same length; a single container port onto the first free port of a host
    range."""

    proto: str
    container_port: int
    container_port_end: int | None = None
    host_ip: str = ""
    host_port: int = 0
    host_port_end: int | None = None


@dataclass(frozen=True)
class Binding:
    """One host port actually reserved for one container port."""

    proto: str
    container_port: int
    host_ip: str
    host_port: int


# --- parsing HostConfig.PortBindings and Config.ExposedPorts ---------------------------------

def check(host_config: Mapping[str, Any]) -> None:
    """Refuse, at create, PortBindings that dockerd refuses (InvalidParameter, 400)."""
    for key, values in _port_bindings(host_config).items():
        _bound_requests(key, values)


def requests(config: Mapping[str, Any], host_config: Mapping[str, Any]) -> list[PortRequest]:
    """What to publish: every PortBindings entry and, with PublishAllPorts, every exposed port
    that has no binding, on a random port of every host address."""
    out: list[PortRequest] = []
    bound: set[tuple[str, int, int | None]] = set()
    for key, values in _port_bindings(host_config).items():
        reqs = _bound_requests(key, values)
        if reqs:
            bound.add(_parse_key(key))
        out.extend(reqs)
    if host_config.get("PublishAllPorts"):
        for proto, port, end in _exposed(config):
            if (proto, port, end) not in bound:
                out.append(PortRequest(proto, port, end))
    return sorted(out, key=lambda r: (r.container_port, PROTOCOLS.index(r.proto)))


def _port_bindings(host_config: Mapping[str, Any]) -> Mapping[str, Any]:
    bindings = host_config.get("PortBindings") or {}
    if not isinstance(bindings, Mapping):
        raise InvalidParameter(f"invalid PortBindings: {bindings!r}")
    return bindings


def _bound_requests(key: str, values: Any) -> list[PortRequest]:
    proto, port, end = _parse_key(key)
    out = []
    for value in values or ():
        value = value or {}
        if not isinstance(value, Mapping):
            raise InvalidParameter(f"invalid port binding for {key}: {value!r}")
        host_ip = _parse_host_ip(str(value.get("HostIp") or ""))
        raw = str(value.get("HostPort") or "")
        host_port, host_end = _parse_host_port(raw)
        container_raw = key.partition("/")[0]
        if end is not None and host_port and \
                (host_end or host_port) - host_port != end - port:
            # go-connections nat.ParsePortSpec, which the CLI runs on -p
            raise InvalidParameter("invalid ranges specified for container and host Ports: "
                                   f"{container_raw} and {raw}")
        out.append(PortRequest(proto, port, end, host_ip, host_port, host_end))
    return out


def _parse_key(key: str) -> tuple[str, int, int | None]:
    """"80/tcp" → ("tcp", 80, None); "8000-8010/udp" → ("udp", 8000, 8010); no proto is tcp.

    dockerd (daemon/container.go validatePortBindings) refuses a port it cannot parse with
    `invalid port specification: "<port>"`; the protocol check is go-connections'."""
    raw, _, proto = str(key).partition("/")
    proto = (proto or "tcp").lower()
    start, end = _parse_range(raw)
    if start <= 0:
        raise InvalidParameter(f"invalid port specification: {_quote(raw)}")
    if proto not in PROTOCOLS:
        raise InvalidParameter(f"invalid proto: {proto}")
    return proto, start, end


def _parse_host_port(raw: str) -> tuple[int, int | None]:
    """HostPort "" or "0" → (0, None), random; "8080" → (8080, None); "8000-8010" → a range."""
    if raw == "":
        return 0, None
    start, end = _parse_range(raw.partition("/")[0])
    if end is not None and start == 0:
        start = -1   # dockerd's allocator refuses 0-N: "invalid port range"
    if start < 0:
        raise InvalidParameter(f"invalid port specification: {_quote(raw)}")
    return start, end


def _parse_range(raw: str) -> tuple[int, int | None]:
    """A port or "start-end" as go-connections parses it (digits only, ≤ 65535, end ≥ start);
    -1 for anything else. A range of one port is that port."""
    parts = raw.split("-")
    if len(parts) > 2 or not all(_DIGITS.fullmatch(p) for p in parts):
        return -1, None
    start, end = int(parts[0]), int(parts[-1])
    if end > 65535 or end < start:
        return -1, None
    return start, (end if end != start else None)


def _parse_host_ip(raw: str) -> str:
    """"" stays ""; an address is normalised ("[::1]" → "::1", "::ffff:1.2.3.4" → "1.2.3.4")."""
    if raw == "":
        return ""
    text = raw[1:-1] if raw.startswith("[") and raw.endswith("]") else raw
    try:
        if "%" in text:
            raise ValueError(text)
        address = ipaddress.ip_address(text)
    except ValueError:
        # go-connections nat.ParsePortSpec
        raise InvalidParameter(f"invalid IP address: {raw}") from None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return str(address)


def _exposed(config: Mapping[str, Any]) -> list[tuple[str, int, int | None]]:
    """Config.ExposedPorts parsed; keys that are no port are left out (dockerd does not refuse
    them either, it exposes port 0)."""
    out = []
    for key in config.get("ExposedPorts") or {}:
        try:
            out.append(_parse_key(key))
        except InvalidParameter:
            continue
    return out


def _quote(text: str) -> str:
    """Go's %q for the strings that reach it here."""
    return json.dumps(text, ensure_ascii=False)


# --- what the API shows, and the DNAT rules ---------------------------------------------------

def ports_document(config: Mapping[str, Any],
                   bindings: Sequence[Binding]) -> dict[str, list[dict[str, str]] | None]:
    """NetworkSettings.Ports of a running container: every exposed port, null unless
    published, keys in the order Go writes a map (sorted as strings)."""
    doc: dict[str, list[dict[str, str]] | None] = {}
    for proto, port, end in _exposed(config):
        for p in range(port, (end or port) + 1):
            doc[f"{p}/{proto}"] = None
    for b in _sorted(bindings):
        entries = doc.get(f"{b.container_port}/{b.proto}") or []
        entries.append({"HostIp": b.host_ip, "HostPort": str(b.host_port)})
        doc[f"{b.container_port}/{b.proto}"] = entries
    return {key: doc[key] for key in sorted(doc)}


def list_ports(config: Mapping[str, Any], bindings: Sequence[Binding]) -> list[dict[str, Any]]:
    """"Ports" of GET /containers/json: one entry per published binding, one without IP and
    PublicPort per exposed port that is not published. dockerd walks a Go map (no fixed
    order); this is NetworkSettings.Ports' order, which is at least stable."""
    out: list[dict[str, Any]] = []
    for key, entries in ports_document(config, bindings).items():
        port, _, proto = key.partition("/")
        if not entries:
            out.append({"PrivatePort": int(port), "Type": proto})
        for entry in entries or ():
            out.append({"IP": entry["HostIp"], "PrivatePort": int(port),
                        "PublicPort": int(entry["HostPort"]), "Type": proto})
    return out


def nft_mappings(bindings: Sequence[Binding], container_ip: str,
                 container_ip6: str | None = None) -> list[nftrules.PortMapping]:
    """One DNAT per binding; 0.0.0.0 and :: become "every address" (host_ip None). IPv6
    bindings need the container's IPv6 address and are left out without one."""
    out = []
    for b in bindings:
        host = ipaddress.ip_address(b.host_ip)
        if host.version == 6 and not container_ip6:
            continue
        target = ipaddress.ip_address(container_ip6 if host.version == 6 else container_ip)
        out.append(nftrules.PortMapping(
            proto=b.proto, container_ip=target, container_port=b.container_port,
            host_port=b.host_port, host_ip=None if host.is_unspecified else host))
    return out


def _sorted(bindings: Sequence[Binding]) -> list[Binding]:
    """Within a port as dockerd lists them: by host port, then IPv4 before IPv6."""
    def key(b: Binding) -> tuple[int, int, bytes]:
        address = ipaddress.ip_address(b.host_ip)
        return b.host_port, address.version, address.packed
    return sorted(bindings, key=key)
