"""The /etc/hosts and /etc/resolv.conf a container gets (none, host and container networks:
the bridge's come with the networking issue), from the host's files and the container's
--add-host, --dns, --dns-search and --dns-option, as dockerd writes them.

    hosts        the localhost lines (the host's file for host networking), then each
                 ExtraHosts "name:ip" (or "name=ip") as "ip<TAB>name"
    resolv.conf  the host's, with its nameserver, search/domain and options lines replaced
                 by the container's --dns, --dns-search and --dns-option when it gives them
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from dockyard.engine.errors import InvalidParameter

DEFAULT_HOSTS = ("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
                 "fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\n"
                 "ff02::2\tip6-allrouters\n")


def parse_extra_host(entry: str) -> tuple[str, str]:
    """("name", "ip") of an ExtraHosts entry; InvalidParameter in dockerd's words."""
    sep = "=" if "=" in entry else ":"
    name, found, ip = entry.partition(sep)
    if not found or not name:
        raise InvalidParameter(f"invalid extra host entry: {entry!r}: expected name:ip")
    if ip.startswith("[") and ip.endswith("]"):
        ip = ip[1:-1]
    if ip == "host-gateway":
        raise InvalidParameter(f"invalid extra host entry: {entry!r}: host-gateway needs a "
                               "bridge network, which comes with the networking issue")
    try:
        ipaddress.ip_address(ip)
    except ValueError:
        raise InvalidParameter(f"invalid IP address in add-host: {ip!r}") from None
    return name, ip


def hosts_file(extra_hosts: Sequence[str], host_hosts: str | None = None) -> str:
    """The container's /etc/hosts; `host_hosts` is the host's file (host networking)."""
    text = host_hosts if host_hosts is not None else DEFAULT_HOSTS
    if text and not text.endswith("\n"):
        text += "\n"
    for entry in extra_hosts:
        name, ip = parse_extra_host(entry)
        text += f"{ip}\t{name}\n"
    return text


def resolv_conf(host_text: str, dns: Sequence[str] = (), search: Sequence[str] = (),
                options: Sequence[str] = ()) -> str:
    """The container's /etc/resolv.conf from the host's and its own settings."""
    for server in dns:
        try:
            ipaddress.ip_address(server)
        except ValueError:
            raise InvalidParameter(f"{server} is not an ip address") from None
    kept: list[str] = []
    for line in host_text.splitlines():
        word = line.split()[0] if line.split() else ""
        if (dns and word == "nameserver") or (search and word in ("search", "domain")) \
                or (options and word == "options"):
            continue
        kept.append(line)
    if search:
        kept.append("search " + " ".join(s for s in search if s != "."))
    if options:
        kept.append("options " + " ".join(options))
    kept += [f"nameserver {s}" for s in dns]
    return "\n".join(kept) + "\n" if kept else ""
