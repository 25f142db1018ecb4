"""runc's flags and how they are parsed (urfave/cli over Go's flag package): global flags
before the command, command flags before the arguments; `-f`, `--flag`, `-flag`,
`--flag=v` and `--flag v` all accepted.

A module of its own, importing nothing: the entry point (runtime/main.py) parses the command
line with it before the rest of the CLI is even imported.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not from typing: importing typing costs ~9 ms
if TYPE_CHECKING:
    from typing import Any

BOOL, STR, MULTI, INT = "bool", "str", "multi", "int"
GLOBAL_FLAGS = {
    "debug": (BOOL, ()), "log": (STR, ()), "log-format": (STR, ()), "root": (STR, ()),
    "criu": (STR, ()), "systemd-cgroup": (BOOL, ()), "rootless": (STR, ()),
    "help": (BOOL, ("h",)), "version": (BOOL, ("v",)),
}
_CREATE = {
    "bundle": (STR, ("b",)), "console-socket": (STR, ()), "pid-file": (STR, ()),
    "no-pivot": (BOOL, ()), "no-new-keyring": (BOOL, ()), "preserve-fds": (INT, ()),
    "help": (BOOL, ("h",)),
}
UPDATE_FLAGS = ("blkio-weight", "cpu-period", "cpu-quota", "cpu-burst", "cpu-share",
                "cpu-rt-period", "cpu-rt-runtime", "cpuset-cpus", "cpuset-mems", "memory",
                "memory-reservation", "memory-swap", "kernel-memory", "kernel-memory-tcp",
                "pids-limit", "l3-cache-schema", "mem-bw-schema")
COMMAND_FLAGS: dict[str, dict[str, tuple[str, tuple[str, ...]]]] = {
    "create": _CREATE,
    "run": {**_CREATE, "detach": (BOOL, ("d",)), "keep": (BOOL, ())},
    "start": {"help": (BOOL, ("h",))},
    "state": {"help": (BOOL, ("h",))},
    "delete": {"force": (BOOL, ("f",)), "help": (BOOL, ("h",))},
    "kill": {"all": (BOOL, ("a",)), "help": (BOOL, ("h",))},
    "list": {"format": (STR, ("f",)), "quiet": (BOOL, ("q",)), "help": (BOOL, ("h",))},
    "ps": {"format": (STR, ("f",)), "help": (BOOL, ("h",))},
    "pause": {"help": (BOOL, ("h",))},
    "resume": {"help": (BOOL, ("h",))},
    "exec": {
        "console-socket": (STR, ()), "cwd": (STR, ()), "env": (MULTI, ("e",)),
        "tty": (BOOL, ("t",)), "user": (STR, ("u",)), "additional-gids": (MULTI, ("g",)),
        "process": (STR, ("p",)), "detach": (BOOL, ("d",)), "pid-file": (STR, ()),
        "process-label": (STR, ()), "apparmor": (STR, ()), "no-new-privs": (BOOL, ()),
        "cap": (MULTI, ("c",)), "preserve-fds": (INT, ()), "cgroup": (MULTI, ()),
        "ignore-paused": (BOOL, ()), "help": (BOOL, ("h",)),
    },
    "update": {"resources": (STR, ("r",)), "help": (BOOL, ("h",)),
               **{f: (STR, ()) for f in UPDATE_FLAGS}},
    "spec": {"bundle": (STR, ("b",)), "rootless": (BOOL, ()), "help": (BOOL, ("h",))},
    "features": {"help": (BOOL, ("h",))},
    "events": {"interval": (STR, ()), "stats": (BOOL, ()), "help": (BOOL, ("h",))},
    "checkpoint": {"help": (BOOL, ("h",))},
    "restore": {"help": (BOOL, ("h",))},
}
ALIASES = {"ls": "list"}


class UsageError(Exception):
    pass


def parse_flags(argv: list[str], table: dict[str, tuple[str, tuple[str, ...]]],
                stop_at_positional: bool = True) -> tuple[dict[str, Any], list[str]]:
    names = {}
    for name, (_kind, aliases) in table.items():
        names[name] = name
        for a in aliases:
            names[a] = name
    opts: dict[str, Any] = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            i += 1
            break
        if not arg.startswith("-") or arg == "-":
            if stop_at_positional:
                break
            i += 1
            continue
        key, eq, val = arg.lstrip("-").partition("=")
        name = names.get(key)
        if name is None:
            raise UsageError(f"flag provided but not defined: -{key}")
        kind = table[name][0]
        if kind == BOOL:
            opts[name] = (val.lower() in ("1", "t", "true")) if eq else True
        else:
            if not eq:
                i += 1
                if i >= len(argv):
                    raise UsageError(f"flag needs an argument: -{key}")
                val = argv[i]
            if kind == MULTI:
                opts.setdefault(name, []).append(val)
            elif kind == INT:
                try:
                    opts[name] = int(val)
                except ValueError:
                    raise UsageError(f'invalid value "{val}" for flag -{key}: parse error')\
                        from None
            else:
                opts[name] = val
        i += 1
    return opts, argv[i:]
