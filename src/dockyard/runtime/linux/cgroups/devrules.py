"""Device access rules: linux.resources.devices -> the effective policy -> v1 file writes.

runc appends its default rules (mknod anything, /dev/null, zero, full, random, urandom, tty,
ptmx, pts, tun) to the user's list and starts from *deny everything*: a config without any
device rule still gets a whitelist.  The list is folded, in order, into one policy::

    Policy(default_allow=False, exceptions=[("c", 1, 3, "rwm"), ("c", -1, -1, "m"), ...])

which is what the kernel keeps too (v1 devices.list, or our eBPF program on v2).  On v1 a
running container's policy is changed by *difference* from devices.list: writing "a" to
devices.deny and then re-allowing would leave a moment in which the container cannot open
/dev/null (runc avoids this the same way, with its device emulator).  Major/minor -1 is
the "*" wildcard.
"""

from __future__ import annotations

from dockyard.runtime.errors import ConfigError

# (type, major, minor, access, allow): runc's specconv.AllowedDevices.
DEFAULT_RULES: tuple[tuple[str, int, int, str, bool], ...] = (
    ("c", -1, -1, "m", True), ("b", -1, -1, "m", True),
    ("c", 1, 3, "rwm", True), ("c", 1, 8, "rwm", True), ("c", 1, 7, "rwm", True),
    ("c", 5, 0, "rwm", True), ("c", 1, 5, "rwm", True), ("c", 1, 9, "rwm", True),
    ("c", 136, -1, "rwm", True), ("c", 5, 2, "rwm", True), ("c", 10, 200, "rwm", True),
)

_ACCESS = "rwm"


def _access(s: object, i: int) -> str:
    if not isinstance(s, str) or not s:
        raise ConfigError(f"device access at {i} field cannot be empty")
    if any(ch not in _ACCESS for ch in s):
        raise ConfigError(f"invalid device access {s!r} at {i} (want a combination of r, w, m)")
    return "".join(ch for ch in _ACCESS if ch in s)


def _num(v: object, what: str, i: int) -> int:
    if v is None:
        return -1
    if not isinstance(v, int) or isinstance(v, bool) or v < -1:
        raise ConfigError(f"linux.resources.devices[{i}].{what} must be an integer")
    return v


def parse_rules(devices: object) -> list[tuple[str, int, int, str, bool]]:
    """linux.resources.devices validated, then runc's defaults appended."""
    if devices is None:
        devices = []
    if not isinstance(devices, list):
        raise ConfigError("linux.resources.devices must be an array")
    rules = []
    for i, d in enumerate(devices):
        if not isinstance(d, dict):
            raise ConfigError(f"linux.resources.devices[{i}] must be an object")
        allow = d.get("allow")
        if not isinstance(allow, bool):
            raise ConfigError(f"linux.resources.devices[{i}].allow must be true or false")
        t = d.get("type") or "a"
        if t not in ("a", "b", "c"):
            raise ConfigError(f"invalid cgroup device type {t!r}")
        rules.append((t, _num(d.get("major"), "major", i), _num(d.get("minor"), "minor", i),
                      _access(d.get("access"), i), allow))
    return rules + list(DEFAULT_RULES)


class Policy:
    """Default verdict plus exceptions {(type, major, minor): access}, insertion-ordered."""

    __slots__ = ("default_allow", "exceptions")

    def __init__(self, default_allow: bool = False, exceptions: dict | None = None) -> None:
        self.default_allow = default_allow
        self.exceptions: dict[tuple[str, int, int], str] = exceptions or {}

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Policy) and other.default_allow == self.default_allow
                and other.exceptions == self.exceptions)

    def __repr__(self) -> str:
        return f"Policy({self.default_allow}, {self.exceptions})"


def _merge(a: str, b: str) -> str:
    return "".join(ch for ch in _ACCESS if ch in a or ch in b)


def _minus(a: str, b: str) -> str:
    return "".join(ch for ch in a if ch not in b)


def fold(rules: list[tuple[str, int, int, str, bool]]) -> Policy:
    """Apply the rules in order, as the kernel's v1 controller would."""
    p = Policy()
    for t, ma, mi, acc, allow in rules:
        if t == "a" and ma == -1 and mi == -1 and acc == _ACCESS:
            p = Policy(allow)  # a wildcard resets the whole list
            continue
        for typ in ("c", "b") if t == "a" else (t,):
            key = (typ, ma, mi)
            if allow != p.default_allow:
                p.exceptions[key] = _merge(p.exceptions.get(key, ""), acc)
            elif key in p.exceptions:
                left = _minus(p.exceptions[key], acc)
                if left:
                    p.exceptions[key] = left
                else:
                    del p.exceptions[key]
    return p


def rule_string(key: tuple[str, int, int], access: str) -> str:
    t, ma, mi = key
    return f"{t} {'*' if ma < 0 else ma}:{'*' if mi < 0 else mi} {access}"


def parse_list(text: str) -> Policy:
    """devices.list: "a *:* rwm" means allow-all; otherwise each line is an allowed entry."""
    p = Policy()
    for line in text.splitlines():
        parts = line.split()
        if len(parts) != 3:
            continue
        t, numbers, acc = parts
        if t == "a":
            return Policy(True)
        ma, _, mi = numbers.partition(":")
        key = (t, -1 if ma == "*" else int(ma), -1 if mi == "*" else int(mi))
        p.exceptions[key] = _merge(p.exceptions.get(key, ""), acc)
    return p


def v1_writes(target: Policy, current: Policy | None) -> list[tuple[str, str, str]]:
    """The devices.allow/devices.deny writes that turn `current` into `target`."""
    w: list[tuple[str, str, str]] = []
    if current is not None and not current.default_allow and not target.default_allow:
        for key, acc in current.exceptions.items():
            gone = _minus(acc, target.exceptions.get(key, ""))
            if gone:
                w.append(("devices", "devices.deny", rule_string(key, gone)))
        for key, acc in target.exceptions.items():
            new = _minus(acc, current.exceptions.get(key, ""))
            if new:
                w.append(("devices", "devices.allow", rule_string(key, new)))
        return w
    if current is not None and current == target:
        return w
    # The default verdict changes (or is unknown): reset with the wildcard, then the list.
    if target.default_allow:
        w.append(("devices", "devices.allow", "a"))
        w += [("devices", "devices.deny", rule_string(k, a))
              for k, a in target.exceptions.items()]
    else:
        w.append(("devices", "devices.deny", "a"))
        w += [("devices", "devices.allow", rule_string(k, a))
              for k, a in target.exceptions.items()]
    return w
