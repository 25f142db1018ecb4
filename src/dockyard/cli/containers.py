"""ps (and how docker shows a container), logs, top, port, container prune."""

from __future__ import annotations

import sys

from dockyard.cli.flags import Command, CommandError, Flag
from dockyard.cli.formatting import (
    ellipsis,
    human_duration,
    human_size,
    truncate_id,
    write_formatted,
)
from dockyard.client.api import quote

PS_HEADERS = {"ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND",
              "CreatedAt": "CREATED AT", "RunningFor": "CREATED", "Ports": "PORTS",
              "State": "STATE", "Status": "STATUS", "Size": "SIZE", "Names": "NAMES",
              "Labels": "LABELS", "Label": "LABEL", "Mounts": "MOUNTS",
              "LocalVolumes": "LOCAL VOLUMES", "Networks": "NETWORKS", "Platform": "PLATFORM"}


def _go_quote(s: str) -> str:
    import _json

    return _json.encode_basestring(s)


def _join_host_port(ip: str, port: str) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def displayable_ports(ports: list[dict]) -> str:
    """api/types/container's DisplayablePorts: ranges grouped, host mappings last."""
    ports = sorted(ports, key=lambda p: (p.get("PrivatePort", 0), p.get("IP", ""),
                                         p.get("PublicPort", 0), p.get("Type", "")))
    groups: dict[str, list[int]] = {}
    result: list[str] = []
    mappings: list[str] = []

    def form(key: str, first: int, last: int) -> str:
        ip, _, kind = key.rpartition("/")
        group = str(first) if first == last else f"{first}-{last}"
        if ip:
            group = f"{_join_host_port(ip, group)}->{group}"
        return f"{group}/{kind}"

    for p in ports:
        current = p.get("PrivatePort", 0)
        key = p.get("Type", "tcp")
        if p.get("IP"):
            if p.get("PublicPort", 0) != current:
                mappings.append(f"{_join_host_port(p['IP'], str(p.get('PublicPort', 0)))}->"
                                f"{current}/{p.get('Type', 'tcp')}")
                continue
            key = f"{p['IP']}/{key}"
        g = groups.get(key)
        if g is None:
            groups[key] = [current, current]
        elif current == g[1] + 1:
            g[1] = current
        else:
            result.append(form(key, g[0], g[1]))
            groups[key] = [current, current]
    result += [form(k, g[0], g[1]) for k, g in groups.items()]
    return ", ".join(result + mappings)


class ContainerRow:
    """A container as docker's container formatter presents it."""

    GO_TYPE = "*formatter.ContainerContext"

    def __init__(self, c: dict, trunc: bool) -> None:
        self.c, self.trunc = c, trunc

    def ID(self) -> str:
        return truncate_id(self.c["Id"]) if self.trunc else self.c["Id"]

    def Names(self) -> str:
        names = [n[1:] if n.startswith("/") else n for n in self.c.get("Names") or []]
        if self.trunc:
            for n in names:
                if "/" not in n:
                    names = [n]
                    break
        return ",".join(names)

    def Image(self) -> str:
        image = self.c.get("Image", "")
        if not image:
            return "<no image>"
        if self.trunc:
            if truncate_id(self.c.get("ImageID", "")) == truncate_id(image):
                return truncate_id(image)
            from dockyard.cli.references import familiar, is_valid

            if is_valid(image):  # familiar, and without its digest
                return familiar(image.partition("@")[0])
        return image

    def Command(self) -> str:
        cmd = self.c.get("Command", "")
        return _go_quote(ellipsis(cmd, 20) if self.trunc else cmd)

    def CreatedAt(self) -> str:
        from dockyard.cli.images import _local_time

        return _local_time(self.c.get("Created", 0))

    def RunningFor(self) -> str:
        import time

        return human_duration(time.time() - self.c.get("Created", 0)) + " ago"

    def Ports(self) -> str:
        return displayable_ports(self.c.get("Ports") or [])

    def State(self) -> str:
        return self.c.get("State", "")

    def Status(self) -> str:
        return self.c.get("Status", "")

    def Size(self) -> str:
        if self.c.get("SizeRw") is None and self.c.get("SizeRootFs") is None:
            return "0B"
        srw = human_size(self.c.get("SizeRw") or 0)
        if (self.c.get("SizeRootFs") or 0) > 0:
            return f"{srw} (virtual {human_size(self.c['SizeRootFs'])})"
        return srw

    def Labels(self) -> str:
        labels = self.c.get("Labels") or {}
        return ",".join(f"{k}={labels[k]}" for k in sorted(labels))

    def Label(self, name: str = "") -> str:
        return (self.c.get("Labels") or {}).get(name, "")

    def Mounts(self) -> str:
        names = []
        for m in self.c.get("Mounts") or []:
            n = m.get("Name") or m.get("Source", "")
            names.append(ellipsis(n, 15) if self.trunc and m.get("Name") else n)
        return ",".join(names)

    def LocalVolumes(self) -> str:
        return str(sum(1 for m in self.c.get("Mounts") or [] if m.get("Driver") == "local"))

    def Networks(self) -> str:
        nets = ((self.c.get("NetworkSettings") or {}).get("Networks") or {})
        return ",".join(sorted(nets))

    def Platform(self):
        return None

    def to_json(self) -> dict:
        keys = ["Command", "CreatedAt", "ID", "Image", "Labels", "LocalVolumes", "Mounts",
                "Names", "Networks", "Platform", "Ports", "RunningFor", "Size", "State",
                "Status"]
        return {k: getattr(self, k)() for k in keys}


PS = Command("ps", "[OPTIONS]", "List containers",
             [Flag("a", "all", bool), Flag("f", "filter", list), Flag(None, "format", str),
              Flag("n", "last", int, default=-1), Flag("l", "latest", bool),
              Flag(None, "no-trunc", bool), Flag("q", "quiet", bool), Flag("s", "size", bool)],
             max_args=0)


def ps(cli, argv: list[str], name: str = "ps") -> int:
    opts, _ = PS.parse(argv)
    from dockyard.cli.images import filters_of

    fmt = "{{.ID}}" if opts.quiet else opts.format
    if not fmt and not opts.quiet:
        from dockyard.client.auth import load_config

        fmt = load_config().get("psFormat") or None
    limit = 1 if opts.latest else opts.last
    size = opts.size or bool(fmt and ".Size" in fmt and not opts.quiet)
    query = {"all": opts.all or None,
             "limit": limit if limit > 0 else None, "size": size or None,
             "filters": filters_of(opts.filter) or None}
    found = cli.client.get("/containers/json", query)
    rows = [ContainerRow(c, not opts.no_trunc) for c in found]
    default = ("table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t"
               "{{.Ports}}\t{{.Names}}")
    if opts.size:
        default += "\t{{.Size}}"
    write_formatted(cli.out, fmt, rows, default, PS_HEADERS)
    return 0


ps.spec = PS


LOGS = Command("logs", "[OPTIONS] CONTAINER", "Fetch the logs of a container",
               [Flag(None, "details", bool), Flag("f", "follow", bool), Flag(None, "since", str),
                Flag("n", "tail", str, default="all"), Flag("t", "timestamps", bool),
                Flag(None, "until", str)], 1, 1)


def logs(cli, argv: list[str], name: str = "logs") -> int:
    opts, (ref,) = LOGS.parse(argv)
    from dockyard.cli.flags import parse_time
    from dockyard.client.stream import demux

    c = cli.client.get(f"/containers/{quote(ref)}/json")
    tty = bool((c.get("Config") or {}).get("Tty"))
    query = {"stdout": 1, "stderr": 1, "follow": opts.follow or None,
             "since": parse_time(opts.since), "until": parse_time(opts.until),
             "timestamps": opts.timestamps or None, "details": opts.details or None,
             "tail": opts.tail}
    resp = cli.client.request("GET", f"/containers/{quote(ref)}/logs", query)
    out, err = sys.stdout.buffer, sys.stderr.buffer
    try:
        for stream, data in demux(iter(resp.read_chunk, b""), tty):
            target = err if stream == 2 else out
            target.write(data)
            target.flush()
    finally:
        resp.close()
    return 0


logs.spec = LOGS

TOP = Command("top", "CONTAINER [ps OPTIONS]", "Display the running processes of a container",
              [], min_args=1, interspersed=False)


def top(cli, argv: list[str], name: str = "top") -> int:
    _, args = TOP.parse(argv)
    query = {"ps_args": " ".join(args[1:])} if len(args) > 1 else None
    r = cli.client.get(f"/containers/{quote(args[0])}/top", query)
    from dockyard.cli.formatting import tabwrite

    lines = ["\t".join(r.get("Titles") or [])]
    lines += ["\t".join(p) for p in r.get("Processes") or []]
    cli.out.write(tabwrite(lines, minwidth=20, padding=1))
    return 0


top.spec = TOP

PORT = Command("port", "CONTAINER [PRIVATE_PORT[/PROTO]]",
               "List port mappings or a specific mapping for the container", [], 1, 2)


def port(cli, argv: list[str], name: str = "port") -> int:
    _, args = PORT.parse(argv)
    c = cli.client.get(f"/containers/{quote(args[0])}/json")
    ports = (c.get("NetworkSettings") or {}).get("Ports") or {}
    if len(args) == 2:
        want = args[1] if "/" in args[1] else args[1] + "/tcp"
        bindings = ports.get(want)
        if not bindings:
            raise CommandError(f"Error: No public port '{args[1]}' published for {args[0]}")
        for b in bindings:
            cli.out.write(_join_host_port(b.get("HostIp", ""), b.get("HostPort", "")) + "\n")
        return 0
    for key in sorted(ports):
        for b in ports[key] or []:
            cli.out.write(f"{key} -> {_join_host_port(b.get('HostIp', ''), b.get('HostPort', ''))}"
                          "\n")
    return 0


port.spec = PORT

PRUNE = Command("container prune", "[OPTIONS]", "Remove all stopped containers",
                [Flag(None, "filter", list), Flag("f", "force", bool)], max_args=0)


def prune(cli, argv: list[str], name: str = "container prune") -> int:
    opts, _ = PRUNE.parse(argv)
    from dockyard.cli.images import filters_of

    if not opts.force:
        cli.out.write("WARNING! This will remove all stopped containers.\n"
                      "Are you sure you want to continue? [y/N] ")
        cli.out.flush()
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            return 0
    r = cli.client.post("/containers/prune", {"filters": filters_of(opts.filter) or None}) or {}
    if r.get("ContainersDeleted"):
        cli.out.write("Deleted Containers:\n" + "".join(
            f"{x}\n" for x in r["ContainersDeleted"]) + "\n")
    cli.out.write(f"Total reclaimed space: {human_size(r.get('SpaceReclaimed', 0) or 0)}\n")
    return 0


prune.spec = PRUNE
