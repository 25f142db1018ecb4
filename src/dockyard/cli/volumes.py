"""volume create, ls, inspect, rm, prune."""

from __future__ import annotations

import sys

from dockyard.cli.flags import Command, Flag
from dockyard.cli.formatting import human_size, write_formatted
from dockyard.client.api import APIError, quote

HEADERS = {"Driver": "DRIVER", "Name": "VOLUME NAME", "Scope": "SCOPE",
           "Mountpoint": "MOUNTPOINT", "Labels": "LABELS", "Links": "LINKS", "Size": "SIZE",
           "Availability": "AVAILABILITY", "Group": "GROUP"}


class VolumeRow:
    GO_TYPE = "*formatter.volumeContext"

    def __init__(self, v: dict) -> None:
        self.v = v

    def Name(self) -> str:  # docker's template field names
        return self.v.get("Name", "")

    def Driver(self) -> str:
        return self.v.get("Driver", "")

    def Scope(self) -> str:
        return self.v.get("Scope", "")

    def Mountpoint(self) -> str:
        return self.v.get("Mountpoint", "")

    def Labels(self) -> str:
        labels = self.v.get("Labels") or {}
        return ",".join(f"{k}={labels[k]}" for k in sorted(labels))

    def Label(self, name: str = "") -> str:
        return (self.v.get("Labels") or {}).get(name, "")

    def Links(self) -> str:
        usage = self.v.get("UsageData")
        return "N/A" if not usage else str(usage.get("RefCount", 0))

    def Size(self) -> str:
        usage = self.v.get("UsageData")
        return "N/A" if not usage else human_size(usage.get("Size", 0), 4)

    def Availability(self) -> str:
        return "N/A"

    def Group(self) -> str:
        return "N/A"

    def Status(self) -> str:
        return "N/A"

    def to_json(self) -> dict:
        return {k: getattr(self, k)() for k in ("Availability", "Driver", "Group", "Labels",
                                                 "Links", "Mountpoint", "Name", "Scope",
                                                 "Size", "Status")}


CREATE = Command("volume create", "[OPTIONS] [VOLUME]", "Create a volume",
                 [Flag("d", "driver", str, default="local"), Flag(None, "label", list),
                  Flag(None, "name", str), Flag("o", "opt", list)], max_args=1)


def _kv(items: list[str]) -> dict:
    return dict(item.partition("=")[::2] for item in items)


def create(cli, argv: list[str], name: str = "volume create") -> int:
    opts, args = CREATE.parse(argv)
    body = {"Name": (args[0] if args else opts.name) or "", "Driver": opts.driver,
            "DriverOpts": _kv(opts.opt), "Labels": _kv(opts.label)}
    v = cli.client.post("/volumes/create", None, body)
    cli.out.write(v.get("Name", "") + "\n")
    return 0


create.spec = CREATE

LS = Command("volume ls", "[OPTIONS]", "List volumes",
             [Flag("f", "filter", list), Flag(None, "format", str), Flag("q", "quiet", bool),
              Flag(None, "cluster", bool)], max_args=0)


def ls(cli, argv: list[str], name: str = "volume ls") -> int:
    opts, _ = LS.parse(argv)
    from dockyard.cli.images import filters_of

    r = cli.client.get("/volumes", {"filters": filters_of(opts.filter) or None}) or {}
    vols = sorted(r.get("Volumes") or [], key=lambda v: v.get("Name", ""))
    fmt = "{{.Name}}" if opts.quiet else opts.format
    write_formatted(cli.out, fmt, [VolumeRow(v) for v in vols],
                    "table {{.Driver}}\t{{.Name}}", HEADERS)
    for w in r.get("Warnings") or []:
        cli.err.write(w + "\n")
    return 0


ls.spec = LS

INSPECT = Command("volume inspect", "[OPTIONS] VOLUME [VOLUME...]",
                  "Display detailed information on one or more volumes",
                  [Flag("f", "format", str)], min_args=1)


def inspect(cli, argv: list[str], name: str = "volume inspect") -> int:
    opts, args = INSPECT.parse(argv)
    from dockyard.cli.inspection import print_inspected

    return print_inspected(cli, args, [lambda r: cli.client.get(f"/volumes/{quote(r)}")],
                           opts.format, None)


inspect.spec = INSPECT

RM = Command("volume rm", "[OPTIONS] VOLUME [VOLUME...]", "Remove one or more volumes",
             [Flag("f", "force", bool)], min_args=1)


def rm(cli, argv: list[str], name: str = "volume rm") -> int:
    opts, args = RM.parse(argv)
    status = 0
    for v in args:
        try:
            cli.client.delete(f"/volumes/{quote(v)}", {"force": opts.force or None})
        except APIError as e:
            cli.err.write(f"Error response from daemon: {e.message}\n")
            status = 1
            continue
        cli.out.write(v + "\n")
    return status


rm.spec = RM

PRUNE = Command("volume prune", "[OPTIONS]", "Remove unused local volumes",
                [Flag("a", "all", bool), Flag(None, "filter", list), Flag("f", "force", bool)],
                max_args=0)


def prune(cli, argv: list[str], name: str = "volume prune") -> int:
    opts, _ = PRUNE.parse(argv)
    from dockyard.cli.images import filters_of

    if not opts.force:
        cli.out.write("WARNING! This will remove " + ("all local volumes not used by at least "
                      "one container" if opts.all else "anonymous local volumes not used by "
                      "at least one container") + ".\nAre you sure you want to continue? [y/N] ")
        cli.out.flush()
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            return 0
    filters = filters_of(opts.filter)
    if opts.all:
        filters["all"] = ["true"]
    r = cli.client.post("/volumes/prune", {"filters": filters or None}) or {}
    if r.get("VolumesDeleted"):
        cli.out.write("Deleted Volumes:\n" + "".join(f"{v}\n" for v in r["VolumesDeleted"])
                      + "\n")
    cli.out.write(f"Total reclaimed space: {human_size(r.get('SpaceReclaimed', 0) or 0)}\n")
    return 0


prune.spec = PRUNE
