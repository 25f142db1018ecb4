"""What each instruction of a stage sees: the ARG/ENV scoping rules of ``docker build``
as one small stateful object the executor walks a stage with.

The rules (BuildKit's ``dispatchArg``/``buildMetaArgs``, the classic builder's
``BuildArgs``):

- Global ARGs (before the first FROM) are visible to FROM lines only. Inside a stage an
  ARG is visible from its declaration on; ``ARG NAME`` without a default picks up the
  global value.
- A build arg (``--build-arg``) overrides a declared ARG's default; build args for ARGs
  never declared are not visible (the "not consumed" warning lists them), except the
  predefined proxy args (HTTP_PROXY, http_proxy, ... ALL_PROXY), usable undeclared.
- ENV (from the base image's config or an ENV instruction) wins over an ARG of the same
  name. ENV values persist in the image; ARG values are only in RUN's environment.
- All pairs of one ENV/LABEL are expanded against the state before that instruction.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping

from dockyard.build.dockerfile import Dockerfile
from dockyard.build.instructions import (
    Add,
    Arg,
    Copy,
    DockerfileError,
    Env,
    Expose,
    Heredoc,
    Instruction,
    KeyValue,
    Label,
    Run,
    StopSignal,
    User,
    Volume,
    Workdir,
)
from dockyard.build.mounts import MountError, parse_mount
from dockyard.build.shell import Lexer, ShellError, env_from_list

PROXY_ARGS = ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY",
              "ftp_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy")


class StageEnv:
    """The ARG/ENV state of one stage while it is dispatched. Build it from the Dockerfile
    (or the resolved global ARG values, ``Dockerfile.global_env``) and the build args;
    ``start`` it with the base image's config Env; then ``apply`` each instruction in
    order (or drive it word by word: ``declare``, ``set_env``, ``expand``)."""

    def __init__(self, df: Dockerfile | Mapping[str, str], build_args: Mapping[str, str],
                 image_env: Iterable[str] | Mapping[str, str] = (),
                 escape: str | None = None) -> None:
        self.build_args = dict(build_args)
        if isinstance(df, Dockerfile):
            self.global_args = df.global_env(self.build_args)
            self.escape = escape or df.escape
            self.used = {a.name for cmd in df.global_args for a in cmd.args}
        else:
            self.global_args = dict(df)
            self.escape = escape or "\\"
            self.used = set()
        self.env: dict[str, str] = {}
        self.args: dict[str, str | None] = {}
        self.start(image_env)

    def start(self, image_env: Iterable[str] | Mapping[str, str]) -> None:
        """Take the base image's config Env (``["K=V", ...]`` or a mapping)."""
        self.env = (dict(image_env) if isinstance(image_env, Mapping)
                    else env_from_list(list(image_env)))

    def expand_from(self, word: str) -> str:
        """A FROM word (image, ``--platform``) expanded with the global ARGs only."""
        try:
            return Lexer(self.escape).process(word, self.global_args).result
        except ShellError as e:
            raise DockerfileError(str(e)) from None

    def declare(self, name: str, default: str | None = None) -> str | None:
        """``ARG name[=default]`` with ``default`` already expanded: a build arg wins,
        then the default, then the global ARG's value. Returns the value taken."""
        if name in self.build_args:
            value: str | None = self.build_args[name]
        elif default is not None:
            value = default
        else:
            value = self.global_args.get(name)
        self.args[name] = value
        self.used.add(name)
        return value

    def get(self, name: str) -> str | None:
        """A declared ARG's value (None: declared without one, or not declared)."""
        return self.args.get(name)

    def set_env(self, key: str, value: str) -> None:
        self.env[key] = value

    # -- what is visible -------------------------------------------------------------
    def arg_values(self) -> dict[str, str]:
        """Declared ARGs that have a value, plus proxy build args given undeclared."""
        out = {k: self.build_args[k] for k in PROXY_ARGS
               if k in self.build_args and k not in self.args}
        out.update({k: v for k, v in self.args.items() if v is not None})
        return out

    def expansion_env(self) -> dict[str, str]:
        """What ``$VAR`` sees now: ARG values under ENV (ENV wins)."""
        return {**self.arg_values(), **self.env}

    def run_env(self) -> dict[str, str]:
        """RUN's environment: the config Env plus ARG values ENV does not override."""
        return self.expansion_env()

    def config_env(self) -> list[str]:
        """The image config's Env (``K=V`` in order); ARGs are never persisted."""
        return [f"{k}={v}" for k, v in self.env.items()]

    def history_args(self) -> list[str]:
        """The ``k=v`` build args the classic builder prefixes to a RUN's cache key and
        history (``|2 A=1 B=2 sh -c ...``): sorted, ENV-shadowed and undeclared proxy args
        left out."""
        return sorted(f"{k}={v}" for k, v in self.arg_values().items()
                      if k in self.args and k not in self.env)

    # -- expansion -------------------------------------------------------------------
    def expand(self, word: str) -> str:
        """One word expanded with quotes removed (ProcessWord)."""
        try:
            return Lexer(self.escape).process(word, self.expansion_env()).result
        except ShellError as e:
            raise DockerfileError(str(e)) from None

    def expand_words(self, word: str) -> list[str]:
        """Expanded and split on unquoted whitespace (ProcessWords, for EXPOSE)."""
        try:
            return Lexer(self.escape).process(word, self.expansion_env()).words
        except ShellError as e:
            raise DockerfileError(str(e)) from None

    def _raw(self, heredoc: Heredoc) -> Heredoc:
        if not heredoc.expand:
            return heredoc
        lex = Lexer("\\", skip_process_quotes=True)
        try:
            data = lex.process(heredoc.data, self.expansion_env()).result
        except ShellError as e:
            raise DockerfileError(str(e)) from None
        return dataclasses.replace(heredoc, data=data)

    def _pairs(self, pairs: tuple[KeyValue, ...]) -> tuple[KeyValue, ...]:
        return tuple(dataclasses.replace(p, key=self.expand(p.key), value=self.expand(p.value))
                     for p in pairs)

    def expand_instruction(self, inst: Instruction) -> Instruction:
        """``inst`` with its words expanded for the current state; instructions BuildKit
        does not expand (RUN/CMD/ENTRYPOINT lines, SHELL, HEALTHCHECK, ONBUILD,
        MAINTAINER) come back unchanged, except RUN's ``--mount`` values."""
        try:
            return self._expand(inst)
        except DockerfileError as e:
            raise DockerfileError(e.message, e.line or inst.line) from None
        except MountError as e:
            raise DockerfileError(str(e), inst.line) from None

    def _expand(self, inst: Instruction) -> Instruction:
        rep = dataclasses.replace
        if isinstance(inst, Env | Label):
            return rep(inst, pairs=self._pairs(inst.pairs))
        if isinstance(inst, Copy | Add):
            fields: dict[str, object] = {
                "sources": tuple(self.expand(s) for s in inst.sources),
                "dest": self.expand(inst.dest), "chown": self.expand(inst.chown),
                "chmod": self.expand(inst.chmod),
                "excludes": tuple(self.expand(x) for x in inst.excludes),
                "inline": tuple(self._raw(h) for h in inst.inline)}
            if isinstance(inst, Add):
                fields["checksum"] = self.expand(inst.checksum)
            return rep(inst, **fields)  # type: ignore[arg-type]
        if isinstance(inst, Workdir):
            return rep(inst, path=self.expand(inst.path))
        if isinstance(inst, User):
            return rep(inst, user=self.expand(inst.user))
        if isinstance(inst, StopSignal):
            return rep(inst, signal=self.expand(inst.signal))
        if isinstance(inst, Volume):
            return rep(inst, paths=tuple(self.expand(p) for p in inst.paths))
        if isinstance(inst, Expose):
            return rep(inst, ports=tuple(p for w in inst.ports for p in self.expand_words(w)))
        if isinstance(inst, Run) and inst.mount_specs:
            return rep(inst, mounts=tuple(parse_mount(s, self.expand) for s in inst.mount_specs))
        return inst

    # -- state changes ---------------------------------------------------------------
    def apply(self, inst: Instruction) -> Instruction:
        """Expand ``inst`` and take in its effect on the state (ARG declares, ENV sets);
        returns the expanded instruction, ARG defaults resolved to the values taken."""
        if isinstance(inst, Arg):
            return self._declare(inst)
        expanded = self.expand_instruction(inst)
        if isinstance(expanded, Env):
            for pair in expanded.pairs:
                self.set_env(pair.key, pair.value)
        return expanded

    def _declare(self, inst: Arg) -> Arg:
        resolved = []
        for arg in inst.args:
            default = arg.default
            if default is not None and arg.name not in self.build_args:
                try:
                    default = self.expand(default)
                except DockerfileError as e:
                    raise DockerfileError(e.message, inst.line) from None
            value = self.declare(arg.name, default)
            resolved.append(dataclasses.replace(arg, default=value))
        return dataclasses.replace(inst, args=tuple(resolved))


def unused_build_args(build_args: Iterable[str], declared: Iterable[str]) -> list[str]:
    """Build args no dispatched ARG consumed (the classic builder's
    ``[Warning] One or more build-args [...] were not consumed``), proxy args exempt."""
    seen = set(declared) | set(PROXY_ARGS)
    return sorted(k for k in build_args if k not in seen)
