"""From the ``dockerfile`` package's ``Command`` tuples to typed instructions, one function
per keyword, with BuildKit's argument-count rules, flags and messages
(``instructions/parse.go``, ``bflag.go``, ``commands_runmount.go``). Errors carry the
command's start line."""

from __future__ import annotations

import re
from collections.abc import Callable

import dockerfile as _df

from dockyard.build.flags import FlagError, ParsedFlags, go_duration, parse_flags, suggest
from dockyard.build.instructions import (
    INSTRUCTIONS,
    Add,
    Arg,
    ArgDef,
    Cmd,
    Copy,
    DockerfileError,
    Entrypoint,
    Env,
    Expose,
    From,
    Healthcheck,
    Heredoc,
    Instruction,
    KeyValue,
    Label,
    Maintainer,
    Onbuild,
    Run,
    Shell,
    StopSignal,
    User,
    Volume,
    Workdir,
)
from dockyard.build.mounts import Mount, MountError, mount_from, parse_mount
from dockyard.build.shell import Lexer, ShellError

_HEREDOC = re.compile(r"^(\d*)<<(-?)([^<]*)$")
_STAGE_NAME = re.compile(r"[a-z][a-z0-9-_.]*")


def parse_heredoc_word(word: str) -> Heredoc | None:
    """BuildKit's ParseHeredoc: ``<<EOF``, ``<<-EOF``, ``3<<"EOF"`` -> name/chomp/expand
    (quoting any part of the delimiter turns expansion off)."""
    m = _HEREDOC.match(word)
    if not m or not m.group(3):
        return None
    lex = Lexer("\\", skip_unset_env=True)
    words = lex.process(m.group(3), {}).words
    if len(words) != 1:
        return None
    lex.raw_quotes = True
    raw = lex.process(m.group(3), {}).words[0]
    expand = words[0].count("'") + words[0].count('"') == raw.count("'") + raw.count('"')
    return Heredoc(name=words[0], data="", chomp=m.group(2) == "-", expand=expand,
                   fd=int(m.group(1) or 0))


def _heredoc_marks(line: str) -> dict[str, Heredoc]:
    lex = Lexer("\\", raw_quotes=True, raw_escapes=True, skip_unset_env=True)
    try:
        words = lex.process(line, {}).words
    except ShellError:
        return {}
    marks = (parse_heredoc_word(w) for w in words)
    return {h.name: h for h in marks if h is not None}


def _with_data(mark: Heredoc, doc: _df.Heredoc) -> Heredoc:
    return Heredoc(name=mark.name, data=doc.content, chomp=mark.chomp, expand=mark.expand,
                   fd=doc.file_descriptor)


class _Request:
    """One command being parsed: its words, flags, escape token and source lines."""

    def __init__(self, c: _df.Command, escape: str, lines: list[str] | None) -> None:
        self.c = c
        self.args: tuple[str, ...] = tuple(c.value)
        self.escape = escape
        self.lines = lines
        self.base: dict[str, object] = {"line": c.start_line, "end_line": c.end_line,
                                        "original": c.original.strip()}

    def flags(self, spec: dict[str, str] | None = None) -> ParsedFlags:
        return parse_flags(self.c.flags, spec or {})

    def command_line(self) -> tuple[str, ...]:
        """handleJSONArgs: exec form keeps the argv; shell form is one joined line."""
        if self.c.json:
            return self.args
        return (" ".join(self.args),) if self.args else ()


def _at_least_one(cmd: str) -> DockerfileError:
    return DockerfileError(f"{cmd} requires at least one argument")


def _exactly_one(r: _Request, cmd: str) -> str:
    if len(r.args) != 1:
        raise DockerfileError(f"{cmd} requires exactly one argument")
    return r.args[0]


def _from(r: _Request) -> From:
    args, name = r.args, ""
    if len(args) == 3 and args[1].lower() == "as":
        name = args[2].lower()
        if not _STAGE_NAME.fullmatch(name):
            raise DockerfileError(f'invalid name for build stage: "{args[2]}", name can\'t '
                                  "start with a number or contain symbols")
    elif len(args) != 1:
        raise DockerfileError("FROM requires either one or three arguments")
    fl = r.flags({"platform": "string"})
    return From(image=args[0], name=name, platform=fl.string("platform"), **r.base)


def _run(r: _Request) -> Run:
    fl = r.flags({"mount": "strings", "network": "string", "security": "string"})
    network = fl.string("network", "default")
    if network not in ("default", "none", "host"):
        raise DockerfileError(f'invalid network mode "{network}"')
    security = fl.string("security", "sandbox")
    if security not in ("sandbox", "insecure"):
        raise DockerfileError(f'security mode "{security}" not supported')
    specs = fl.strings("mount")
    # A spec with variables is fully parsed only once expanded (StageEnv); until then
    # only its from= (which may not hold a variable) is known.
    mounts = tuple(_pending_mount(s) if "$" in s else parse_mount(s) for s in specs)
    c = r.c
    marks = _heredoc_marks(r.args[0]) if c.heredocs and not c.json and r.args else {}
    docs = tuple(_with_data(marks.get(d.name, Heredoc(name=d.name, data="")), d)
                 for d in c.heredocs)
    return Run(command=r.command_line(), json=c.json, heredocs=docs, mounts=mounts,
               mount_specs=specs, network=network, security=security, **r.base)


def _pending_mount(spec: str) -> Mount:
    ref = mount_from(spec)
    if re.search(r"\$.", ref):
        raise MountError("'from' doesn't support variable expansion, define alias stage instead")
    return Mount(from_=ref)


def _cmd(r: _Request) -> Cmd:
    r.flags()
    return Cmd(command=r.command_line(), json=r.c.json, **r.base)


def _entrypoint(r: _Request) -> Entrypoint:
    r.flags()
    return Entrypoint(command=r.command_line(), json=r.c.json, **r.base)


def _shell(r: _Request) -> Shell:
    r.flags()
    if not r.args:
        raise _at_least_one("SHELL")
    if not r.c.json:
        raise DockerfileError("SHELL requires the arguments to be in JSON form")
    return Shell(shell=r.args, **r.base)


def _kvps(r: _Request, name: str) -> tuple[KeyValue, ...]:
    r.flags()
    if not r.args:
        raise _at_least_one(name)
    if len(r.args) % 2:
        raise DockerfileError(f"Bad input to {name}, too many arguments")
    # The legacy form (ENV key value) has no "=" in its first word.
    rest = re.sub(r"^\s*\S+\s*", "", r.c.original, count=1).split(None, 1)
    legacy = bool(rest) and "=" not in rest[0]
    pairs = []
    for key, value in zip(r.args[::2], r.args[1::2], strict=True):
        if not key:
            raise DockerfileError(f"{name} names can not be blank")
        pairs.append(KeyValue(key=key, value=value, legacy=legacy))
    return tuple(pairs)


def _env(r: _Request) -> Env:
    return Env(pairs=_kvps(r, "ENV"), **r.base)


def _label(r: _Request) -> Label:
    return Label(pairs=_kvps(r, "LABEL"), **r.base)


def _arg(r: _Request) -> Arg:
    if not r.args:
        raise _at_least_one("ARG")
    defs = []
    for arg in r.args:
        key, eq, value = arg.partition("=")
        if eq and not key:
            raise DockerfileError("ARG names can not be blank")
        defs.append(ArgDef(name=key, default=value if eq else None))
    return Arg(args=tuple(defs), **r.base)


def _expose(r: _Request) -> Expose:
    if not r.args:
        raise _at_least_one("EXPOSE")
    r.flags()
    return Expose(ports=tuple(sorted(r.args)), **r.base)


def _volume(r: _Request) -> Volume:
    if not r.args:
        raise _at_least_one("VOLUME")
    r.flags()
    paths = tuple(v.strip() for v in r.args)
    if "" in paths:
        raise DockerfileError("VOLUME specified can not be an empty string")
    return Volume(paths=paths, json=r.c.json, **r.base)


def _user(r: _Request) -> User:
    user = _exactly_one(r, "USER")
    r.flags()
    return User(user=user, **r.base)


def _workdir(r: _Request) -> Workdir:
    path = _exactly_one(r, "WORKDIR")
    r.flags()
    return Workdir(path=path, **r.base)


def _maintainer(r: _Request) -> Maintainer:
    who = _exactly_one(r, "MAINTAINER")
    r.flags()
    return Maintainer(maintainer=who, **r.base)


def _stopsignal(r: _Request) -> StopSignal:
    # BuildKit never parses STOPSIGNAL's flags.
    return StopSignal(signal=_exactly_one(r, "STOPSIGNAL"), **r.base)


def _interval(fl: ParsedFlags, name: str) -> int:
    """parseOptInterval: a Go duration, 0 when absent or zero, else at least 1ms."""
    text = fl.string(name)
    if not text:
        return 0
    try:
        ns = go_duration(text)
    except ValueError as e:
        raise DockerfileError(str(e)) from None
    if ns != 0 and ns < 1_000_000:
        raise DockerfileError(f'Interval "{name}" cannot be less than 1ms')
    return ns


def _retries(fl: ParsedFlags) -> int:
    text = fl.string("retries")
    if not text:
        return 0
    if not re.fullmatch(r"[+-]?\d+", text):
        raise DockerfileError(f'strconv.ParseInt: parsing "{text}": invalid syntax')
    if int(text) < 0:
        raise DockerfileError(f"--retries cannot be negative ({int(text)})")
    return int(text)


def _healthcheck(r: _Request) -> Healthcheck:
    if not r.args:
        raise _at_least_one("HEALTHCHECK")
    typ, rest = r.args[0].upper(), r.args[1:]
    if typ == "NONE":
        if rest:
            raise DockerfileError("HEALTHCHECK NONE takes no arguments")
        return Healthcheck(test=("NONE",), **r.base)
    fl = r.flags({"interval": "string", "timeout": "string", "start-period": "string",
                  "start-interval": "string", "retries": "string"})
    if typ != "CMD":
        raise DockerfileError(f'Unknown type "{typ}" in HEALTHCHECK (try CMD)')
    line = rest if r.c.json else ((" ".join(rest),) if rest else ())
    if not line:
        raise DockerfileError("Missing command after HEALTHCHECK CMD")
    return Healthcheck(test=("CMD" if r.c.json else "CMD-SHELL", *line),
                       interval=_interval(fl, "interval"), timeout=_interval(fl, "timeout"),
                       start_period=_interval(fl, "start-period"),
                       start_interval=_interval(fl, "start-interval"),
                       retries=_retries(fl), **r.base)


def _onbuild(r: _Request) -> Onbuild:
    c = r.c
    if not c.value and not c.sub_cmd:
        raise _at_least_one("ONBUILD")
    r.flags()
    trigger_kw = (c.sub_cmd or "").strip().upper()
    if trigger_kw == "ONBUILD":
        raise DockerfileError("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
    if trigger_kw in ("MAINTAINER", "FROM"):
        raise DockerfileError(f"{trigger_kw} isn't allowed as an ONBUILD trigger")
    expression = re.sub(r"(?i)^\s*ONBUILD\s*", "", c.original).rstrip("\n")
    if r.lines and c.end_line > c.start_line and _heredoc_marks(expression):
        # The dockerfile package drops an ONBUILD trigger's heredoc bodies: take them from
        # the source, as BuildKit appends them to the expression.
        expression += "\n" + "\n".join(r.lines[c.start_line:c.end_line])
    prefix = "# escape=`\n" if r.escape == "`" else ""
    try:
        (inner,) = _df.parse_string(prefix + expression + "\n")
    except _df.GoParseError as e:
        raise DockerfileError(str(e)) from None
    inner = inner._replace(start_line=c.start_line, end_line=c.end_line)
    trigger = parse_command(inner, r.escape, expression.splitlines())
    return Onbuild(expression=expression, trigger=trigger, **r.base)


def _sources(r: _Request, name: str) -> tuple[tuple[str, ...], str, tuple[Heredoc, ...]]:
    *srcs, dest = r.args
    if parse_heredoc_word(dest) is not None:
        raise DockerfileError(f"{name} cannot accept a heredoc as a destination")
    docs = {d.name: d for d in r.c.heredocs}
    paths, inline = [], []
    for src in srcs:
        mark = parse_heredoc_word(src)
        if mark is None:
            paths.append(src)
        else:
            doc = docs.get(mark.name)
            inline.append(_with_data(mark, doc) if doc else mark)
    return tuple(paths), dest, tuple(inline)


def _need_dest(r: _Request, name: str) -> None:
    if len(r.args) < 2:
        raise DockerfileError(f"{name} requires at least two arguments, but only one was "
                              "provided. Destination could not be determined")


def _copy(r: _Request) -> Copy:
    _need_dest(r, "COPY")
    fl = r.flags({"exclude": "strings", "parents": "bool", "chown": "string",
                  "from": "string", "chmod": "string", "link": "bool"})
    srcs, dest, inline = _sources(r, "COPY")
    src_from = fl.string("from")
    if src_from and Lexer(r.escape).process(src_from, {}).result != src_from:
        raise DockerfileError("variable expansion is not supported for --from, define a new "
                              "stage with FROM using ARG from global scope as a workaround")
    return Copy(sources=srcs, dest=dest, inline=inline, from_=src_from,
                chown=fl.string("chown"), chmod=fl.string("chmod"), link=fl.boolean("link"),
                excludes=fl.strings("exclude"), parents=fl.boolean("parents"), **r.base)


def _add(r: _Request) -> Add:
    _need_dest(r, "ADD")
    fl = r.flags({"exclude": "strings", "chown": "string", "chmod": "string",
                  "link": "bool", "keep-git-dir": "bool", "checksum": "string",
                  "unpack": "bool"})
    srcs, dest, inline = _sources(r, "ADD")
    return Add(sources=srcs, dest=dest, inline=inline, chown=fl.string("chown"),
               chmod=fl.string("chmod"), link=fl.boolean("link"),
               excludes=fl.strings("exclude"), keep_git_dir=fl.boolean("keep-git-dir"),
               checksum=fl.string("checksum"),
               unpack=fl.boolean("unpack") if "unpack" in fl.used else None, **r.base)


_PARSERS: dict[str, Callable[[_Request], Instruction]] = {
    "ADD": _add, "ARG": _arg, "CMD": _cmd, "COPY": _copy, "ENTRYPOINT": _entrypoint,
    "ENV": _env, "EXPOSE": _expose, "FROM": _from, "HEALTHCHECK": _healthcheck,
    "LABEL": _label, "MAINTAINER": _maintainer, "ONBUILD": _onbuild, "RUN": _run,
    "SHELL": _shell, "STOPSIGNAL": _stopsignal, "USER": _user, "VOLUME": _volume,
    "WORKDIR": _workdir,
}
assert set(_PARSERS) == set(INSTRUCTIONS)


def parse_command(c: _df.Command, escape: str = "\\", lines: list[str] | None = None
                  ) -> Instruction:
    """One ``dockerfile.Command`` as a typed instruction. ``lines`` (the source's lines)
    lets ONBUILD recover its trigger's heredoc bodies."""
    parser = _PARSERS.get(c.cmd.upper())
    try:
        if parser is None:
            raise DockerfileError(suggest(f"unknown instruction: {c.cmd}", c.cmd,
                                          INSTRUCTIONS, False))
        return parser(_Request(c, escape, lines))
    except DockerfileError as e:
        raise DockerfileError(e.message, e.line or c.start_line) from None
    except (FlagError, MountError, ShellError) as e:
        raise DockerfileError(str(e), c.start_line) from None
