"""Typed Dockerfile instructions: one frozen dataclass per keyword (made by
``commands.parse_command`` the way BuildKit's ``instructions/parse.go`` makes its
commands), so the executor ``match``es on a closed union instead of re-reading raw words.

Words are kept as written (quotes, ``$VAR``): expansion depends on the stage's ARG/ENV
state and happens later (``scope.StageEnv.apply``). Every instruction carries its
1-based ``line``/``end_line`` and ``original`` text (heredoc bodies included).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

from dockyard.build.mounts import Mount


class DockerfileError(ValueError):
    """A Dockerfile BuildKit would reject. ``message`` is BuildKit's; ``line`` (1-based) is
    where, when known. ``str()`` reads ``dockerfile parse error on line N: <message>``."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message, line)
        self.message = message
        self.line = line

    def __str__(self) -> str:
        if self.line is None:
            return self.message
        return f"dockerfile parse error on line {self.line}: {self.message}"


@dataclass(frozen=True, kw_only=True)
class Instruction:
    keyword: ClassVar[str] = ""
    line: int
    end_line: int
    original: str


@dataclass(frozen=True, kw_only=True)
class KeyValue:
    """One ENV/LABEL pair; ``legacy`` marks the ``ENV key value`` form."""

    key: str
    value: str
    legacy: bool = False


@dataclass(frozen=True, kw_only=True)
class ArgDef:
    name: str
    default: str | None = None


@dataclass(frozen=True, kw_only=True)
class Heredoc:
    """An inline file: ``data`` as written; ``chomp`` (``<<-``) strips leading tabs;
    ``expand`` is False when the delimiter was quoted; ``fd`` is ``3`` in ``3<<EOF``."""

    name: str
    data: str
    chomp: bool = False
    expand: bool = True
    fd: int = 0

    @property
    def content(self) -> str:
        return re.sub(r"(?m)^\t+", "", self.data) if self.chomp else self.data


@dataclass(frozen=True, kw_only=True)
class From(Instruction):
    keyword: ClassVar[str] = "FROM"
    image: str
    name: str = ""
    platform: str = ""


@dataclass(frozen=True, kw_only=True)
class Run(Instruction):
    """``command`` is the exec-form argv (``json``) or a one-element shell command line;
    ``mounts`` are parsed as written, ``mount_specs`` kept for re-parsing after expansion."""

    keyword: ClassVar[str] = "RUN"
    command: tuple[str, ...]
    json: bool = False
    heredocs: tuple[Heredoc, ...] = ()
    mounts: tuple[Mount, ...] = ()
    mount_specs: tuple[str, ...] = ()
    network: str = "default"
    security: str = "sandbox"

    def shell_line(self) -> tuple[str, Heredoc | None]:
        """What the shell runs for a shell-form RUN, heredocs folded in as BuildKit's
        dispatchRun does: a lone ``<<EOF`` runs its (chomped) body — or, if that starts with
        ``#!``, a file the executor writes at ``/dev/pipes/<name>`` (mode 0755, returned
        second) and the line names; otherwise the heredocs are appended for the shell."""
        if not self.heredocs:
            return (self.command[0] if self.command else ""), None
        if self.json or len(self.command) != 1:
            raise DockerfileError(f"parsing produced an invalid run command: {self.command}")
        first = self.heredocs[0]
        if re.fullmatch(r"\d*<<-?\s*[\"']?" + re.escape(first.name) + r"[\"']?",
                        self.command[0].strip()):
            if first.content.startswith("#!"):
                return "/dev/pipes/" + first.name, first
            return first.content, None
        return self.command[0] + "".join(f"\n{h.data}{h.name}" for h in self.heredocs), None


@dataclass(frozen=True, kw_only=True)
class Cmd(Instruction):
    keyword: ClassVar[str] = "CMD"
    command: tuple[str, ...]
    json: bool = False


@dataclass(frozen=True, kw_only=True)
class Entrypoint(Instruction):
    """An empty ``command`` in JSON form (``ENTRYPOINT []``) resets the entrypoint."""

    keyword: ClassVar[str] = "ENTRYPOINT"
    command: tuple[str, ...]
    json: bool = False


@dataclass(frozen=True, kw_only=True)
class Shell(Instruction):
    keyword: ClassVar[str] = "SHELL"
    shell: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class Env(Instruction):
    keyword: ClassVar[str] = "ENV"
    pairs: tuple[KeyValue, ...]


@dataclass(frozen=True, kw_only=True)
class Label(Instruction):
    keyword: ClassVar[str] = "LABEL"
    pairs: tuple[KeyValue, ...]


@dataclass(frozen=True, kw_only=True)
class Arg(Instruction):
    keyword: ClassVar[str] = "ARG"
    args: tuple[ArgDef, ...]


@dataclass(frozen=True, kw_only=True)
class Expose(Instruction):
    """Ports as written (sorted, as BuildKit does); EXPOSE splits them after expansion."""

    keyword: ClassVar[str] = "EXPOSE"
    ports: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class Volume(Instruction):
    keyword: ClassVar[str] = "VOLUME"
    paths: tuple[str, ...]
    json: bool = False


@dataclass(frozen=True, kw_only=True)
class User(Instruction):
    keyword: ClassVar[str] = "USER"
    user: str


@dataclass(frozen=True, kw_only=True)
class Workdir(Instruction):
    keyword: ClassVar[str] = "WORKDIR"
    path: str


@dataclass(frozen=True, kw_only=True)
class StopSignal(Instruction):
    keyword: ClassVar[str] = "STOPSIGNAL"
    signal: str


@dataclass(frozen=True, kw_only=True)
class Maintainer(Instruction):
    keyword: ClassVar[str] = "MAINTAINER"
    maintainer: str


@dataclass(frozen=True, kw_only=True)
class Healthcheck(Instruction):
    """``test`` is Docker's HealthConfig.Test: ``("NONE",)``, ``("CMD", argv...)`` or
    ``("CMD-SHELL", line)``; durations in nanoseconds (0: inherit the default)."""

    keyword: ClassVar[str] = "HEALTHCHECK"
    test: tuple[str, ...]
    interval: int = 0
    timeout: int = 0
    start_period: int = 0
    start_interval: int = 0
    retries: int = 0


@dataclass(frozen=True, kw_only=True)
class Onbuild(Instruction):
    """``expression`` is what goes into the image's OnBuild list; ``trigger`` the parsed
    instruction (with this ONBUILD's line numbers)."""

    keyword: ClassVar[str] = "ONBUILD"
    expression: str
    trigger: Instruction


@dataclass(frozen=True, kw_only=True)
class Copy(Instruction):
    """``sources`` are paths; ``inline`` the heredoc sources (``COPY <<EOF /dst``)."""

    keyword: ClassVar[str] = "COPY"
    sources: tuple[str, ...]
    dest: str
    inline: tuple[Heredoc, ...] = ()
    from_: str = ""
    chown: str = ""
    chmod: str = ""
    link: bool = False
    excludes: tuple[str, ...] = ()
    parents: bool = False


@dataclass(frozen=True, kw_only=True)
class Add(Instruction):
    """``unpack`` is None unless ``--unpack`` was written."""

    keyword: ClassVar[str] = "ADD"
    sources: tuple[str, ...]
    dest: str
    inline: tuple[Heredoc, ...] = ()
    chown: str = ""
    chmod: str = ""
    link: bool = False
    excludes: tuple[str, ...] = ()
    keep_git_dir: bool = False
    checksum: str = ""
    unpack: bool | None = None


INSTRUCTIONS = ("ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "FROM",
                "HEALTHCHECK", "LABEL", "MAINTAINER", "ONBUILD", "RUN", "SHELL", "STOPSIGNAL",
                "USER", "VOLUME", "WORKDIR")

# The closed union the executor matches on (FROM only ever heads a stage).
AnyInstruction = (Add | Arg | Cmd | Copy | Entrypoint | Env | Expose | From | Healthcheck | Label
                  | Maintainer | Onbuild | Run | Shell | StopSignal | User | Volume | Workdir)
