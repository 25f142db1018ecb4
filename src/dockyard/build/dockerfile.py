"""A Dockerfile as data: parser directives, global ARGs, and stages of typed instructions
(``parse``), plus the two questions the executor asks of it before running anything —
which stages does the target need (``needed_stages``), and what does each stage's FROM
name once the global ARGs are applied (``Dockerfile.resolve_base``).

Text -> ``dockerfile.parse_string`` (BuildKit's own parser) -> ``instructions.parse_command``
-> ``Dockerfile``. What each instruction *sees* (ARG/ENV scoping and expansion) lives in
``scope.StageEnv``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import dockerfile as _df

from dockyard.build.commands import parse_command
from dockyard.build.flags import suggest
from dockyard.build.instructions import (
    Arg,
    Copy,
    DockerfileError,
    From,
    Instruction,
    Onbuild,
    Run,
)
from dockyard.build.mounts import mount_from
from dockyard.build.shell import Lexer, ShellError

_DIRECTIVE = re.compile(r"^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$")
_KNOWN_DIRECTIVES = ("syntax", "escape", "check")


@dataclass(frozen=True)
class Directives:
    """Parser directives from the top of the file; ``escape`` is ``\\`` or a backtick."""

    syntax: str = ""
    escape: str = "\\"
    check: str = ""


@dataclass(frozen=True)
class Stage:
    """One FROM and what follows. ``name`` is lowercased ("" when unnamed); ``base`` and
    ``platform`` are as written (see ``Dockerfile.resolve_base``)."""

    index: int
    name: str
    base: str
    platform: str
    from_: From
    instructions: tuple[Instruction, ...]

    @property
    def display_name(self) -> str:
        """How BuildKit names the stage in messages: its name or ``stage-<index>``."""
        return self.name or f"stage-{self.index}"


@dataclass(frozen=True)
class Dockerfile:
    directives: Directives
    global_args: tuple[Arg, ...]
    stages: tuple[Stage, ...]

    @property
    def escape(self) -> str:
        return self.directives.escape

    def stage(self, name_or_index: str | int) -> Stage:
        """A stage by name (case-insensitive) or index; KeyError when there is none."""
        if isinstance(name_or_index, int):
            if 0 <= name_or_index < len(self.stages):
                return self.stages[name_or_index]
            raise KeyError(f"invalid stage index {name_or_index}")
        wanted = name_or_index.lower()
        for st in reversed(self.stages):
            if st.name == wanted:
                return st
        raise KeyError(f'target stage "{name_or_index}" could not be found')

    def find_stage(self, ref: str) -> Stage | None:
        """The stage ``ref`` names — a stage name (case-insensitive) or an index such as
        ``COPY --from=0`` uses — or None when it names none (then it is an image)."""
        if re.fullmatch(r"\d+", ref):
            index = int(ref)
            return self.stages[index] if index < len(self.stages) else None
        try:
            return self.stage(ref)
        except KeyError:
            return None

    def parse_trigger(self, expression: str, line: int = 0) -> Instruction:
        """An ONBUILD trigger from a base image's config, with this file's escape token."""
        return parse_trigger(expression, self.escape, line)

    def global_env(self, build_args: Mapping[str, str],
                   predefined: Mapping[str, str] | None = None) -> dict[str, str]:
        """The values the global ARGs take (what FROM lines see): a build arg wins, else the
        default expanded with the global ARGs before it. ``predefined`` carries BuildKit's
        automatic platform args (TARGETARCH, ...) when the caller has them."""
        env = dict(predefined or {})
        lex = Lexer(self.escape)
        for cmd in self.global_args:
            for arg in cmd.args:
                if arg.name in build_args:
                    env[arg.name] = build_args[arg.name]
                elif arg.default is not None:
                    try:
                        env[arg.name] = lex.process(arg.default, env).result
                    except ShellError as e:
                        raise DockerfileError(str(e), cmd.line) from None
        return env

    def resolve_base(self, stage: Stage, build_args: Mapping[str, str],
                     predefined: Mapping[str, str] | None = None) -> str:
        """The stage's FROM image (or stage name) with the global ARGs expanded."""
        return self._expand_from(stage, stage.base, self.global_env(build_args, predefined),
                                 "base name ({}) should not be blank")

    def resolve_platform(self, stage: Stage, build_args: Mapping[str, str],
                         predefined: Mapping[str, str] | None = None) -> str:
        """``FROM --platform=`` expanded with the global ARGs ("" when not given)."""
        if not stage.platform:
            return ""
        return self._expand_from(stage, stage.platform,
                                 self.global_env(build_args, predefined),
                                 "empty platform value from expression {}")

    def _expand_from(self, stage: Stage, word: str, env: Mapping[str, str], blank: str) -> str:
        try:
            value = Lexer(self.escape).process(word, env).result
        except ShellError as e:
            raise DockerfileError(str(e), stage.from_.line) from None
        if not value:
            raise DockerfileError(blank.format(word), stage.from_.line)
        return value

    def base_stage(self, stage: Stage, build_args: Mapping[str, str],
                   predefined: Mapping[str, str] | None = None) -> Stage | None:
        """The earlier stage this one builds FROM, or None when its base is an image."""
        base = self.resolve_base(stage, build_args, predefined).lower()
        for earlier in reversed(self.stages[:stage.index]):
            if earlier.name and earlier.name == base:
                return earlier
        return None


def parse_directives(text: str) -> Directives:
    """Directives are ``# key=value`` lines at the very top; the first other line (blank,
    comment, instruction or unknown directive) ends them, as BuildKit's DirectiveParser."""
    found: dict[str, str] = {}
    for number, raw in enumerate(text.lstrip("\ufeff").splitlines(), 1):
        m = _DIRECTIVE.match(raw.strip())
        if not m or m.group(1).lower() not in _KNOWN_DIRECTIVES:
            break
        key = m.group(1).lower()
        if key in found:
            raise DockerfileError(f"only one {key} parser directive can be used", number)
        found[key] = m.group(2)
    escape = found.get("escape", "\\")
    if escape not in ("\\", "`"):
        raise DockerfileError(f"invalid escape token '{escape}' does not match ` or \\")
    return Directives(syntax=found.get("syntax", ""), escape=escape,
                      check=found.get("check", ""))


def _error_line(text: str, message: str, escape: str) -> int | None:
    """The dockerfile package's errors have no line: find the first prefix of the file
    that fails with the same message, then step back over continuation lines."""
    if message == "file with no instructions":
        return None
    lines = text.splitlines()
    for k in range(1, len(lines) + 1):
        try:
            _df.parse_string("\n".join(lines[:k]) + "\n")
        except _df.GoParseError as e:
            if str(e) != message:
                continue
            start = k
            while start > 1 and lines[start - 2].rstrip().endswith(escape):
                start -= 1
            return start
    return None


def parse(text: str) -> Dockerfile:
    """Parse a Dockerfile; any problem is a ``DockerfileError`` with BuildKit's message and,
    where there is one, the line."""
    if not text:
        raise DockerfileError("the Dockerfile cannot be empty")
    directives = parse_directives(text)
    try:
        commands = _df.parse_string(text)
    except _df.GoParseError as e:
        raise DockerfileError(str(e), _error_line(text, str(e), directives.escape)) from None
    lines = text.splitlines()
    global_args: list[Arg] = []
    stages: list[Stage] = []
    body: list[Instruction] = []
    head: From | None = None

    def close() -> None:
        if head is not None:
            stages.append(Stage(index=len(stages), name=head.name, base=head.image,
                                platform=head.platform, from_=head, instructions=tuple(body)))

    for command in commands:
        inst = parse_command(command, directives.escape, lines)
        if isinstance(inst, From):
            close()
            head, body = inst, []
        elif head is None:
            if not isinstance(inst, Arg):
                raise DockerfileError("no build stage in current context", inst.line)
            global_args.append(inst)
        else:
            body.append(inst)
    close()
    if not stages:
        raise DockerfileError("dockerfile contains no stages to build")
    return Dockerfile(directives=directives, global_args=tuple(global_args),
                      stages=tuple(stages))


def parse_trigger(expression: str, escape: str = "\\", line: int = 0) -> Instruction:
    """An ONBUILD trigger from a base image's config, parsed as an instruction."""
    prefix = "# escape=`\n" if escape == "`" else ""
    try:
        commands = _df.parse_string(prefix + expression + "\n")
    except _df.GoParseError as e:
        raise DockerfileError(str(e), line or None) from None
    if len(commands) != 1:
        raise DockerfileError("onbuild trigger should be a single expression", line or None)
    command = commands[0]._replace(start_line=line, end_line=line)
    inst = parse_command(command, escape, expression.splitlines())
    if inst.keyword in ("ONBUILD", "FROM", "MAINTAINER"):
        raise DockerfileError(f"{inst.keyword} isn't allowed as an ONBUILD trigger", line or None)
    return inst


def _copy_source(df: Dockerfile, stage: Stage, inst: Copy) -> Stage | None:
    """The stage a ``COPY --from`` names (by name or index), None for an image."""
    ref = inst.from_
    if re.fullmatch(r"[+-]?\d+", ref):
        index = int(ref)
        if not 0 <= index < len(df.stages):
            raise DockerfileError(f"invalid stage index {index}", inst.line)
        src = df.stages[index]
    else:
        try:
            src = df.stage(ref)
        except KeyError:
            return None
    if src.index >= stage.index:
        if src.index == stage.index:
            raise DockerfileError(f"circular dependency detected on stage: {stage.display_name}",
                                  inst.line)
        raise DockerfileError(f'cannot copy from stage "{ref}", it needs to be defined before '
                              f'current stage "{stage.display_name}"', inst.line)
    return src


def _mount_sources(df: Dockerfile, stage: Stage, inst: Run) -> list[Stage]:
    found = []
    for spec in inst.mount_specs:
        ref = mount_from(spec)
        if not ref:
            continue
        try:
            src = df.stage(ref)
        except KeyError:
            continue
        if src.index >= stage.index:
            target = next((m.target for m in inst.mounts if m.from_ == ref), "")
            raise DockerfileError(f'cannot mount from stage "{ref}" to "{target}", stage needs '
                                  "to be defined before current command", inst.line)
        found.append(src)
    return found


def stage_dependencies(df: Dockerfile, stage: Stage, build_args: Mapping[str, str],
                       predefined: Mapping[str, str] | None = None) -> list[Stage]:
    """The stages one stage reads: its FROM base, ``COPY --from`` and ``RUN --mount from=``
    (its base stage's ONBUILD triggers included, since they run here)."""
    deps: list[Stage] = []
    base = df.base_stage(stage, build_args, predefined)
    own = list(stage.instructions)
    if base is not None:
        deps.append(base)
        own += [i.trigger for i in base.instructions if isinstance(i, Onbuild)]
    for inst in own:
        if isinstance(inst, Copy) and inst.from_:
            src = _copy_source(df, stage, inst)
            if src is not None:
                deps.append(src)
        elif isinstance(inst, Run):
            deps.extend(_mount_sources(df, stage, inst))
    return deps


def needed_stages(df: Dockerfile, target: str | None = None,
                  build_args: Mapping[str, str] | None = None,
                  predefined: Mapping[str, str] | None = None) -> list[Stage]:
    """The stages building ``target`` (default: the last stage) needs, target included, in
    an order where each comes after what it reads (file order) — unused stages are left
    out, as BuildKit skips them."""
    if target:
        try:
            goal = df.stage(target)
        except KeyError:
            names = [s.name for s in df.stages if s.name]
            raise DockerfileError(suggest(f'target stage "{target}" could not be found', target,
                                          names, True)) from None
    else:
        goal = df.stages[-1]
    args = build_args or {}
    seen: dict[int, Stage] = {}
    todo = [goal]
    while todo:
        st = todo.pop()
        if st.index in seen:
            continue
        seen[st.index] = st
        todo.extend(stage_dependencies(df, st, args, predefined))
    return [seen[i] for i in sorted(seen)]


def declared_arg_names(df: Dockerfile, stages: list[Stage] | tuple[Stage, ...]) -> set[str]:
    """Every ARG name the global scope and the given stages declare (to find build args
    nobody consumed: ``scope.unused_build_args``)."""
    names = {a.name for cmd in df.global_args for a in cmd.args}
    for st in stages:
        names |= {a.name for i in st.instructions if isinstance(i, Arg) for a in i.args}
    return names
