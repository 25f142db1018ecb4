"""version, info, events, system df, system prune."""

from __future__ import annotations

import os
import sys

from dockyard.cli.flags import Command, CommandError, Flag, parse_filters, parse_time

VERSION = Command("version", "[OPTIONS]", "Show the Docker version information",
                  [Flag("f", "format", str)], max_args=0)


def _arch() -> str:
    m = os.uname().machine
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}.get(m, m)


def _client_version(cli, api_version: str) -> dict:
    from dockyard import __version__
    from dockyard.client.api import API_VERSION

    v = sys.version_info
    return {"Platform": {"Name": ""}, "Version": __version__, "ApiVersion": api_version,
            "DefaultAPIVersion": API_VERSION, "GitCommit": "dockyard",
            "GoVersion": f"python{v[0]}.{v[1]}.{v[2]}", "Os": "linux", "Arch": _arch(),
            "BuildTime": "", "Context": cli.options.get("context") or "default"}


def _tab(lines: list[str]) -> str:
    out = []
    for line in lines:
        label, tab, value = line.partition("\t")
        out.append(label.ljust(max(20, len(label) + 1)) + value if tab else label)
    return "\n".join(out) + "\n"


def _client_block(c: dict) -> list[str]:
    name = c["Platform"]["Name"]
    api = c["ApiVersion"]
    if api != c["DefaultAPIVersion"]:
        api += f" (downgraded from {c['DefaultAPIVersion']})"
    return [f"Client:{' ' + name if name else ''}", f" Version:\t{c['Version']}",
            f" API version:\t{api}", f" Go version:\t{c['GoVersion']}",
            f" Git commit:\t{c['GitCommit']}", f" Built:\t{c['BuildTime']}",
            f" OS/Arch:\t{c['Os']}/{c['Arch']}", f" Context:\t{c['Context']}"]


def _server_block(s: dict) -> list[str]:
    name = (s.get("Platform") or {}).get("Name", "")
    lines = ["", f"Server:{' ' + name if name else ''}"]
    for comp in s.get("Components") or []:
        d = comp.get("Details") or {}
        lines.append(f" {comp.get('Name')}:")
        if comp.get("Name") == "Engine":
            lines += [f"  Version:\t{comp.get('Version')}",
                      f"  API version:\t{d.get('ApiVersion')} (minimum version "
                      f"{d.get('MinAPIVersion')})",
                      f"  Go version:\t{d.get('GoVersion')}",
                      f"  Git commit:\t{d.get('GitCommit')}", f"  Built:\t{d.get('BuildTime')}",
                      f"  OS/Arch:\t{d.get('Os')}/{d.get('Arch')}",
                      f"  Experimental:\t{d.get('Experimental')}"]
        else:
            lines.append(f"  Version:\t{comp.get('Version')}")
            lines += [f"  {k}:\t{d[k]}" for k in sorted(d)]
    return lines


def version(cli, argv: list[str], name: str = "version") -> int:
    opts, _ = VERSION.parse(argv)
    from dockyard.client.api import API_VERSION, DaemonUnreachable, _version_tuple

    client = cli.client
    server = error = None
    try:
        # unversioned: answered at the daemon's own version, which it reports; one round trip
        server = client.get("/version", versioned=False)
        if not client.negotiated:
            client.version = min(API_VERSION, server.get("ApiVersion") or API_VERSION,
                                 key=_version_tuple)
            client.negotiated = True
    except DaemonUnreachable as e:
        error = e
    c = _client_version(cli, client.version or API_VERSION)
    if opts.format:
        from dockyard.cli.formatting import write_formatted

        write_formatted(cli.out, opts.format, [{"Client": c, "Server": server}], "", {})
    else:
        lines = _client_block(c)
        if server is not None:
            lines += _server_block(server)
        cli.out.write(_tab(lines))
    if error is not None:
        cli.err.write(f"{error}\n")
        return 1
    return 0


version.spec = VERSION

INFO = Command("info", "[OPTIONS]", "Display system-wide information",
               [Flag("f", "format", str)], max_args=0)


def _security_options(opts: list[str]) -> list[str]:
    lines = [" Security Options:"]
    for so in opts:
        kv = dict(p.split("=", 1) for p in so.split(",") if "=" in p)
        lines.append("  " + kv.get("name", so))
        if "profile" in kv:
            lines.append("   Profile: " + kv["profile"])
    return lines


def _go(v) -> str:
    from dockyard.cli.template import go_str

    return go_str(v)


def server_info_lines(i: dict, debug: bool) -> list[str]:
    from dockyard.cli.formatting import bytes_size

    L: list[str] = []

    def nonempty(label: str, value) -> None:
        if value not in ("", None):
            L.append(f"{label} {_go(value)}")

    L += [f" Containers: {i.get('Containers', 0)}", f"  Running: {i.get('ContainersRunning', 0)}",
          f"  Paused: {i.get('ContainersPaused', 0)}",
          f"  Stopped: {i.get('ContainersStopped', 0)}", f" Images: {i.get('Images', 0)}"]
    nonempty(" Server Version:", i.get("ServerVersion"))
    nonempty(" Storage Driver:", i.get("Driver"))
    L += [f"  {a}: {b}" for a, b in i.get("DriverStatus") or []]
    L += [f" {a}: {b}" for a, b in i.get("SystemStatus") or []]
    nonempty(" Logging Driver:", i.get("LoggingDriver"))
    nonempty(" Cgroup Driver:", i.get("CgroupDriver"))
    nonempty(" Cgroup Version:", i.get("CgroupVersion"))
    plugins = i.get("Plugins") or {}
    L += [" Plugins:", "  Volume: " + " ".join(plugins.get("Volume") or []),
          "  Network: " + " ".join(plugins.get("Network") or [])]
    if plugins.get("Authorization"):
        L.append("  Authorization: " + " ".join(plugins["Authorization"]))
    L.append("  Log: " + " ".join(plugins.get("Log") or []))
    if i.get("CDISpecDirs"):
        L += [" CDI spec directories:"] + [f"  {d}" for d in i["CDISpecDirs"]]
    swarm = i.get("Swarm") or {}
    L.append(f" Swarm: {swarm.get('LocalNodeState', 'inactive')}")
    if i.get("Runtimes"):
        L.append(" Runtimes: " + " ".join(i["Runtimes"]))
        L.append(f" Default Runtime: {i.get('DefaultRuntime', '')}")
    if i.get("OSType") == "linux":
        L.append(f" Init Binary: {i.get('InitBinary', '')}")
        for label, key in (("containerd", "ContainerdCommit"), ("runc", "RuncCommit"),
                           ("init", "InitCommit")):
            commit = i.get(key) or {}
            line = f" {label} version: {commit.get('ID', '')}"
            if "Expected" in commit and commit["Expected"] != commit.get("ID"):
                line += f" (expected: {commit['Expected']})"
            L.append(line)
        if i.get("SecurityOptions"):
            L += _security_options(i["SecurityOptions"])
    nonempty(" Kernel Version:", i.get("KernelVersion"))
    nonempty(" Operating System:", i.get("OperatingSystem"))
    nonempty(" OSType:", i.get("OSType"))
    nonempty(" Architecture:", i.get("Architecture"))
    L.append(f" CPUs: {i.get('NCPU', 0)}")
    L.append(f" Total Memory: {bytes_size(i.get('MemTotal', 0))}")
    nonempty(" Name:", i.get("Name"))
    nonempty(" ID:", i.get("ID"))
    L.append(f" Docker Root Dir: {i.get('DockerRootDir', '')}")
    L.append(f" Debug Mode: {_go(bool(i.get('Debug')))}")
    if i.get("Debug") or debug:
        L += [f"  File Descriptors: {i.get('NFd')}", f"  Goroutines: {i.get('NGoroutines')}",
              f"  System Time: {i.get('SystemTime')}",
              f"  EventsListeners: {i.get('NEventsListener')}"]
    nonempty(" HTTP Proxy:", i.get("HttpProxy"))
    nonempty(" HTTPS Proxy:", i.get("HttpsProxy"))
    nonempty(" No Proxy:", i.get("NoProxy"))
    if i.get("Labels"):
        L += [" Labels:"] + [f"  {x}" for x in i["Labels"]]
    L.append(f" Experimental: {_go(bool(i.get('ExperimentalBuild')))}")
    reg = i.get("RegistryConfig") or {}
    insecure = [c.get("Name") for c in (reg.get("IndexConfigs") or {}).values()
                if not c.get("Secure", True)]
    if insecure or reg.get("InsecureRegistryCIDRs"):
        L.append(" Insecure Registries:")
        L += [f"  {n}" for n in insecure]
        L += [f"  {c}" for c in reg.get("InsecureRegistryCIDRs") or []]
    if reg.get("Mirrors"):
        L += [" Registry Mirrors:"] + [f"  {m}" for m in reg["Mirrors"]]
    L.append(f" Live Restore Enabled: {_go(bool(i.get('LiveRestoreEnabled')))}")
    if i.get("ProductLicense"):
        L.append(f" Product License: {i['ProductLicense']}")
    if i.get("DefaultAddressPools"):
        L.append(" Default Address Pools:")
        L += [f"   Base: {p.get('Base')}, Size: {p.get('Size')}"
              for p in i["DefaultAddressPools"]]
    return L


def info(cli, argv: list[str], name: str = "info") -> int:
    opts, _ = INFO.parse(argv)
    from dockyard import __version__
    from dockyard.client.api import DaemonUnreachable

    client_info = {"Debug": cli.debug, "Context": cli.options.get("context") or "default",
                   "Plugins": [], "Warnings": None, "Version": __version__}
    try:
        server = cli.client.get("/info")
    except DaemonUnreachable as e:
        server, error = None, e
    else:
        error = None
    if opts.format:
        from dockyard.cli.formatting import write_formatted

        doc = dict(server or {})
        doc["ClientInfo"] = client_info
        if error is not None:
            doc["ServerErrors"] = [str(error)]
        write_formatted(cli.out, opts.format, [doc], "", {})
        return 1 if error else 0
    lines = ["Client:", f" Version:    {__version__}", f" Context:    {client_info['Context']}",
             f" Debug Mode: {'true' if cli.debug else 'false'}", ""]
    lines.append("Server:")
    if server is None:
        lines.append(f"ERROR: {error}")
        lines.append("errors pretty printing info")
        cli.out.write("\n".join(lines) + "\n")
        return 1
    lines += server_info_lines(server, cli.debug)
    cli.out.write("\n".join(lines) + "\n\n")
    for w in server.get("Warnings") or []:
        cli.err.write(w + "\n")
    return 0


info.spec = INFO

EVENTS = Command("events", "[OPTIONS]", "Get real time events from the server",
                 [Flag("f", "filter", list), Flag(None, "format", str),
                  Flag(None, "since", str), Flag(None, "until", str)], max_args=0)


def events(cli, argv: list[str], name: str = "events") -> int:
    opts, _ = EVENTS.parse(argv)
    query = {"since": parse_time(opts.since), "until": parse_time(opts.until),
             "filters": parse_filters(opts.filter)}
    tmpl = None
    if opts.format and opts.format != "json":
        from dockyard.cli.template import Template

        tmpl = Template(opts.format.replace("\\t", "\t").replace("\\n", "\n"))
    for ev in cli.client.json_stream("GET", "/events", query):
        if opts.format == "json":
            from dockyard.cli.template import go_json

            cli.out.write(go_json(ev) + "\n")
        elif tmpl is not None:
            cli.out.write(tmpl.render(ev) + "\n")
        else:
            cli.out.write(_event_line(ev) + "\n")
        cli.out.flush()
    return 0


events.spec = EVENTS


def _event_line(ev: dict) -> str:
    """2024-01-02T15:04:05.000000000Z container start <id> (image=busybox, name=x)"""
    import time

    nano = ev.get("timeNano") or int(ev.get("time", 0)) * 10**9
    local = time.localtime(nano // 10**9)
    off = time.strftime("%z", local)
    zone = "Z" if off in ("+0000", "") else f"{off[:3]}:{off[3:]}"
    stamp = f"{time.strftime('%Y-%m-%dT%H:%M:%S', local)}.{nano % 10**9:09d}{zone}"
    actor = ev.get("Actor") or {}
    attrs = actor.get("Attributes") or {}
    line = f"{stamp} {ev.get('Type', '')} {ev.get('Action', '')} {actor.get('ID', '')}"
    if attrs:
        line += " (" + ", ".join(f"{k}={attrs[k]}" for k in sorted(attrs)) + ")"
    return line


DF = Command("system df", "[OPTIONS]", "Show docker disk usage",
             [Flag(None, "format", str), Flag("v", "verbose", bool)], max_args=0)


def df(cli, argv: list[str], name: str = "system df") -> int:
    opts, _ = DF.parse(argv)
    from dockyard.cli.formatting import human_size, write_formatted

    d = cli.client.get("/system/df")
    images = d.get("Images") or []
    containers = d.get("Containers") or []
    volumes = d.get("Volumes") or []
    cache = d.get("BuildCache") or []
    if opts.verbose:
        if opts.format not in (None, "", "table"):
            raise CommandError("--format with --verbose is not supported yet")
        return _df_verbose(cli, images, containers, volumes, cache)

    def row(kind, items, active, size, reclaim):
        pct = f" ({reclaim * 100 // size}%)" if size > 0 else ""
        # sorted keys: docker's JSON of this row is its map, whose keys Go sorts
        return {"Active": str(active), "Reclaimable": human_size(reclaim, 4) + pct,
                "Size": human_size(size, 4), "TotalCount": str(len(items)), "Type": kind}

    img_size = d.get("LayersSize") or 0  # docker's total: layers counted once
    img_active = [i for i in images if i.get("Containers", 0) > 0]
    img_used = sum(i["Size"] - i["SharedSize"] for i in img_active
                   if i.get("Size", -1) != -1 and i.get("SharedSize", -1) != -1)
    ctr_size = sum(c.get("SizeRw", 0) or 0 for c in containers)
    ctr_active = [c for c in containers if c.get("State") in ("running", "paused")]
    vol_size = sum(max((v.get("UsageData") or {}).get("Size", 0), 0) for v in volumes)
    vol_active = [v for v in volumes if (v.get("UsageData") or {}).get("RefCount", 0) > 0]
    cache_size = sum(c.get("Size", 0) for c in cache)
    rows = [
        row("Images", images, len(img_active), img_size, img_size - img_used),
        row("Containers", containers, len(ctr_active), ctr_size,
            ctr_size - sum(c.get("SizeRw", 0) or 0 for c in ctr_active)),
        row("Local Volumes", volumes, len(vol_active), vol_size,
            vol_size - sum(max((v.get("UsageData") or {}).get("Size", 0), 0)
                           for v in vol_active)),
        row("Build Cache", cache, sum(1 for c in cache if c.get("InUse")), cache_size,
            sum(c.get("Size", 0) for c in cache if not c.get("InUse"))),
    ]
    write_formatted(cli.out, opts.format,
                    rows, "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t"
                    "{{.Reclaimable}}",
                    {"Type": "TYPE", "TotalCount": "TOTAL", "Active": "ACTIVE", "Size": "SIZE",
                     "Reclaimable": "RECLAIMABLE"})
    return 0


df.spec = DF


def _df_verbose(cli, images: list, containers: list, volumes: list, cache: list) -> int:
    """docker system df -v: a table per kind, under its title."""
    from dockyard.cli.containers import ContainerRow
    from dockyard.cli.formatting import human_size, write_formatted
    from dockyard.cli.images import IMAGE_HEADERS, ImageRow
    from dockyard.cli.references import familiar_name, split
    from dockyard.cli.volumes import VolumeRow

    out = cli.out
    rows = []
    for i in images:
        repo = tag = "<none>"
        tags = [t for t in i.get("RepoTags") or [] if t != "<none>:<none>"]
        if tags:  # only the first tag, as docker shows it
            repo, tag = familiar_name(tags[0]), split(tags[0])[2] or "<none>"
        rows.append(ImageRow(i, repo, tag, "", True))
    out.write("Images space usage:\n\n")
    write_formatted(out, None, rows, "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t"
                    "{{.CreatedSince}}\t{{.Size}}\t{{.SharedSize}}\t{{.UniqueSize}}\t"
                    "{{.Containers}}", IMAGE_HEADERS)
    out.write("\nContainers space usage:\n\n")
    write_formatted(out, None, [ContainerRow({**c, "SizeRootFs": 0}, True) for c in containers],
                    "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.LocalVolumes}}\t{{.Size}}\t"
                    "{{.RunningFor}}\t{{.Status}}\t{{.Names}}",
                    {"ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND",
                     "LocalVolumes": "LOCAL VOLUMES", "Size": "SIZE",
                     "RunningFor": "CREATED", "Status": "STATUS", "Names": "NAMES"})
    out.write("\nLocal Volumes space usage:\n\n")
    write_formatted(out, None, [VolumeRow(v) for v in volumes],
                    "table {{.Name}}\t{{.Links}}\t{{.Size}}",
                    {"Name": "VOLUME NAME", "Links": "LINKS", "Size": "SIZE"})
    total = sum(c.get("Size", 0) for c in cache)
    out.write(f"\nBuild cache usage: {human_size(total, 4)}\n\n")
    write_formatted(out, None, [_CacheRow(c) for c in cache],
                    "table {{.ID}}\t{{.CacheType}}\t{{.Size}}\t{{.CreatedSince}}\t"
                    "{{.LastUsedSince}}\t{{.UsageCount}}\t{{.Shared}}",
                    {"ID": "CACHE ID", "CacheType": "CACHE TYPE", "Size": "SIZE",
                     "CreatedSince": "CREATED", "LastUsedSince": "LAST USED",
                     "UsageCount": "USAGE", "Shared": "SHARED"})
    return 0


class _CacheRow:
    def __init__(self, c: dict) -> None:
        self.c = c

    def ID(self) -> str:
        return self.c.get("ID", "")[:12] + ("*" if self.c.get("InUse") else "")

    def CacheType(self) -> str:
        return self.c.get("Type", "")

    def Size(self) -> str:
        from dockyard.cli.formatting import human_size

        return human_size(self.c.get("Size", 0), 4)

    def CreatedSince(self) -> str:
        return self._since("CreatedAt")

    def LastUsedSince(self) -> str:
        return self._since("LastUsedAt")

    def _since(self, key: str) -> str:
        from dockyard.cli.formatting import parse_timestamp, since

        ts = parse_timestamp(self.c.get(key) or "")
        return since(ts) if ts else ""

    def UsageCount(self) -> str:
        return str(self.c.get("UsageCount", 0))

    def Shared(self) -> str:
        return "true" if self.c.get("Shared") else "false"

PRUNE = Command("system prune", "[OPTIONS]", "Remove unused data",
                [Flag("a", "all", bool), Flag(None, "filter", list),
                 Flag("f", "force", bool), Flag(None, "volumes", bool)], max_args=0)


def prune(cli, argv: list[str], name: str = "system prune") -> int:
    opts, _ = PRUNE.parse(argv)
    from dockyard.cli.formatting import human_size

    if not opts.force:
        cli.out.write("WARNING! This will remove:\n  - all stopped containers\n"
                      "  - all networks not used by at least one container\n")
        if opts.volumes:
            cli.out.write("  - all anonymous volumes not used by at least one container\n")
        cli.out.write("  - all images without at least one container associated to them\n"
                      if opts.all else "  - all dangling images\n")
        cli.out.write("  - unused build cache\n\nAre you sure you want to continue? [y/N] ")
        cli.out.flush()
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            return 0
    filters = parse_filters(opts.filter) or {}
    total = 0
    steps = [("/containers/prune", "Deleted Containers:", "ContainersDeleted"),
             ("/networks/prune", "Deleted Networks:", "NetworksDeleted")]
    if opts.volumes:
        steps.append(("/volumes/prune", "Deleted Volumes:", "VolumesDeleted"))
    for path, title, key in steps:
        r = cli.client.post(path, {"filters": filters or None}) or {}
        if r.get(key):
            cli.out.write(title + "\n" + "".join(f"{x}\n" for x in r[key]) + "\n")
        total += r.get("SpaceReclaimed", 0) or 0
    img_filters = dict(filters)
    img_filters["dangling"] = ["false" if opts.all else "true"]
    r = cli.client.post("/images/prune", {"filters": img_filters}) or {}
    from dockyard.cli.images import print_deleted_images

    print_deleted_images(cli, r)
    total += r.get("SpaceReclaimed", 0) or 0
    cache_filters = {k: v for k, v in filters.items() if k != "label"}
    r = cli.client.post("/build/prune", {"all": opts.all or None,
                                         "filters": cache_filters or None}) or {}
    if r.get("CachesDeleted"):
        cli.out.write("Deleted build cache objects:\n"
                      + "".join(f"{x}\n" for x in r["CachesDeleted"]) + "\n")
    total += r.get("SpaceReclaimed", 0) or 0
    cli.out.write(f"Total reclaimed space: {human_size(total)}\n")
    return 0


prune.spec = PRUNE

BUILDER_PRUNE = Command("builder prune", "", "Remove build cache",
                        [Flag("a", "all", bool, help="Remove all unused build cache, not just "
                              "dangling ones"),
                         Flag(None, "filter", list, help='Provide filter values (e.g. '
                              '"until=24h")'),
                         Flag("f", "force", bool, help="Do not prompt for confirmation"),
                         Flag(None, "keep-storage", str,
                              help="Amount of disk space to keep for cache")], max_args=0)


def builder_prune(cli, argv: list[str], name: str = "builder prune") -> int:
    opts, _ = BUILDER_PRUNE.parse(argv)
    from dockyard.cli.formatting import human_size

    if not opts.force:
        what = "all build cache" if opts.all else "all dangling build cache"
        cli.out.write(f"WARNING! This will remove {what}. Are you sure you want to continue? "
                      "[y/N] ")
        cli.out.flush()
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            return 0
    query: dict = {"all": opts.all or None, "filters": parse_filters(opts.filter)}
    if opts.keep_storage:
        query["keep-storage"] = _ram_in_bytes(opts.keep_storage)
    r = cli.client.post("/build/prune", query) or {}
    if r.get("CachesDeleted"):
        cli.out.write("Deleted build cache objects:\n"
                      + "".join(f"{x}\n" for x in r["CachesDeleted"]) + "\n")
    cli.out.write(f"Total reclaimed space: {human_size(r.get('SpaceReclaimed', 0) or 0)}\n")
    return 0


builder_prune.spec = BUILDER_PRUNE


def _ram_in_bytes(value: str) -> int:
    """units.RAMInBytes: 1GB, 512m, 100 (binary multiples, as docker reads them)."""
    from dockyard.cli.flags import UsageError

    v = value.strip().lower().removesuffix("b").removesuffix("i")
    mult = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
    n = mult.get(v[-1:], 1)
    try:
        return int(float(v[:-1] if v[-1:] in mult else v) * n)
    except ValueError:
        raise UsageError(f'invalid argument "{value}" for "--keep-storage" flag: invalid '
                         f"size: '{value}'") from None
