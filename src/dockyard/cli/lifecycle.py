"""start, stop, restart, kill, rm, pause, unpause, wait, rename, update: one request per
container named, its name echoed or docker's error printed."""

from __future__ import annotations

from dockyard.cli.flags import Command, CommandError, Flag
from dockyard.client.api import APIError, quote


def _each(cli, names: list[str], action, echo: bool = True) -> list[str]:
    """Run `action` on each container, print its name (as given) or docker's error; the
    names that failed."""
    failed = []
    for n in names:
        try:
            action(n)
        except APIError as e:
            cli.err.write(f"Error response from daemon: {e.message}\n")
            failed.append(n)
            continue
        if echo:
            cli.out.write(n + "\n")
    return failed


START = Command("start", "[OPTIONS] CONTAINER [CONTAINER...]",
                "Start one or more stopped containers",
                [Flag("a", "attach", bool), Flag(None, "detach-keys", str),
                 Flag("i", "interactive", bool)], min_args=1)


def start(cli, argv: list[str], name: str = "start") -> int:
    opts, args = START.parse(argv)
    if opts.attach or opts.interactive:
        if len(args) > 1:
            raise CommandError("you cannot attach to multiple containers at once")
        from dockyard.cli.run import start_attached

        return start_attached(cli, args[0], opts.interactive, opts.detach_keys)
    failed = _each(cli, args, lambda n: cli.client.post(f"/containers/{quote(n)}/start"))
    if failed:
        raise CommandError(f"Error: failed to start containers: {', '.join(failed)}")
    return 0


start.spec = START

STOP = Command("stop", "[OPTIONS] CONTAINER [CONTAINER...]",
               "Stop one or more running containers",
               [Flag("s", "signal", str), Flag("t", "timeout", int)], min_args=1)


def _stop_like(cli, argv: list[str], spec: Command, action: str) -> int:
    opts, args = spec.parse(argv)
    query = {"signal": opts.signal, "t": opts.timeout}
    failed = _each(cli, args, lambda n: cli.client.post(f"/containers/{quote(n)}/{action}",
                                                       query))
    return 1 if failed else 0


def stop(cli, argv: list[str], name: str = "stop") -> int:
    return _stop_like(cli, argv, STOP, "stop")


stop.spec = STOP

RESTART = Command("restart", "[OPTIONS] CONTAINER [CONTAINER...]",
                  "Restart one or more containers",
                  [Flag("s", "signal", str), Flag("t", "timeout", int)], min_args=1)


def restart(cli, argv: list[str], name: str = "restart") -> int:
    return _stop_like(cli, argv, RESTART, "restart")


restart.spec = RESTART

KILL = Command("kill", "[OPTIONS] CONTAINER [CONTAINER...]",
               "Kill one or more running containers", [Flag("s", "signal", str)], min_args=1)


def kill(cli, argv: list[str], name: str = "kill") -> int:
    opts, args = KILL.parse(argv)
    failed = _each(cli, args, lambda n: cli.client.post(f"/containers/{quote(n)}/kill",
                                                       {"signal": opts.signal}))
    return 1 if failed else 0


kill.spec = KILL

RM = Command("rm", "[OPTIONS] CONTAINER [CONTAINER...]", "Remove one or more containers",
             [Flag("f", "force", bool), Flag("l", "link", bool), Flag("v", "volumes", bool)],
             min_args=1)


def rm(cli, argv: list[str], name: str = "rm") -> int:
    opts, args = RM.parse(argv)
    query = {"force": opts.force or None, "v": opts.volumes or None, "link": opts.link or None}
    status = 0
    for n in args:
        try:
            cli.client.delete(f"/containers/{quote(n)}", query)
        except APIError as e:
            cli.err.write(f"Error response from daemon: {e.message}\n")
            status = 1
            continue
        cli.out.write(n + "\n")
    return status


rm.spec = RM


def _simple(spec: Command, action: str):
    def command(cli, argv: list[str], name: str = spec.name) -> int:
        _, args = spec.parse(argv)
        failed = _each(cli, args, lambda n: cli.client.post(f"/containers/{quote(n)}/{action}"))
        return 1 if failed else 0
    command.spec = spec
    return command


pause = _simple(Command("pause", "CONTAINER [CONTAINER...]",
                        "Pause all processes within one or more containers", [], 1), "pause")
unpause = _simple(Command("unpause", "CONTAINER [CONTAINER...]",
                          "Unpause all processes within one or more containers", [], 1),
                  "unpause")

WAIT = Command("wait", "CONTAINER [CONTAINER...]",
               "Block until one or more containers stop, then print their exit codes", [], 1)


def wait(cli, argv: list[str], name: str = "wait") -> int:
    _, args = WAIT.parse(argv)
    status = 0
    for n in args:
        try:
            r = cli.client.post(f"/containers/{quote(n)}/wait", {"condition": "not-running"})
        except APIError as e:
            cli.err.write(f"Error response from daemon: {e.message}\n")
            status = 1
            continue
        cli.out.write(f"{(r or {}).get('StatusCode', 0)}\n")
    return status


wait.spec = WAIT

RENAME = Command("rename", "CONTAINER NEW_NAME", "Rename a container", [], 2, 2)


def rename(cli, argv: list[str], name: str = "rename") -> int:
    _, (old, new) = RENAME.parse(argv)
    if not new.strip():
        raise CommandError("Error: neither old nor new names may be empty")
    try:
        cli.client.post(f"/containers/{quote(old)}/rename", {"name": new})
    except APIError as e:
        raise CommandError(f"Error response from daemon: {e.message}\n"
                           f"Error: failed to rename container named {old}") from None
    return 0


rename.spec = RENAME

UPDATE = Command("update", "[OPTIONS] CONTAINER [CONTAINER...]",
                 "Update configuration of one or more containers",
                 [Flag(None, "blkio-weight", int), Flag(None, "cpu-period", int),
                  Flag(None, "cpu-quota", int), Flag("c", "cpu-shares", int),
                  Flag(None, "cpus", float), Flag(None, "cpuset-cpus", str),
                  Flag(None, "cpuset-mems", str), Flag("m", "memory", str),
                  Flag(None, "memory-reservation", str), Flag(None, "memory-swap", str),
                  Flag(None, "pids-limit", int), Flag(None, "restart", str)], min_args=1)


def update(cli, argv: list[str], name: str = "update") -> int:
    opts, args = UPDATE.parse(argv)
    from dockyard.cli.runopts import parse_restart, ram_in_bytes

    if not opts.given:
        raise CommandError("you must provide one or more flags when using this command")
    body: dict = {}
    for flag, key in (("blkio_weight", "BlkioWeight"), ("cpu_period", "CpuPeriod"),
                      ("cpu_quota", "CpuQuota"), ("cpu_shares", "CpuShares"),
                      ("cpuset_cpus", "CpusetCpus"), ("cpuset_mems", "CpusetMems"),
                      ("pids_limit", "PidsLimit")):
        if flag in opts.given:
            body[key] = getattr(opts, flag)
    for flag, key in (("memory", "Memory"), ("memory_reservation", "MemoryReservation"),
                      ("memory_swap", "MemorySwap")):
        value = getattr(opts, flag)
        if value:
            body[key] = -1 if value == "-1" else ram_in_bytes(value)
    if opts.cpus is not None:
        body["NanoCpus"] = round(opts.cpus * 1e9)
    if opts.restart:
        body["RestartPolicy"] = parse_restart(opts.restart)
    status = 0
    for n in args:
        try:
            r = cli.client.post(f"/containers/{quote(n)}/update", None, body) or {}
        except APIError as e:
            cli.err.write(f"Error response from daemon: {e.message}\n")
            status = 1
            continue
        for w in r.get("Warnings") or []:
            cli.err.write(f"{w}\n")
        cli.out.write(n + "\n")
    return status


update.spec = UPDATE
