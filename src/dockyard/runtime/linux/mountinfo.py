"""The one rule of reading /proc/self/mountinfo that both the rootfs setup and the cgroup
paths need, in a module that imports nothing (the CLI's `state` reads cgroup paths)."""

from __future__ import annotations


def unescape_mountinfo(s: str) -> str:
    """Undo the octal escapes (\\040 for a space) of /proc/self/mountinfo fields."""
    if "\\" not in s:
        return s
    out, i = [], 0
    while i < len(s):
        if s[i] == "\\" and i + 4 <= len(s) and s[i + 1:i + 4].isdigit():
            out.append(chr(int(s[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(s[i])
            i += 1
    return "".join(out)
