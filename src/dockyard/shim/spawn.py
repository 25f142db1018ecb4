"""Starting a shim (the supervisor's side): one per container, found again by its address.

    <state_dir>/s/<sha256("<namespace>/<id>")[:32]>     the shim's socket (well under the
                                                        108 bytes of sun_path)

start_shim runs `python -I -S …/dockyard/shim/__main__.py` in a session of its own, with
argv[0] "<the interpreter's directory>/dockyard-shim": ps shows that name, and Python still
finds its home from that directory (a bare "dockyard-shim" would make it guess, from the
working directory, and maybe find another Python's library). Its stdio is /dev/null, its
stderr appended to <bundle>/shim.log. The shim forks its daemon and exits (reaped here), and
the daemon says "ok" on a pipe once it listens. No polling: the pipe's end is the answer.
A shim that already answers at the address is simply reused. Given a zygote (the shims' fork
server, zygote.py, started by start_zygote), start_shim asks it to fork the shim instead, and
falls back to the exec above if it does not answer.
"""

from __future__ import annotations

import hashlib
import json
import os
import select
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import dockyard
from dockyard.shim import zygote
from dockyard.shim.protocol import ShimError, encode

MAIN = str(Path(dockyard.__file__).resolve().parent / "shim" / "__main__.py")
START_TIMEOUT = 30.0


def socket_path(state_dir: Path | str, namespace: str, id: str) -> Path:
    digest = hashlib.sha256(f"{namespace}/{id}".encode()).hexdigest()[:32]
    return Path(state_dir) / "s" / digest


def default_runtime() -> list[str]:
    """dockyard-runc: the launcher beside this interpreter, else the module."""
    launcher = Path(sys.executable).parent / "dockyard-runc"
    if launcher.exists():
        return [str(launcher)]
    return [sys.executable, "-m", "dockyard.runtime.main"]


def answers(path: Path | str) -> bool:
    """Something accepts connections at `path`."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.settimeout(2)
        s.connect(str(path))
        return True
    except OSError:
        return False
    finally:
        s.close()


def _exec_ready(flags: list[str], log_path: Path) -> tuple[subprocess.Popen, str]:
    """Run `dockyard-shim FLAGS -ready-fd N` (python -I -S, named as the module docstring
    says, a session of its own, stderr appended to `log_path`) and read its ready pipe to
    the end: (the process, what it said)."""
    python = sys.executable or shutil.which("python3") or "python3"
    r, w = os.pipe()
    try:
        argv = [os.path.join(os.path.dirname(python), "dockyard-shim"), "-I", "-S", MAIN,
                *flags, "-ready-fd", str(w)]
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(argv, executable=python, stdin=subprocess.DEVNULL,
                                    stdout=subprocess.DEVNULL, stderr=log, pass_fds=(w,),
                                    start_new_session=True, cwd="/")
        os.close(w)
        w = -1
        return proc, _read_until_eof(r, START_TIMEOUT)
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)


def start_zygote(state_dir: Path) -> tuple[subprocess.Popen, Path]:
    """Start the fork server of shims (zygote.py) for a supervisor: its process (it dies
    with the thread that calls this, so call it from the one that lives longest) and its
    socket."""
    path = Path(state_dir) / "s" / "zygote"
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o711)
    log = Path(state_dir) / "zygote.log"
    proc, message = _exec_ready(["-zygote", str(path), "-title-room",
                                 "x" * zygote.TITLE_ROOM], log)
    if not message.startswith("ok"):
        proc.kill()
        proc.wait()
        raise ShimError("internal", f"the shim zygote did not start: {message or _tail(log)}")
    return proc, path


def _by_zygote(zygote: Path, argv: list[str]) -> str | None:
    """Ask the zygote for a shim; its answer ("ok" or "error: …"), None if it is gone."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(START_TIMEOUT)
        try:
            sock.connect(str(zygote))
        except OSError:
            return None
        sock.sendall(encode({"argv": argv}))
        chunks = []
        while chunk := sock.recv(4096):
            chunks.append(chunk)
        return b"".join(chunks).decode(errors="replace")
    except OSError as e:
        return f"error: {e}"
    finally:
        sock.close()


def start_shim(namespace: str, id: str, bundle: Path, *, state_dir: Path,
               runtime: list[str] | None = None, runtime_root: Path,
               debug: bool = False, zygote: Path | None = None) -> str:
    """The address of the shim of `namespace`/`id`, started (detached) if none answers."""
    path = socket_path(state_dir, namespace, id)
    address = f"unix://{path}"
    if answers(path):
        return address
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o711)
    bundle = Path(bundle).resolve()
    flags = ["-namespace", namespace, "-id", id, "-address", address, "-bundle", str(bundle),
             "-runtime-root", str(runtime_root),
             "-runtime", json.dumps(list(runtime) if runtime else default_runtime())]
    if debug:
        flags.append("-debug")
    message = _by_zygote(zygote, flags) if zygote is not None else None
    if message is None:  # no zygote, or it is gone: exec
        proc, message = _exec_ready(flags, bundle / "shim.log")
        proc.wait()  # it forked its daemon and exited
    if message.startswith("ok"):
        return address
    detail = message.removeprefix("error: ").strip() or _tail(bundle / "shim.log")
    raise ShimError("internal", f"shim for {namespace}/{id} did not start: {detail}")


def _read_until_eof(fd: int, timeout: float) -> str:
    chunks = []
    while True:
        ready, _, _ = select.select([fd], [], [], timeout)
        if not ready:
            return "error: no answer from the shim in time"
        chunk = os.read(fd, 4096)
        if not chunk:
            return b"".join(chunks).decode(errors="replace")
        chunks.append(chunk)


def _tail(path: Path, size: int = 2000) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - size))
            return f.read().decode(errors="replace").strip() or "it exited"
    except OSError:
        return "it exited"
