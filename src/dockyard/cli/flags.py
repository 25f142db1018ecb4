"""Flags as docker's (pflag) parses them: `-a`, `-it` (bools grouped), `-e X`, `-eX`,
`--env X`, `--env=X`, `--rm=false`, `--` and, for run/create/exec, flags only before the
first argument (`interspersed=False`).

    spec = Command("rm", "[OPTIONS] CONTAINER [CONTAINER...]", "Remove one or more containers",
                   [Flag("f", "force", bool), Flag("v", "volumes", bool)], min_args=1)
    opts, args = spec.parse(argv)        # opts.force, args == ["web"]
"""

from __future__ import annotations

PROG = "dockyard"


class UsageError(Exception):
    """Bad flags or arguments: docker prints the message and exits 125 (flags) or 1."""

    def __init__(self, message: str, status: int = 125) -> None:
        super().__init__(message)
        self.status = status


class CommandError(Exception):
    """A failure the command already phrased; `status` is the exit code."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


class HelpRequested(Exception):
    pass


class Flag:
    __slots__ = ("default", "help", "kind", "long", "short")

    def __init__(self, short: str | None, long: str, kind=bool, default=None,
                 help: str = "") -> None:
        self.short = short
        self.long = long
        self.kind = kind        # bool, str, int, float or list (repeatable)
        self.default = ([] if kind is list else False if kind is bool else None) \
            if default is None else default
        self.help = help

    @property
    def dest(self) -> str:
        return self.long.replace("-", "_")


class Options:
    """Parsed flags as attributes, plus which ones were given (`given`)."""

    def __init__(self, flags: list[Flag]) -> None:
        self.given: set[str] = set()
        for f in flags:
            setattr(self, f.dest, list(f.default) if f.kind is list else f.default)


def _bool(value: str, name: str) -> bool:
    v = value.lower()
    if v in ("1", "t", "true"):
        return True
    if v in ("0", "f", "false"):
        return False
    raise UsageError(f'invalid argument "{value}" for "{name}" flag: strconv.ParseBool: '
                     f'parsing "{value}": invalid syntax')


class Command:
    def __init__(self, name: str, usage: str, summary: str, flags: list[Flag] | None = None,
                 min_args: int = 0, max_args: int | None = None,
                 interspersed: bool = True) -> None:
        self.name = name
        self.usage = usage
        self.summary = summary
        self.flags = flags or []
        self.min_args = min_args
        self.max_args = max_args
        self.interspersed = interspersed

    def help_text(self) -> str:
        lines = [f"\nUsage:  {PROG} {self.name} {self.usage}\n", self.summary, ""]
        if self.flags:
            from dockyard.cli.helptext import FLAG_HELP

            lines.append("Options:")
            for f in sorted(self.flags, key=lambda f: f.long):
                names = (f"-{f.short}, " if f.short else "    ") + f"--{f.long}"
                kind = {str: " string", int: " int", float: " decimal", list: " list"}.get(
                    f.kind, "")
                text = (f.help or FLAG_HELP.get(f.long, "")).replace("\n", "\n" + " " * 30)
                lines.append(f"  {names + kind:<28}{text}")
        return "\n".join(lines) + "\n"

    def _trailer(self, see: str = "Run") -> str:
        return (f"\n\nUsage:  {PROG} {self.name} {self.usage}\n\n"
                f"{see} '{PROG} {self.name} --help' for more information")

    def _arg_error(self, message: str, see: str = "Run") -> UsageError:
        """cobra's positional-argument errors as docker words them (exit 1)."""
        return UsageError(f"{PROG}: '{PROG} {self.name}' {message}{self._trailer(see)}",
                          status=1)

    def _flag_error(self, message: str) -> UsageError:
        return UsageError(message + self._trailer(), status=125)

    def parse(self, argv: list[str]) -> tuple[Options, list[str]]:
        longs = {f.long: f for f in self.flags}
        shorts = {f.short: f for f in self.flags if f.short}
        opts = Options(self.flags)
        args: list[str] = []
        i = 0

        def take(f: Flag, value: str | None, name: str) -> None:
            nonlocal i
            if f.kind is bool:
                setattr(opts, f.dest, True if value is None else _bool(value, name))
                opts.given.add(f.dest)
                return
            if value is None:
                i += 1
                if i >= len(argv):
                    shown = f"'{name[1]}' in {name}" if len(name) == 2 else name
                    raise self._flag_error(f"flag needs an argument: {shown}")
                value = argv[i]
            if f.kind is list:
                if f.long == "filter" and "=" not in value:
                    shown = f"-{f.short}, --{f.long}" if f.short else f"--{f.long}"
                    raise self._flag_error(f'invalid argument "{value}" for "{shown}" flag: '
                                           "bad format of filter (expected name=value)")
                getattr(opts, f.dest).append(value)
            elif f.kind in (int, float):
                try:
                    setattr(opts, f.dest, f.kind(value))
                except ValueError:
                    shown = f"-{f.short}, --{f.long}" if f.short else f"--{f.long}"
                    raise self._flag_error(
                        f'invalid argument "{value}" for "{shown}" flag: strconv.Parse'
                        f'{"Int" if f.kind is int else "Float"}: parsing "{value}": '
                        "invalid syntax") from None
            else:
                setattr(opts, f.dest, value)
            opts.given.add(f.dest)

        while i < len(argv):
            a = argv[i]
            if a == "--":
                args += argv[i + 1:]
                break
            if a.startswith("--") and len(a) > 2:
                name, eq, value = a[2:].partition("=")
                if name == "help":
                    raise HelpRequested()
                f = longs.get(name)
                if f is None:
                    raise self._flag_error(f"unknown flag: --{name}")
                take(f, value if eq else None, f"--{name}")
            elif a.startswith("-") and len(a) > 1:
                j = 1
                while j < len(a):
                    c = a[j]
                    if c == "h" and "h" not in shorts:
                        raise HelpRequested()
                    f = shorts.get(c)
                    if f is None:
                        raise self._flag_error(f"unknown shorthand flag: '{c}' in {a}")
                    if f.kind is bool:
                        if a[j + 1:j + 2] == "=":
                            take(f, a[j + 2:], f"-{c}")
                            break
                        take(f, None, f"-{c}")
                        j += 1
                        continue
                    rest = a[j + 1:]
                    take(f, (rest[1:] if rest.startswith("=") else rest) or None, f"-{c}")
                    break
            else:
                if not self.interspersed:
                    args += argv[i:]
                    break
                args.append(a)
            i += 1
        n = len(args)
        lo, hi = self.min_args, self.max_args
        plural = "argument" if (hi if hi is not None else lo) == 1 else "arguments"
        if hi == 0 and n:
            raise self._arg_error("accepts no arguments")
        if lo == hi and n != lo:
            raise self._arg_error(f"requires {lo} {plural}")
        if n < lo:
            if hi is not None:
                raise self._arg_error(f"requires at least {lo} and at most {hi} {plural}")
            raise self._arg_error(f"requires at least {lo} "
                                  f"{'argument' if lo == 1 else 'arguments'}", see="See")
        if hi is not None and n > hi:
            if lo:
                raise self._arg_error(f"requires at least {lo} and at most {hi} {plural}")
            raise self._arg_error(f"requires at most {hi} {plural}")
        return opts, args


def parse_filters(items: list[str]) -> dict | None:
    out: dict[str, list[str]] = {}
    for item in items:
        k, _, v = item.partition("=")  # checked by Command.parse
        out.setdefault(k.strip().lower(), []).append(v)
    return out or None


def parse_time(value: str | None) -> str | None:
    """docker's --since/--until: Unix seconds, an RFC 3339 time or a duration (10m)."""
    if not value:
        return None
    import time

    units = {"s": 1, "m": 60, "h": 3600}
    if value[-1] in units and value[:-1].replace(".", "", 1).isdigit():
        return str(int(time.time() - float(value[:-1]) * units[value[-1]]))
    if value.replace(".", "", 1).isdigit():
        return value
    from dockyard.cli.formatting import parse_timestamp

    ts = parse_timestamp(value if "T" in value else value + "T00:00:00Z")
    return str(int(ts)) if ts else value
