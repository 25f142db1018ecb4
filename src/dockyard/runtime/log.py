"""runc's log output: logrus text lines or JSON lines, to --log or stderr.

containerd's shim reads the JSON lines from the log file to report why a runc call failed;
podman reads stderr. So an error goes to the log, and also to stderr as a bare line when the
log is a file, as runc's fatal() does.
"""

from __future__ import annotations

import os
import time

_fd = 2
_json = False
_debug = False


def configure(path: str | None, fmt: str, debug: bool) -> None:
    global _fd, _json, _debug
    if fmt not in ("text", "json"):
        raise ValueError(f"invalid log-format: {fmt}")
    _json = fmt == "json"
    _debug = debug
    if path:
        _fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)


def to_stderr() -> bool:
    return _fd == 2


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def emit(level: str, msg: str) -> None:
    if _json:
        from dockyard.runtime import jsonio

        line = jsonio.dumps({"level": level, "msg": msg, "time": _now()})
    else:
        line = f"time={_quote(_now())} level={level} msg={_quote(msg)}"
    try:
        os.write(_fd, (line + "\n").encode())
    except OSError:
        pass


def error(msg: str) -> None:
    emit("error", msg)


def warning(msg: str) -> None:
    emit("warning", msg)


def debug(msg: str) -> None:
    if _debug:
        emit("debug", msg)
