"""`runc update`: flags -> an OCI resources dict, and the overlay onto the stored set.

Memory sizes take docker/go-units RAMInBytes syntax: a decimal number, an optional
binary-multiple suffix k/m/g/t/p (any case, optionally followed by "i" and/or "b"),
"-1" for unlimited: "64m" = 67108864, "1.5g", "512KiB".  Errors keep runc's wording:
`invalid value for memory: invalid size: '12x'`.
"""

from __future__ import annotations

from dockyard.runtime.errors import ConfigError

_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
_INT64_MAX = (1 << 63) - 1
_UINT64_MAX = (1 << 64) - 1


def ram_in_bytes(s: str) -> int:
    """go-units RAMInBytes: ^(\\d+(\\.\\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?$, binary multiples,
    the product truncated to an integer as Go's int64(float64) does."""
    digits = "0123456789"
    j = 0
    while j < len(s) and s[j] in digits:
        j += 1
    if j == 0:
        raise ValueError(f"invalid size: '{s}'")
    while j + 1 < len(s) and s[j] == "." and s[j + 1] in digits:
        j += 2
        while j < len(s) and s[j] in digits:
            j += 1
    number, rest = s[:j], s[j:]
    rest = rest[1:] if rest[:1] == " " else rest
    unit = ""
    if rest[:1] and rest[:1].lower() in "kmgtp":
        unit, rest = rest[0].lower(), rest[1:]
    rest = rest[1:] if rest[:1] in ("i", "I") else rest
    rest = rest[1:] if rest[:1] in ("b", "B") else rest
    if rest:
        raise ValueError(f"invalid size: '{s}'")
    try:
        size = float(number)
    except ValueError:
        raise ValueError(f"invalid size: '{s}'") from None
    return int(size * _UNITS[unit])


def _go_parse(name: str, value: str, signed: bool) -> int:
    """strconv.ParseInt/ParseUint(value, 10, 64) with Go's error text."""
    fn = "ParseInt" if signed else "ParseUint"
    body = value[1:] if signed and value[:1] in "+-" else value
    if not body or not (body.isdigit() and body.isascii()):
        raise ConfigError(f'invalid value for {name}: strconv.{fn}: parsing "{value}": '
                          "invalid syntax")
    n = int(value)
    if (signed and not -_INT64_MAX - 1 <= n <= _INT64_MAX) or (not signed and n > _UINT64_MAX):
        raise ConfigError(f'invalid value for {name}: strconv.{fn}: parsing "{value}": '
                          "value out of range")
    return n


def _memory(name: str, value: str) -> int:
    if value == "-1":
        return -1
    try:
        return ram_in_bytes(value)
    except ValueError as e:
        raise ConfigError(f"invalid value for {name}: {e}") from None


def resources_from_update_flags(flags: dict[str, str]) -> dict:
    """runc update's flags (names without dashes, values as given) -> resources dict holding
    only what was asked for."""
    res: dict = {}

    def put(section: str, key: str, value: object) -> None:
        res.setdefault(section, {})[key] = value

    for name in ("l3-cache-schema", "mem-bw-schema"):
        if flags.get(name):
            what = "Intel RDT/CAT: l3 cache schema" if name == "l3-cache-schema" \
                else "Intel RDT/MBA: memory bandwidth schema"
            raise ConfigError(f"{what} is not enabled")
    if flags.get("blkio-weight") not in (None, ""):
        w = _go_parse("blkio-weight", str(flags["blkio-weight"]), True)
        if w:
            put("blockIO", "weight", w)
    for name, key in (("cpuset-cpus", "cpus"), ("cpuset-mems", "mems")):
        if flags.get(name):
            put("cpu", key, flags[name])
    if flags.get("cpu-idle") not in (None, ""):
        put("cpu", "idle", _go_parse("cpu-idle", str(flags["cpu-idle"]), True))
    for name, key, signed in (("cpu-burst", "burst", False), ("cpu-period", "period", False),
                              ("cpu-rt-period", "realtimePeriod", False),
                              ("cpu-share", "shares", False), ("cpu-quota", "quota", True),
                              ("cpu-rt-runtime", "realtimeRuntime", True)):
        if flags.get(name) not in (None, ""):
            put("cpu", key, _go_parse(name, str(flags[name]), signed))
    for name, key in (("memory", "limit"), ("memory-swap", "swap"),
                      ("memory-reservation", "reservation"), ("kernel-memory", "kernel"),
                      ("kernel-memory-tcp", "kernelTCP")):
        if flags.get(name) not in (None, ""):
            put("memory", key, _memory(name, str(flags[name])))
    if flags.get("pids-limit") not in (None, ""):
        limit = _go_parse("pids-limit", str(flags["pids-limit"]), True)
        if limit:  # runc: 0 leaves the limit as it is
            put("pids", "limit", limit)
    return res


def merge_resources(current: dict, update: dict) -> dict:
    """Overlay `update` on the resources applied before: objects merge key by key, arrays
    and scalars replace.  devices are kept as they were: runc update never changes them.
    A memory limit of -1 without a swap value means unlimited swap too (runc)."""
    if not isinstance(current, dict):
        current = {}
    if not isinstance(update, dict):
        raise ConfigError("resources must be a JSON object")
    out = _deep_merge(current, {k: v for k, v in update.items() if k != "devices"})
    mem = update.get("memory")
    if isinstance(mem, dict) and mem.get("limit") == -1 and "swap" not in mem:
        out["memory"]["swap"] = -1
    return out


def _deep_merge(a: dict, b: dict) -> dict:
    out = dict(a)
    for k, v in b.items():
        if v is None:
            continue
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = v
    return out
