"""`dockyard-runc`: runc's command line over the runtime library.

Flags are parsed as runc's (urfave/cli over Go's flag package) parses them: global flags
before the command, command flags before the arguments, `-f`, `--flag`, `-flag`, `--flag=v`
and `--flag v` all accepted. No argparse: it costs 8 ms to import, more than half of what
`run` should take in all. Errors go out as runc writes them (log.py) with exit status 1.
"""

from __future__ import annotations

import os
import sys

from dockyard import __version__
from dockyard.runtime import log, state, tracepoints
from dockyard.runtime.errors import ConfigError, RuntimeError_
from dockyard.runtime.flags import (
    ALIASES,
    BOOL,
    COMMAND_FLAGS,
    GLOBAL_FLAGS,
    UPDATE_FLAGS,
    UsageError,
    parse_flags,
)

TYPE_CHECKING = False  # not from typing: importing typing costs ~9 ms
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

SPEC_VERSION = "1.2.0"
USAGE = {
    "create": "<container-id>", "run": "<container-id>", "start": "<container-id>",
    "state": "<container-id>", "delete": "<container-id>",
    "kill": "<container-id> [signal]", "list": "", "ps": "<container-id> [ps options]",
    "pause": "<container-id>", "resume": "<container-id>",
    "exec": "<container-id> <command> [command options]  || -p process.json <container-id>",
    "update": "<container-id>", "spec": "", "features": "", "events": "<container-id>",
    "checkpoint": "<container-id>", "restore": "<container-id>",
}


class Ctx:
    __slots__ = ("args", "g", "opts")

    def __init__(self, g: dict[str, Any], opts: dict[str, Any], args: list[str]) -> None:
        self.g = g
        self.opts = opts
        self.args = args

    @property
    def root(self) -> str:
        return self.g.get("root") or state.DEFAULT_ROOT

    def one_id(self, cmd: str) -> str:
        if len(self.args) != 1:
            raise UsageError(f'"{cmd}" requires exactly 1 argument(s)')
        return self.args[0]

    def load(self, cid: str) -> state.State:
        return state.load(self.root, cid)


def _out(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


# --- commands -----------------------------------------------------------------------------

def _create_opts(c: Ctx):
    from dockyard.runtime.container import Options

    return Options(console_socket=c.opts.get("console-socket"), pid_file=c.opts.get("pid-file"),
                   no_pivot=bool(c.opts.get("no-pivot")),
                   no_new_keyring=bool(c.opts.get("no-new-keyring")),
                   preserve_fds=c.opts.get("preserve-fds", 0),
                   systemd_cgroup=bool(c.g.get("systemd-cgroup")))


def cmd_create(c: Ctx) -> int:
    from dockyard.runtime import container

    cid = c.one_id("create")
    container.create(c.root, cid, c.opts.get("bundle") or ".", _create_opts(c))
    return 0


def cmd_run(c: Ctx) -> int:
    from dockyard.runtime import container, foreground

    cid = c.one_id("run")
    bundle = c.opts.get("bundle") or "."
    opts = _create_opts(c)
    detach = bool(c.opts.get("detach"))
    if not detach:
        foreground.become_subreaper()
        opts.foreground = True
    st = container.create(c.root, cid, bundle, opts)
    master = None
    if opts.console_ours is not None:
        from dockyard.runtime.linux import console

        master = console.recv_fd(opts.console_ours)
        os.close(opts.console_ours)
    try:
        container.start(st)
    except BaseException:
        container.delete(c.root, cid, force=True)
        raise
    tracepoints.mark("cli: container started")
    if detach:
        return 0
    code = foreground.wait(st.pid, master)
    tracepoints.mark("cli: container exited")
    if not c.opts.get("keep"):
        container.delete(c.root, cid, force=True)
        tracepoints.mark("cli: deleted")
    return code


def cmd_start(c: Ctx) -> int:
    from dockyard.runtime import container

    container.start(c.load(c.one_id("start")))
    return 0


def cmd_state(c: Ctx) -> int:
    from dockyard.runtime import container

    _out(container.oci_state_json(c.load(c.one_id("state"))) + "\n")
    return 0


def cmd_delete(c: Ctx) -> int:
    from dockyard.runtime import container
    from dockyard.runtime.errors import NotFound

    if not c.args:
        raise UsageError('"delete" requires a minimum of 1 argument(s)')
    failed = False
    for cid in c.args:
        try:
            container.delete(c.root, cid, force=bool(c.opts.get("force")))
        except NotFound:
            if not c.opts.get("force"):
                raise
        except RuntimeError_ as e:
            if len(c.args) == 1:
                raise
            log.error(str(e))
            failed = True
    return 1 if failed else 0


def parse_signal(s: str) -> int:
    import _signal

    if s.isdigit():
        n = int(s)
        if 0 < n < _signal.NSIG:
            return n
    else:
        name = s.upper()
        name = name if name.startswith("SIG") else "SIG" + name
        n = getattr(_signal, name, None)
        if isinstance(n, int):
            return n
    raise ConfigError(f"unknown signal {s!r}".replace("'", '"'))


def cmd_kill(c: Ctx) -> int:
    from dockyard.runtime import container

    if not 1 <= len(c.args) <= 2:
        raise UsageError('"kill" requires a minimum of 1 and a maximum of 2 argument(s)')
    sig = parse_signal(c.args[1]) if len(c.args) == 2 else 15
    container.kill(c.load(c.args[0]), sig, bool(c.opts.get("all")))
    return 0


def cmd_list(c: Ctx) -> int:
    rows = []
    for cid in state.list_ids(c.root):
        try:
            rows.append(state.load(c.root, cid).oci())
        except RuntimeError_:
            continue
    fmt = c.opts.get("format") or "table"
    if c.opts.get("quiet"):
        _out("".join(r["id"] + "\n" for r in rows))
    elif fmt == "json":
        from dockyard.runtime import jsonio

        _out(jsonio.dumps(rows) + "\n")
    elif fmt == "table":
        table = [["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]]
        table += [[r["id"], str(r["pid"]), r["status"], r["bundle"], r["created"], r["owner"]]
                  for r in rows]
        _out(tabulate(table))
    else:
        raise ConfigError("invalid format option")
    return 0


def tabulate(table: list[list[str]], minwidth: int = 12, padding: int = 3) -> str:
    """Go's tabwriter as runc sets it up (minwidth 12, padding 3; last column unpadded)."""
    widths = [max(minwidth, *(len(r[i]) + padding for r in table)) for i in range(len(table[0]))]
    lines = []
    for r in table:
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(r[:-1])]
        lines.append("".join(cells) + r[-1])
    return "".join(line + "\n" for line in lines)


def cmd_exec(c: Ctx) -> int:
    from dockyard.runtime import execute, jsonio

    if not c.args:
        raise UsageError('"exec" requires a minimum of 1 argument(s)')
    cid, cmd = c.args[0], c.args[1:]
    st = c.load(cid)
    o = c.opts
    if o.get("process"):
        try:
            with open(o["process"], "rb") as f:
                proc = jsonio.loads(f.read())
        except (OSError, jsonio.DecodeError) as e:
            raise ConfigError(f"unable to load process {o['process']}: {e}") from None
        if not isinstance(proc, dict):
            raise ConfigError("process file must hold a JSON object")
    else:
        if not cmd:
            raise UsageError("exec args cannot be empty")
        proc = execute.build_process(
            st.config["process"], cmd, cwd=o.get("cwd"), env=o.get("env"), user=o.get("user"),
            additional_gids=o.get("additional-gids"), caps=o.get("cap"),
            tty=bool(o.get("tty")), no_new_privs=bool(o.get("no-new-privs")))
    return execute.exec_process(st, proc, detach=bool(o.get("detach")),
                                pid_file=o.get("pid-file"),
                                console_socket=o.get("console-socket"),
                                preserve_fds=o.get("preserve-fds", 0),
                                ignore_paused=bool(o.get("ignore-paused")))


def _running_cgroup(c: Ctx, cmd: str):
    from dockyard.runtime.errors import FailedPrecondition
    from dockyard.runtime.linux import cgroups

    st = c.load(c.one_id(cmd) if cmd != "ps" else c.args[0])
    status = st.status()
    if status == "stopped" or not st.cgroup_paths:
        raise FailedPrecondition("container not running")
    return st, status, cgroups.load(st.cgroup_paths)


def cmd_pause(c: Ctx) -> int:
    _st, status, mgr = _running_cgroup(c, "pause")
    if status not in ("running", "created"):
        from dockyard.runtime.errors import FailedPrecondition

        raise FailedPrecondition("container not running")
    mgr.freeze()
    return 0


def cmd_resume(c: Ctx) -> int:
    _st, status, mgr = _running_cgroup(c, "resume")
    if status != "paused":
        from dockyard.runtime.errors import FailedPrecondition

        raise FailedPrecondition("container not paused")
    mgr.thaw()
    return 0


def cmd_ps(c: Ctx) -> int:
    from dockyard.runtime import jsonio

    if not c.args:
        raise UsageError('"ps" requires a minimum of 1 argument(s)')
    _st, _status, mgr = _running_cgroup(c, "ps")
    pids = mgr.pids()
    if (c.opts.get("format") or "table") == "json":
        _out(jsonio.dumps(pids) + "\n")
        return 0
    import subprocess

    ps_args = c.args[1:] or ["-ef"]
    out = subprocess.run(["ps", *ps_args], capture_output=True, text=True)
    if out.returncode != 0:
        raise ConfigError(f"ps: {out.stderr.strip()}")
    lines = out.stdout.splitlines()
    if not lines:
        return 0
    header = lines[0].split()
    if "PID" not in header:
        raise ConfigError("couldn't find PID field in ps output")
    col = header.index("PID")
    keep = set(pids)
    rows = [lines[0]] + [ln for ln in lines[1:]
                         if len(ln.split()) > col and ln.split()[col].isdigit()
                         and int(ln.split()[col]) in keep]
    _out("".join(r + "\n" for r in rows))
    return 0


def cmd_update(c: Ctx) -> int:
    from dockyard.runtime import jsonio
    from dockyard.runtime.linux import cgroups

    st = c.load(c.one_id("update"))
    if st.status() == "stopped":
        from dockyard.runtime.errors import FailedPrecondition

        raise FailedPrecondition("container not running")
    src = c.opts.get("resources")
    if src:
        try:
            if src == "-":
                data = sys.stdin.buffer.read()
            else:
                with open(src, "rb") as f:
                    data = f.read()
            update = jsonio.loads(data)
        except (OSError, jsonio.DecodeError) as e:
            raise ConfigError(f"unable to read resources: {e}") from None
        if not isinstance(update, dict):
            raise ConfigError("resources must be a JSON object")
    else:
        update = cgroups.resources_from_update_flags(
            {k: v for k, v in c.opts.items() if k in UPDATE_FLAGS})
    merged = cgroups.merge_resources(st.doc.get("resources") or {}, update)
    cgroups.load(st.cgroup_paths).set(merged)
    st.doc["resources"] = merged
    st.save()
    return 0


def cmd_spec(c: Ctx) -> int:
    from dockyard.runtime import jsonio, specgen

    bundle = c.opts.get("bundle") or "."
    path = os.path.join(bundle, "config.json")
    if os.path.exists(path):
        raise ConfigError("File config.json exists. Remove it first.")
    doc = specgen.default_spec()
    if c.opts.get("rootless"):
        doc = specgen.rootless_spec(doc, os.getuid(), os.getgid())
    with open(path, "w") as f:
        f.write(jsonio.dumps_pretty(doc, indent=2))
    return 0


def cmd_features(c: Ctx) -> int:
    from dockyard.runtime import features, jsonio

    _out(jsonio.dumps_pretty(features.features(), indent=4) + "\n")
    return 0


def cmd_events(c: Ctx) -> int:
    from dockyard.runtime import events

    st = c.load(c.one_id("events"))
    interval = c.opts.get("interval") or "5s"
    return events.run(st, bool(c.opts.get("stats")), events.parse_duration(interval))


def cmd_unsupported(c: Ctx) -> int:
    raise ConfigError("checkpoint/restore is not supported by dockyard-runc (no CRIU support)")


COMMANDS: dict[str, Callable[[Ctx], int]] = {
    "create": cmd_create, "run": cmd_run, "start": cmd_start, "state": cmd_state,
    "delete": cmd_delete, "kill": cmd_kill, "list": cmd_list, "exec": cmd_exec,
    "pause": cmd_pause, "resume": cmd_resume, "ps": cmd_ps, "update": cmd_update,
    "spec": cmd_spec, "features": cmd_features, "events": cmd_events,
    "checkpoint": cmd_unsupported, "restore": cmd_unsupported,
}


def version_text() -> str:
    return f"dockyard-runc version {__version__}\nspec: {SPEC_VERSION}\n"


def help_text(cmd: str | None = None) -> str:
    if cmd:
        flags = COMMAND_FLAGS[cmd]
        lines = [f"USAGE:\n   dockyard-runc {cmd} [command options] {USAGE[cmd]}\n", "OPTIONS:"]
        for name, (kind, aliases) in flags.items():
            names = ", ".join([f"--{name}"] + [f"-{a}" for a in aliases])
            lines.append(f"   {names}{'' if kind == BOOL else ' value'}")
        return "\n".join(lines) + "\n"
    return ("NAME:\n   dockyard-runc - Open Container Initiative runtime (Dockyard)\n\n"
            "USAGE:\n   dockyard-runc [global options] command [command options] "
            "[arguments...]\n\nCOMMANDS:\n" +
            "".join(f"   {n}\n" for n in COMMANDS) +
            "\nGLOBAL OPTIONS:\n   --debug\n   --log value\n   --log-format value (text|json)\n"
            "   --root value (default: \"/run/dockyard-runc\")\n   --systemd-cgroup\n"
            "   --help, -h\n   --version, -v\n")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        g, rest = parse_flags(argv, GLOBAL_FLAGS)
    except UsageError as e:
        _out(f"Incorrect Usage. {e}\n\n{help_text()}")
        log.error(str(e))
        return 1
    try:
        log.configure(g.get("log"), g.get("log-format") or "text", bool(g.get("debug")))
    except (ValueError, OSError) as e:
        sys.stderr.write(f"{e}\n")
        return 1
    if g.get("version"):
        _out(version_text())
        return 0
    if not rest or g.get("help"):
        _out(help_text())
        return 0
    name = ALIASES.get(rest[0], rest[0])
    if name not in COMMANDS:
        sys.stderr.write(f"No help topic for '{rest[0]}'\n")
        return 3
    try:
        opts, args = parse_flags(rest[1:], COMMAND_FLAGS[name])
        if opts.get("help"):
            _out(help_text(name))
            return 0
        return COMMANDS[name](Ctx(g, opts, args))
    except UsageError as e:
        _out(f"Incorrect Usage.\n\n{help_text(name)}")
        log.error(str(e) if str(e).startswith("flag") else f"dockyard-runc: {e}")
        return 1
    except (RuntimeError_, OSError) as e:
        msg = str(e)
        if isinstance(e, OSError) and e.strerror and len(e.args) == 2:
            msg = f"{e.strerror}" + (f": {e.filename}" if e.filename else "")
        if name in ("create", "run") and not isinstance(e, ConfigError):
            msg = f"runc {name} failed: unable to start container process: {msg}"
        log.error(msg)
        if not log.to_stderr():
            sys.stderr.write(msg + "\n")
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # a bug of ours: still one line, not a traceback (--debug shows it)
        if g.get("debug"):
            import traceback

            log.debug(traceback.format_exc())
        log.error(f"internal error: {type(e).__name__}: {e}")
        return 1
    finally:
        if "dockyard.runtime.process" in sys.modules:
            sys.modules["dockyard.runtime.process"].discard_prespawned()


if __name__ == "__main__":
    from dockyard.runtime.main import main as entry

    sys.exit(entry())
