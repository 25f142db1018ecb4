"""Sizes, durations and times as Docker prints them (go-units, Go's RFC3339Nano), for the
engine, the shim and the CLI alike: standard library only, and cheap to import (the CLI's
and the shim's start-up count)."""

from __future__ import annotations

import time


def _g(v: float, precision: int) -> str:
    """Go's %.*g: no exponent for the magnitudes sizes have."""
    s = f"{v:.{precision}g}"
    if "e" in s:
        s = f"{v:.0f}"
    return s


def human_size(size: float, precision: int = 4) -> str:
    """units.HumanSizeWithPrecision: decimal units, `precision` significant digits
    (HumanSize is precision 4; docker's tables use 3)."""
    units = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"]
    i = 0
    size = float(size)
    while size >= 1000 and i < len(units) - 1:
        size /= 1000
        i += 1
    return f"{_g(size, precision)}{units[i]}"


def bytes_size(size: float) -> str:
    """units.BytesSize: binary units, four significant digits (docker info's Total Memory)."""
    units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]
    i = 0
    size = float(size)
    while size >= 1024 and i < len(units) - 1:
        size /= 1024
        i += 1
    return f"{_g(size, 4)}{units[i]}"


def rfc3339nano(ns: int | None = None) -> str:
    """Go's time.RFC3339Nano in UTC: 2024-01-02T03:04:05.123456789Z, trailing zeros cut."""
    ns = time.time_ns() if ns is None else ns
    secs, frac = divmod(ns, 1_000_000_000)
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs))
    if frac:
        text += "." + f"{frac:09d}".rstrip("0")
    return text + "Z"


def human_duration(seconds: float) -> str:
    """units.HumanDuration: "Less than a second", "About a minute", "3 hours", "2 weeks"."""
    s = int(seconds)
    if s < 1:
        return "Less than a second"
    if s == 1:
        return "1 second"
    if s < 60:
        return f"{s} seconds"
    minutes = s // 60
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = int(seconds / 3600 + 0.5)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{int(seconds / 3600) // 24 // 365} years"
