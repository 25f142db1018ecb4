"""docker stats: one collector thread per container reading its stats stream, and a table
redrawn every half second as docker 28 draws it (cursor home, the table, each line again
with erase-to-end, erase below); with --no-stream, one sample each and a plain table.

    dockyard stats [-a] [--no-stream] [--no-trunc] [--format F] [CONTAINER...]
"""

from __future__ import annotations

import threading
import time

from dockyard.cli.flags import Command, CommandError, Flag
from dockyard.client.api import APIError, DaemonUnreachable, quote

DEFAULT = ("table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}"
           "\t{{.BlockIO}}\t{{.PIDs}}")
HEADERS = {"Container": "CONTAINER", "Name": "NAME", "ID": "CONTAINER ID",
           "CPUPerc": "CPU %", "MemUsage": "MEM USAGE / LIMIT", "MemPerc": "MEM %",
           "NetIO": "NET I/O", "BlockIO": "BLOCK I/O", "PIDs": "PIDS"}
STALE = 2.0  # seconds without a sample before the row shows "--"


def entry_of(v: dict) -> dict:
    """A stats document's numbers, computed as docker's stats_helpers computes them."""
    cpu, pre = v.get("cpu_stats") or {}, v.get("precpu_stats") or {}
    cpu_delta = ((cpu.get("cpu_usage") or {}).get("total_usage", 0)
                 - (pre.get("cpu_usage") or {}).get("total_usage", 0))
    sys_delta = (cpu.get("system_cpu_usage") or 0) - (pre.get("system_cpu_usage") or 0)
    online = cpu.get("online_cpus") or len((cpu.get("cpu_usage") or {}).get(
        "percpu_usage") or [])
    cpu_pct = cpu_delta / sys_delta * online * 100.0 if sys_delta > 0 and cpu_delta > 0 \
        else 0.0
    mem = v.get("memory_stats") or {}
    usage, mstats = mem.get("usage", 0) or 0, mem.get("stats") or {}
    if "total_inactive_file" in mstats and mstats["total_inactive_file"] < usage:
        used = usage - mstats["total_inactive_file"]
    elif mstats.get("inactive_file", 0) < usage:
        used = usage - mstats.get("inactive_file", 0)
    else:
        used = usage
    limit = mem.get("limit", 0) or 0
    rx = tx = 0
    for n in (v.get("networks") or {}).values():
        rx += n.get("rx_bytes", 0)
        tx += n.get("tx_bytes", 0)
    read = write = 0
    for b in (v.get("blkio_stats") or {}).get("io_service_bytes_recursive") or []:
        op = (b.get("op") or " ")[0]
        if op in "rR":
            read += b.get("value", 0)
        elif op in "wW":
            write += b.get("value", 0)
    return {"Name": v.get("name", ""), "ID": v.get("id", ""), "CPUPercentage": cpu_pct,
            "Memory": float(used), "MemoryLimit": float(limit),
            "MemoryPercentage": used / limit * 100.0 if limit else 0.0,
            "NetworkRx": rx, "NetworkTx": tx, "BlockRead": read, "BlockWrite": write,
            "PidsCurrent": (v.get("pids_stats") or {}).get("current", 0) or 0}


class StatsRow:
    GO_TYPE = "*container.statsContext"

    def __init__(self, container: str, e: dict | None, trunc: bool) -> None:
        self.container, self.e, self.trunc = container, e or {}, trunc
        self.invalid = e is None

    def Container(self) -> str:
        return self.container

    def Name(self) -> str:
        n = self.e.get("Name", "")
        return n[1:] if len(n) > 1 else "--"

    def ID(self) -> str:
        i = self.e.get("ID", "")
        return i[:12] if self.trunc else i

    def CPUPerc(self) -> str:
        return "--" if self.invalid else f"{self.e['CPUPercentage']:.2f}%"

    def MemUsage(self) -> str:
        from dockyard.cli.formatting import bytes_size

        if self.invalid:
            return "-- / --"
        return f"{bytes_size(self.e['Memory'])} / {bytes_size(self.e['MemoryLimit'])}"

    def MemPerc(self) -> str:
        return "--" if self.invalid else f"{self.e['MemoryPercentage']:.2f}%"

    def NetIO(self) -> str:
        from dockyard.cli.formatting import human_size

        return "--" if self.invalid else \
            f"{human_size(self.e['NetworkRx'])} / {human_size(self.e['NetworkTx'])}"

    def BlockIO(self) -> str:
        from dockyard.cli.formatting import human_size

        return "--" if self.invalid else \
            f"{human_size(self.e['BlockRead'])} / {human_size(self.e['BlockWrite'])}"

    def PIDs(self) -> str:
        return "--" if self.invalid else str(self.e["PidsCurrent"])

    def to_json(self) -> dict:
        return {k: getattr(self, k)() for k in ("BlockIO", "CPUPerc", "Container", "ID",
                                                 "MemPerc", "MemUsage", "Name", "NetIO",
                                                 "PIDs")}


class Collector:
    """One container's latest sample (or its error), kept by a thread."""

    def __init__(self, container: str) -> None:
        self.container = container
        self.entry: dict | None = None
        self.error: Exception | None = None
        self.updated = 0.0
        self.first = threading.Event()
        self.stopped = False

    def run(self, client, stream: bool) -> None:
        try:
            path = f"/containers/{quote(self.container)}/stats"
            if not stream:
                doc = client.get(path, {"stream": False})
                self._set(doc)
                return
            for doc in client.json_stream("GET", path, {"stream": True}):
                if self.stopped:
                    return
                self._set(doc)
        except (APIError, DaemonUnreachable, OSError, ValueError) as e:
            self.error = e
        finally:
            self.first.set()

    def _set(self, doc) -> None:
        if isinstance(doc, dict):
            self.entry, self.error, self.updated = entry_of(doc), None, time.monotonic()
        self.first.set()

    def row(self, trunc: bool, now: float | None = None) -> StatsRow:
        e = self.entry
        if e is not None and now is not None and now - self.updated > STALE:
            e = None
        r = StatsRow(self.container, e, trunc)
        if e is None and self.entry is not None:
            r.e = self.entry  # the name and ID stay; the numbers go
        return r


STATS = Command("stats", "[OPTIONS] [CONTAINER...]",
                "Display a live stream of container(s) resource usage statistics",
                [Flag("a", "all", bool, help="Show all containers (default shows just "
                      "running)"), Flag(None, "format", str),
                 Flag(None, "no-stream", bool, help="Disable streaming stats and only pull "
                      "the first result"),
                 Flag(None, "no-trunc", bool, help="Do not truncate output")])


def _message(e: Exception) -> str:
    return f"Error response from daemon: {e.message}" if isinstance(e, APIError) else str(e)


def stats(cli, argv: list[str], name: str = "stats") -> int:
    opts, names = STATS.parse(argv)
    client, stream, trunc = cli.client, not opts.no_stream, not opts.no_trunc
    client.negotiate()  # once, before the threads share the client
    collectors: list[Collector] = []
    lock = threading.Lock()

    def add(container: str) -> None:
        with lock:
            if any(c.container == container for c in collectors):
                return
            c = Collector(container)
            collectors.append(c)
        threading.Thread(target=c.run, args=(_fresh(cli), stream), daemon=True).start()

    show_all = not names
    if show_all:
        if stream:
            threading.Thread(target=_watch, args=(_fresh(cli), opts.all, add, collectors, lock),
                             daemon=True).start()
        for c in client.get("/containers/json", {"all": opts.all or None}) or []:
            add(c["Id"][:12])  # docker 28 names the rows by short ID
    else:
        for n in names:
            add(n)
    for c in list(collectors):
        c.first.wait(STALE)
    if not show_all:
        errors = [_message(c.error) for c in collectors if c.error is not None]
        if errors:
            raise CommandError("\n".join(errors))
    fmt = opts.format or _config_format() or "table"
    if not stream:
        cli.out.write(_render(fmt, [c.row(trunc) for c in collectors]))  # a header at least
        return 0
    while True:
        now = time.monotonic()
        with lock:
            rows = [c.row(trunc, now) for c in collectors]
        text = "\033[H" + _render(fmt, rows)
        cli.out.write(text + "".join(f"{line} \033[K\n" for line in text.split("\n"))
                      + "\033[J")
        cli.out.flush()
        if not rows and not show_all:
            return 0
        time.sleep(0.5)


def _render(fmt: str, rows: list[StatsRow]) -> str:
    import io

    from dockyard.cli.formatting import write_formatted

    buf = io.StringIO()
    write_formatted(buf, fmt, rows, DEFAULT, HEADERS)
    return buf.getvalue()


def _fresh(cli):
    """A client of its own for a thread (each request opens its connection anyway)."""
    return cli.client


def _config_format() -> str:
    import os

    from dockyard.runtime import jsonio

    path = os.path.join(os.environ.get("DOCKER_CONFIG") or os.path.expanduser("~/.docker"),
                        "config.json")
    try:
        with open(path, "rb") as f:
            return str((jsonio.loads(f.read()) or {}).get("statsFormat", ""))
    except (OSError, ValueError, AttributeError):
        return ""


def _watch(client, all_: bool, add, collectors: list[Collector], lock) -> None:
    """Container events: start (and create with -a) adds a row; die removes it without -a."""
    try:
        for ev in client.json_stream("GET", "/events",
                                     {"filters": {"type": ["container"]}}):
            action = ev.get("Action") or ev.get("status", "")
            cid = ((ev.get("Actor") or {}).get("ID") or ev.get("id", ""))[:12]
            if not cid:
                continue
            if action == "start" or (action == "create" and all_):
                add(cid)
            elif action == "die" and not all_:
                with lock:
                    for c in [c for c in collectors if c.container == cid]:
                        c.stopped = True
                        collectors.remove(c)
    except (APIError, DaemonUnreachable, OSError, ValueError):
        return
