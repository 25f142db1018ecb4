"""The params of shim requests, checked at the boundary: anything malformed is
ShimError("invalid_argument") naming the field, before any work is done."""

from __future__ import annotations

from dockyard.shim.protocol import ShimError

ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")


def invalid(message: str) -> ShimError:
    return ShimError("invalid_argument", message)


def boolean(params: dict, name: str, default: bool = False) -> bool:
    value = params.get(name, default)
    if not isinstance(value, bool):
        raise invalid(f"{name} must be true or false")
    return value


def integer(params: dict, name: str, default: int | None = None, low: int = 0,
            high: int | None = None) -> int:
    value = params.get(name, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < low \
            or (high is not None and value > high):
        raise invalid(f"{name} must be an integer from {low}" +
                      (f" to {high}" if high is not None else ""))
    return value


def exec_id(params: dict) -> str:
    """The process a request is about: "" (or none) is the init."""
    value = params.get("exec_id") or ""
    if not isinstance(value, str):
        raise invalid("exec_id must be a string")
    return value


def new_exec_id(params: dict) -> str:
    """An exec id to register: it names files in the bundle, so a safe name."""
    value = exec_id(params)
    if not value or len(value) > 128 or value[0] == "." or not set(value) <= ID_CHARS:
        raise invalid(f"invalid exec id {value!r}")
    return value


def log_options(params: dict) -> tuple[str | None, int, int]:
    """create's log: (path or None, max_size in bytes (0: no limit), max_file)."""
    log = params.get("log") or {}
    if not isinstance(log, dict) or not isinstance(log.get("path"), str | None):
        raise invalid("log must be {path, max_size, max_file}")
    return log.get("path") or None, integer(log, "max_size", 0), integer(log, "max_file", 1, 1)


def process_spec(params: dict) -> tuple[dict, bool]:
    """exec's OCI process and whether it has a terminal (the param, else the spec's)."""
    spec = params.get("spec")
    if not isinstance(spec, dict) or not isinstance(spec.get("args"), list) \
            or not spec["args"]:
        raise invalid("spec must be an OCI process with args")
    terminal = boolean(params, "terminal", spec.get("terminal", False) is True)
    return {**spec, "terminal": terminal}, terminal
