"""create, run, attach, start -a, exec: the commands that stream a container's stdio.

`run` does what docker's does, in its order: create (pulling the image when the daemon does
not have it), attach, wait (condition next-exit, or removed with --rm), start, pump the
streams, exit with the container's status. 125 is a daemon error, 126/127 a command that
cannot run. Without a TTY, Ctrl-C is forwarded to the container (--sig-proxy); with one, the
terminal is raw and the daemon sees the keys (Ctrl-P Ctrl-Q detaches).
"""

from __future__ import annotations

import os
import sys

from dockyard.cli.flags import PROG, Command, CommandError, Flag
from dockyard.cli.runopts import RUN_FLAGS, container_config
from dockyard.client.api import APIError, quote
from dockyard.client.stream import Demuxer

RUN = Command("run", "[OPTIONS] IMAGE [COMMAND] [ARG...]",
              "Create and run a new container from an image", RUN_FLAGS, min_args=1,
              interspersed=False)
CREATE = Command("create", "[OPTIONS] IMAGE [COMMAND] [ARG...]", "Create a new container",
                 [f for f in RUN_FLAGS if f.long not in ("detach", "rm", "sig-proxy",
                                                         "detach-keys")]
                 + [Flag(None, "rm", bool)], min_args=1, interspersed=False)


def _report(cli, command: str, message: str, status: int = 125) -> CommandError:
    return CommandError(f"{PROG}: {message}\n\nRun '{PROG} {command} --help' for more "
                        "information", status)


def _start_status(message: str) -> int:
    if ("executable file not found" in message or "no such file or directory" in message
            or "system cannot find the file specified" in message):
        return 127
    if "permission denied" in message or "is a directory" in message:
        return 126
    return 125


def create_container(cli, opts, args: list[str], command: str) -> str:
    """POST /containers/create, pulling the image first when it is missing (as --pull
    says); the container's ID."""
    from dockyard.cli.images import pull_image
    from dockyard.cli.references import familiar, with_default_tag

    image = args[0]
    body = container_config(opts, image, args[1:])
    query = {"name": opts.name, "platform": opts.platform}
    if opts.pull not in ("missing", "always", "never"):
        raise _report(cli, command, f'invalid pull option: \'{opts.pull}\': must be one of '
                      '"always", "missing" or "never"')
    if opts.pull == "always":
        pull_image(cli, image, opts.quiet, opts.platform, out=cli.err)
    try:
        created = cli.client.post("/containers/create", query, body)
    except APIError as e:
        if e.status != 404 or opts.pull != "missing" or "image" not in e.message.lower():
            raise _report(cli, command, f"Error response from daemon: {e.message}") from None
        cli.err.write(f"Unable to find image '{familiar(with_default_tag(image)[0])}' "
                      "locally\n")
        cli.err.flush()
        try:
            pull_image(cli, image, opts.quiet, opts.platform, out=cli.err)
            created = cli.client.post("/containers/create", query, body)
        except APIError as e2:
            raise _report(cli, command, f"Error response from daemon: {e2.message}") \
                from None
        except CommandError as e2:
            raise _report(cli, command, str(e2)) from None
    for w in created.get("Warnings") or []:
        cli.err.write(f"WARNING: {w}\n")
    if opts.cidfile:
        with open(opts.cidfile, "x") as f:
            f.write(created["Id"])
    return created["Id"]


def create(cli, argv: list[str], name: str = "create") -> int:
    opts, args = CREATE.parse(argv)
    opts.detach = True
    opts.sig_proxy = False
    opts.detach_keys = None
    cli.out.write(create_container(cli, opts, args, "create") + "\n")
    return 0


create.spec = CREATE


def detach_sequence(keys: str | None) -> bytes:
    """--detach-keys ("ctrl-p,ctrl-q", the default) as the bytes a terminal sends."""
    out = bytearray()
    for key in (keys or "ctrl-p,ctrl-q").split(","):
        key = key.strip()
        if key.startswith("ctrl-") and len(key) == 6:
            c = key[5].lower()
            code = {"@": 0, "[": 27, "\\": 28, "]": 29, "^": 30, "_": 31}.get(c)
            if code is None:
                if not ("a" <= c <= "z"):
                    raise CommandError(f"Unknown character: '{key}'")
                code = ord(c) - ord("a") + 1
            out.append(code)
        elif len(key) == 1:
            out.append(ord(key))
        else:
            raise CommandError(f"Unknown character: '{key}'")
    return bytes(out)


class Streams:
    """A hijacked connection pumped both ways: container output to our stdout/stderr
    (demultiplexed unless a TTY), our stdin to the container. With a TTY, the detach keys
    typed on stdin end the session (docker's escape proxy), leaving the container running."""

    def __init__(self, resp, tty: bool, stdin: bool, detach_keys: str | None = None) -> None:
        self.resp = resp
        self.sock = resp.conn.sock
        self.tty = tty
        self.stdin = stdin
        self.escape = detach_sequence(detach_keys) if tty and stdin else b""
        self.detached = False

    def _pump_stdin(self) -> None:
        fd = sys.stdin.fileno()
        held = b""
        try:
            while data := os.read(fd, 32768):
                if self.escape:
                    data, held = self._scan(held + data)
                    if self.detached:
                        if data:
                            self.sock.sendall(data)
                        self.sock.shutdown(2)  # SHUT_RDWR: the reader ends too
                        return
                if data:
                    self.sock.sendall(data)
        except OSError:
            return
        try:
            self.sock.shutdown(1)  # SHUT_WR: the container sees EOF on its stdin
        except OSError:
            pass

    def _scan(self, data: bytes) -> tuple[bytes, bytes]:
        """(bytes to send, a held prefix of the escape sequence); sets `detached`."""
        esc = self.escape
        i = data.find(esc)
        if i >= 0:
            self.detached = True
            return data[:i], b""
        for n in range(min(len(esc) - 1, len(data)), 0, -1):
            if data.endswith(esc[:n]):
                return data[:-n], data[-n:]
        return data, b""

    def run(self) -> None:
        if self.stdin:
            import threading

            threading.Thread(target=self._pump_stdin, daemon=True).start()
        out = sys.stdout.buffer
        err = sys.stderr.buffer
        reader = self.resp.conn.reader
        demux = None if self.tty else Demuxer()
        while True:
            try:
                data = reader.read_some()
            except OSError:
                break
            if not data:
                break
            if demux is None:
                out.write(data)
                out.flush()
                continue
            for stream, payload in demux.feed(data):
                target = err if stream == 2 else out
                target.write(payload)
                target.flush()

    def close(self) -> None:
        self.resp.close()


class RawTerminal:
    """The terminal in raw mode while attached with -t; size changes sent to the daemon."""

    def __init__(self, cli, resize_path: str) -> None:
        self.cli = cli
        self.resize_path = resize_path
        self.saved = None

    def __enter__(self) -> RawTerminal:
        import signal
        import termios
        import tty

        if sys.stdin.isatty():
            self.saved = termios.tcgetattr(sys.stdin.fileno())
            tty.setraw(sys.stdin.fileno())
        self.resize()
        signal.signal(signal.SIGWINCH, lambda *_: self.resize())
        return self

    def resize(self) -> None:
        try:
            size = os.get_terminal_size(sys.stdout.fileno())
        except OSError:
            return
        try:
            self.cli.client.post(self.resize_path, {"h": size.lines, "w": size.columns})
        except APIError:
            pass

    def __exit__(self, *exc) -> None:
        import termios

        if self.saved is not None:
            termios.tcsetattr(sys.stdin.fileno(), termios.TCSADRAIN, self.saved)


class Waiter:
    """POST /containers/{id}/wait held open in a thread from before the start."""

    def __init__(self, cli, cid: str, condition: str) -> None:
        import threading

        self.status: int | None = None
        self.error: Exception | None = None
        self.resp = cli.client.request("POST", f"/containers/{cid}/wait",
                                       {"condition": condition})
        self.thread = threading.Thread(target=self._wait, daemon=True)
        self.thread.start()

    def _wait(self) -> None:
        from dockyard.runtime import jsonio

        try:
            doc = jsonio.loads(self.resp.read() or b"{}")
            if (doc.get("Error") or {}).get("Message"):
                self.error = CommandError(doc["Error"]["Message"], 125)
            self.status = int(doc.get("StatusCode", 0))
        except (OSError, ValueError) as e:
            self.error = e
        finally:
            self.resp.close()

    def result(self) -> int:
        self.thread.join()
        if self.error is not None and self.status is None:
            raise CommandError(f"{PROG}: {self.error}", 125)
        return self.status or 0


def _forward_signals(cli, cid: str) -> None:
    import signal

    def forward(signum, frame) -> None:
        try:
            cli.client.post(f"/containers/{cid}/kill", {"signal": str(signum)})
        except Exception:  # the container may be gone already
            pass

    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT,
              signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(s, forward)


def run(cli, argv: list[str], name: str = "run") -> int:
    opts, args = RUN.parse(argv)
    if opts.detach and opts.attach:
        raise _report(cli, "run", "Conflicting options: -a and -d")
    if opts.tty and not opts.detach and opts.interactive and not sys.stdin.isatty():
        raise _report(cli, "run", "the input device is not a TTY", 1)
    cid = create_container(cli, opts, args, "run")
    if opts.detach:
        try:
            cli.client.post(f"/containers/{cid}/start")
        except APIError as e:
            raise _report(cli, "run", f"Error response from daemon: {e.message}",
                          _start_status(e.message)) from None
        cli.out.write(cid + "\n")
        return 0
    attach = {a.lower() for a in opts.attach} or {"stdout", "stderr"}
    if opts.interactive:
        attach.add("stdin")
    query = {"stream": 1, "stdin": int("stdin" in attach), "stdout": int("stdout" in attach),
             "stderr": int("stderr" in attach), "detachKeys": opts.detach_keys}
    resp = cli.client.hijack(f"/containers/{cid}/attach", query)
    streams = Streams(resp, opts.tty, "stdin" in attach, opts.detach_keys)
    waiter = Waiter(cli, cid, "removed" if opts.rm else "next-exit")
    try:
        cli.client.post(f"/containers/{cid}/start")
    except APIError as e:
        streams.close()
        raise _report(cli, "run", f"Error response from daemon: {e.message}",
                      _start_status(e.message)) from None
    return follow(cli, cid, streams, waiter, opts.tty, opts.sig_proxy)


def follow(cli, cid: str, streams: Streams, waiter: Waiter, tty: bool, sig_proxy: bool) -> int:
    """Relay an attached container until its output ends (the terminal raw and resized, or
    signals passed on); its exit code, or 0 when the user detached."""
    if tty and sys.stdin.isatty():
        with RawTerminal(cli, f"/containers/{cid}/resize"):
            streams.run()
    else:
        if sig_proxy and not tty:
            _forward_signals(cli, cid)
        streams.run()
    streams.close()
    if streams.detached:
        return 0
    return waiter.result()


run.spec = RUN

START_ATTACH = Command("start", "[OPTIONS] CONTAINER", "Start a container", [])


def start_attached(cli, ref: str, interactive: bool, detach_keys: str | None) -> int:
    c = cli.client.get(f"/containers/{quote(ref)}/json")
    cid = c["Id"]
    tty = bool((c.get("Config") or {}).get("Tty"))
    stdin = interactive and bool((c.get("Config") or {}).get("OpenStdin"))
    resp = cli.client.hijack(f"/containers/{cid}/attach",
                             {"stream": 1, "stdin": int(stdin), "stdout": 1, "stderr": 1,
                              "detachKeys": detach_keys})
    streams = Streams(resp, tty, stdin, detach_keys)
    waiter = Waiter(cli, cid, "next-exit")
    try:
        cli.client.post(f"/containers/{cid}/start")
    except APIError as e:
        streams.close()
        cli.err.write(f"Error response from daemon: {e.message}\n")
        raise CommandError(f"Error: failed to start containers: {ref}") from None
    return follow(cli, cid, streams, waiter, tty, sig_proxy=True)


ATTACH = Command("attach", "[OPTIONS] CONTAINER",
                 "Attach local standard input, output, and error streams to a running "
                 "container",
                 [Flag(None, "detach-keys", str), Flag(None, "no-stdin", bool),
                  Flag(None, "sig-proxy", bool, default=True)], 1, 1)


def attach(cli, argv: list[str], name: str = "attach") -> int:
    opts, (ref,) = ATTACH.parse(argv)
    c = cli.client.get(f"/containers/{quote(ref)}/json")
    state = c.get("State") or {}
    if not state.get("Running"):
        raise CommandError("You cannot attach to a stopped container, start it first")
    if state.get("Paused"):
        raise CommandError("You cannot attach to a paused container, unpause it first")
    cid = c["Id"]
    cfg = c.get("Config") or {}
    tty = bool(cfg.get("Tty"))
    stdin = not opts.no_stdin and bool(cfg.get("OpenStdin"))
    resp = cli.client.hijack(f"/containers/{cid}/attach",
                             {"stream": 1, "stdin": int(stdin), "stdout": 1, "stderr": 1,
                              "detachKeys": opts.detach_keys})
    streams = Streams(resp, tty, stdin, opts.detach_keys)
    return follow(cli, cid, streams, Waiter(cli, cid, "next-exit"), tty, opts.sig_proxy)


attach.spec = ATTACH

EXEC = Command("exec", "[OPTIONS] CONTAINER COMMAND [ARG...]",
               "Execute a command in a running container",
               [Flag("d", "detach", bool), Flag(None, "detach-keys", str),
                Flag("e", "env", list), Flag(None, "env-file", list),
                Flag("i", "interactive", bool), Flag(None, "privileged", bool),
                Flag("t", "tty", bool), Flag("u", "user", str), Flag("w", "workdir", str)],
               min_args=2, interspersed=False)


def exec_(cli, argv: list[str], name: str = "exec") -> int:
    opts, args = EXEC.parse(argv)
    from dockyard.cli.runopts import parse_env

    ref, cmd = args[0], args[1:]
    body = {"User": opts.user or "", "Privileged": opts.privileged, "Tty": opts.tty,
            "AttachStdin": opts.interactive and not opts.detach,
            "AttachStdout": not opts.detach, "AttachStderr": not opts.detach,
            "DetachKeys": opts.detach_keys or "", "Env": parse_env(opts) or None,
            "WorkingDir": opts.workdir or "", "Cmd": cmd}
    created = cli.client.post(f"/containers/{quote(ref)}/exec", None, body)
    eid = created["Id"]
    if opts.detach:
        cli.client.post(f"/exec/{eid}/start", None, {"Detach": True, "Tty": opts.tty})
        return 0
    if opts.tty and opts.interactive and not sys.stdin.isatty():
        raise CommandError("the input device is not a TTY")
    resp = cli.client.hijack(f"/exec/{eid}/start", None, {"Detach": False, "Tty": opts.tty})
    streams = Streams(resp, opts.tty, opts.interactive, opts.detach_keys)
    if opts.tty and sys.stdin.isatty():
        with RawTerminal(cli, f"/exec/{eid}/resize"):
            streams.run()
    else:
        streams.run()
    streams.close()
    if streams.detached:
        return 0
    doc = cli.client.get(f"/exec/{eid}/json")
    return int(doc.get("ExitCode") or 0)


exec_.spec = EXEC
