"""Docker's JSON message streams (pull, push, load) shown as docker shows them: on a terminal
one line per layer redrawn in place with a progress bar, otherwise the plain lines only."""

from __future__ import annotations

import time

from dockyard.cli.flags import CommandError


def _human(n: float) -> str:
    from dockyard.cli.formatting import human_size

    return human_size(n, 4)


def _duration(seconds: int) -> str:
    """Go's time.Duration.String() for whole seconds: 1m5s, 2h0m3s."""
    if seconds <= 0:
        return "0s"
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    if h:
        return f"{h}h{m}m{s}s"
    if m:
        return f"{m}m{s}s"
    return f"{s}s"


def progress_string(p: dict, width: int) -> str:
    current, total = p.get("current", 0) or 0, p.get("total", 0) or 0
    units = p.get("units", "")
    if current <= 0 and total <= 0:
        return ""
    if total <= 0:
        return f"{_human(current):>8}" if not units else f"{current} {units}"
    pct = min(int(current / total * 100) // 2, 50)
    bar = f"[{'=' * pct}>{' ' * max(50 - pct, 0)}] " if width > 110 else ""
    if p.get("hidecounts"):
        numbers = ""
    elif not units:
        numbers = f"{_human(current):>8}/{_human(total)}"
        if current > total:
            numbers = f"{_human(current):>8}"
    else:
        numbers = f"{current}/{total} {units}"
    left = ""
    start = p.get("start", 0) or 0
    if current > 0 and start > 0 and pct < 50 and width > 50:
        remaining = (total - current) * (time.time() - start) / current
        left = " " + _duration(int(remaining))
    return bar + numbers + left


class Display:
    def __init__(self, out, terminal: bool) -> None:
        self.out = out
        self.terminal = terminal
        self.ids: dict[str, int] = {}
        self.width = 80
        if terminal:
            import os

            try:
                self.width = os.get_terminal_size(out.fileno()).columns
            except (OSError, ValueError, AttributeError):
                pass

    def show(self, jm: dict) -> None:
        """One message; raises CommandError for an error message."""
        if jm.get("error") or jm.get("errorDetail"):
            detail = jm.get("errorDetail") or {}
            raise CommandError(detail.get("message") or jm.get("error") or "unknown error")
        if "aux" in jm:
            return
        out = self.out
        jid = jm.get("id", "")
        progress = jm.get("progressDetail")  # present, even empty: Go's non-nil *JSONProgress
        pmsg = jm.get("progress", "")
        diff = 0
        if jid and (progress is not None or pmsg):
            line = self.ids.get(jid)
            if line is None:
                line = len(self.ids)
                self.ids[jid] = line
                if self.terminal:
                    out.write("\n")
            diff = len(self.ids) - line
            if self.terminal:
                out.write(f"\x1b[{diff}A")
        else:
            self.ids = {}
        self._display(jm, jid, progress, pmsg)
        if jid and self.terminal and diff:
            out.write(f"\x1b[{diff}B")
        out.flush()

    def _display(self, jm: dict, jid: str, progress: dict | None, pmsg: str) -> None:
        out = self.out
        endl = ""
        stream = jm.get("stream", "")
        bar = progress_string(progress, self.width) if progress else ""
        if self.terminal and not stream and progress is not None:
            out.write("\r\x1b[2K\r")
            endl = "\r"
        elif progress is not None and bar:
            return  # no progress bars off a terminal
        if jid:
            out.write(f"{jid}: ")
        if jm.get("from"):
            out.write(f"(from {jm['from']}) ")
        status = jm.get("status", "")
        if progress is not None and self.terminal:
            out.write(f"{status} {bar}{endl}")
        elif pmsg:
            out.write(f"{status} {pmsg}{endl}")
        elif stream:
            out.write(f"{stream}{endl}")
        else:
            out.write(f"{status}{endl}\n")


def display_stream(messages, out, terminal: bool) -> None:
    d = Display(out, terminal)
    for jm in messages:
        d.show(jm)
