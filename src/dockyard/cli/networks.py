"""network create, ls, inspect, rm, connect, disconnect, prune."""

from __future__ import annotations

import sys

from dockyard.cli.flags import Command, Flag
from dockyard.cli.formatting import truncate_id, write_formatted
from dockyard.client.api import APIError, quote

HEADERS = {"ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER", "Scope": "SCOPE",
           "IPv4": "IPV4", "IPv6": "IPV6", "Internal": "INTERNAL", "Labels": "LABELS",
           "CreatedAt": "CREATED AT"}


class NetworkRow:
    GO_TYPE = "*formatter.networkContext"

    def __init__(self, n: dict, trunc: bool) -> None:
        self.n, self.trunc = n, trunc

    def ID(self) -> str:
        return truncate_id(self.n.get("Id", "")) if self.trunc else self.n.get("Id", "")

    def Name(self) -> str:
        return self.n.get("Name", "")

    def Driver(self) -> str:
        return self.n.get("Driver", "")

    def Scope(self) -> str:
        return self.n.get("Scope", "")

    def IPv4(self) -> str:
        return "true" if self.n.get("EnableIPv4", True) else "false"

    def IPv6(self) -> str:
        return "true" if self.n.get("EnableIPv6") else "false"

    def Internal(self) -> str:
        return "true" if self.n.get("Internal") else "false"

    def Labels(self) -> str:
        labels = self.n.get("Labels") or {}
        return ",".join(f"{k}={labels[k]}" for k in sorted(labels))

    def Label(self, name: str = "") -> str:
        return (self.n.get("Labels") or {}).get(name, "")

    def CreatedAt(self) -> str:
        return go_time_string(self.n.get("Created", ""))

    def to_json(self) -> dict:
        return {k: getattr(self, k)() for k in ("CreatedAt", "Driver", "ID", "IPv4", "IPv6",
                                                 "Internal", "Labels", "Name", "Scope")}


def go_time_string(rfc3339: str) -> str:
    """Go's time.Time.String() of an RFC 3339 time, in local time:
    2026-11-29 10:14:29.23216206 +0000 UTC (trailing zeros of the fraction dropped)."""
    import time

    from dockyard.cli.formatting import parse_timestamp

    if not rfc3339:
        return ""
    ts = parse_timestamp(rfc3339)
    if not ts:
        return "0001-01-01 00:00:00 +0000 UTC"
    frac = rfc3339.partition(".")[2].rstrip("Z").split("+")[0].split("-")[0]
    frac = frac.rstrip("0")
    local = time.localtime(int(ts))
    zone = time.strftime("%z %Z", local)
    return (time.strftime("%Y-%m-%d %H:%M:%S", local) + (f".{frac}" if frac else "")
            + f" {zone}")


def _kv(items: list[str]) -> dict:
    return dict(item.partition("=")[::2] for item in items)


CREATE = Command("network create", "[OPTIONS] NETWORK", "Create a network",
                 [Flag(None, "attachable", bool), Flag(None, "aux-address", list),
                  Flag("d", "driver", str, default="bridge"), Flag(None, "gateway", list),
                  Flag(None, "internal", bool), Flag(None, "ip-range", list),
                  Flag(None, "ipam-driver", str, default="default"),
                  Flag(None, "ipam-opt", list), Flag(None, "ipv4", bool, default=True),
                  Flag(None, "ipv6", bool), Flag(None, "label", list), Flag("o", "opt", list),
                  Flag(None, "subnet", list)], 1, 1)


def create(cli, argv: list[str], name: str = "network create") -> int:
    opts, (net,) = CREATE.parse(argv)
    pools = []
    for i, subnet in enumerate(opts.subnet):
        pool = {"Subnet": subnet}
        if i < len(opts.gateway):
            pool["Gateway"] = opts.gateway[i]
        if i < len(opts.ip_range):
            pool["IPRange"] = opts.ip_range[i]
        pools.append(pool)
    body = {"Name": net, "Driver": opts.driver, "Internal": opts.internal,
            "Attachable": opts.attachable, "EnableIPv4": opts.ipv4, "EnableIPv6": opts.ipv6,
            "Options": _kv(opts.opt), "Labels": _kv(opts.label),
            "IPAM": {"Driver": opts.ipam_driver, "Config": pools,
                     "Options": _kv(opts.ipam_opt)}}
    r = cli.client.post("/networks/create", None, body)
    for w in ([r.get("Warning")] if r.get("Warning") else []):
        cli.err.write(f"WARNING: {w}\n")
    cli.out.write(r.get("Id", "") + "\n")
    return 0


create.spec = CREATE

LS = Command("network ls", "[OPTIONS]", "List networks",
             [Flag("f", "filter", list), Flag(None, "format", str),
              Flag(None, "no-trunc", bool), Flag("q", "quiet", bool)], max_args=0)


def ls(cli, argv: list[str], name: str = "network ls") -> int:
    opts, _ = LS.parse(argv)
    from dockyard.cli.images import filters_of

    nets = cli.client.get("/networks", {"filters": filters_of(opts.filter) or None}) or []
    nets.sort(key=lambda n: n.get("Name", ""))
    fmt = "{{.ID}}" if opts.quiet else opts.format
    write_formatted(cli.out, fmt, [NetworkRow(n, not opts.no_trunc) for n in nets],
                    "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}", HEADERS)
    return 0


ls.spec = LS

INSPECT = Command("network inspect", "[OPTIONS] NETWORK [NETWORK...]",
                  "Display detailed information on one or more networks",
                  [Flag("f", "format", str), Flag("v", "verbose", bool)], min_args=1)


def inspect(cli, argv: list[str], name: str = "network inspect") -> int:
    opts, args = INSPECT.parse(argv)
    from dockyard.cli.inspection import print_inspected

    return print_inspected(cli, args, [lambda r: cli.client.get(
        f"/networks/{quote(r)}", {"verbose": opts.verbose or None})], opts.format, None)


inspect.spec = INSPECT

RM = Command("network rm", "NETWORK [NETWORK...]", "Remove one or more networks",
             [Flag("f", "force", bool)], min_args=1)


def rm(cli, argv: list[str], name: str = "network rm") -> int:
    opts, args = RM.parse(argv)
    status = 0
    for n in args:
        try:
            cli.client.delete(f"/networks/{quote(n)}")
        except APIError as e:
            if opts.force and e.status == 404:
                continue
            cli.err.write(f"Error response from daemon: {e.message}\n")
            status = 1
            continue
        cli.out.write(n + "\n")
    if status:
        cli.err.write("exit status 1\n")  # docker 28 prints its StatusError so
    return status


rm.spec = RM

CONNECT = Command("network connect", "[OPTIONS] NETWORK CONTAINER",
                  "Connect a container to a network",
                  [Flag(None, "alias", list), Flag(None, "ip", str), Flag(None, "ip6", str),
                   Flag(None, "link", list), Flag(None, "driver-opt", list)], 2, 2)


def connect(cli, argv: list[str], name: str = "network connect") -> int:
    opts, (net, ctr) = CONNECT.parse(argv)
    endpoint: dict = {"Aliases": opts.alias or None, "Links": opts.link or None,
                      "DriverOpts": _kv(opts.driver_opt) or None}
    if opts.ip or opts.ip6:
        endpoint["IPAMConfig"] = {"IPv4Address": opts.ip or "", "IPv6Address": opts.ip6 or ""}
    cli.client.post(f"/networks/{quote(net)}/connect", None,
                    {"Container": ctr, "EndpointConfig": endpoint})
    return 0


connect.spec = CONNECT

DISCONNECT = Command("network disconnect", "[OPTIONS] NETWORK CONTAINER",
                     "Disconnect a container from a network", [Flag("f", "force", bool)], 2, 2)


def disconnect(cli, argv: list[str], name: str = "network disconnect") -> int:
    opts, (net, ctr) = DISCONNECT.parse(argv)
    cli.client.post(f"/networks/{quote(net)}/disconnect", None,
                    {"Container": ctr, "Force": opts.force})
    return 0


disconnect.spec = DISCONNECT

PRUNE = Command("network prune", "[OPTIONS]", "Remove all unused networks",
                [Flag(None, "filter", list), Flag("f", "force", bool)], max_args=0)


def prune(cli, argv: list[str], name: str = "network prune") -> int:
    opts, _ = PRUNE.parse(argv)
    from dockyard.cli.images import filters_of

    if not opts.force:
        cli.out.write("WARNING! This will remove all custom networks not used by at least one "
                      "container.\nAre you sure you want to continue? [y/N] ")
        cli.out.flush()
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            return 0
    r = cli.client.post("/networks/prune", {"filters": filters_of(opts.filter) or None}) or {}
    if r.get("NetworksDeleted"):
        cli.out.write("Deleted Networks:\n" + "".join(f"{n}\n" for n in r["NetworksDeleted"]))
    return 0


prune.spec = PRUNE
