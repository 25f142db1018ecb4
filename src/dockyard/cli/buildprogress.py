"""`dockyard build`'s progress: the classic builder's JSON stream shown as BuildKit shows a
build. `ClassicProgress` reads the messages and keeps the steps (BuildKit's vertices); a
display draws them: `PlainDisplay` (`--progress=plain`, or off a terminal) one line per event,
`TtyDisplay` a block redrawn in place, `QuietDisplay` nothing.

    classic stream                                    plain display
    {"stream": "Step 2/4 : RUN echo hi\\n"}            #2 [2/4] RUN echo hi
    {"stream": " ---> Running in 0123456789ab\\n"}     (nothing)
    {"stream": "hi\\n"}                                #2 0.123 hi
    {"stream": " ---> Using cache\\n"}                 #2 CACHED  (at the step's end)
    {"stream": " ---> 1a2b3c4d5e6f\\n"}                #2 DONE 0.3s
    {"aux": {"ID": "sha256:…"}}                       #5 exporting to image
    {"stream": "Successfully tagged web:latest\\n"}    #5 writing image sha256:… done
                                                      #5 naming to docker.io/library/web:latest
    {"errorDetail": {"code": 3, "message": m}}        #2 ERROR: m

RUN output arrives in chunks that need not end at a newline: text is held until its line
is complete. After the stream, `failure_report` words an error as buildx does.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

ARROW = " ---> "
REMOVING = "Removing intermediate container "
LOG_TAIL = 10      # lines of the failed step shown in the error report
TTY_TAIL = 6       # lines of a running step shown on a terminal


@dataclass
class Vertex:
    """One step as BuildKit shows it: `#number name`, its log, how it ended."""

    number: int
    name: str
    started: float
    completed: float | None = None
    cached: bool = False
    error: str = ""
    logs: list[tuple[float | None, str]] = field(default_factory=list)  # (elapsed, line)

    def duration(self, now: float) -> float:
        return (self.completed if self.completed is not None else now) - self.started


@dataclass
class BuildResult:
    image_id: str = ""
    tags: list[str] = field(default_factory=list)
    error: str = ""
    code: int = 0
    failed: Vertex | None = None

    @property
    def ok(self) -> bool:
        return not self.error


class Display(Protocol):
    def started(self, v: Vertex) -> None: ...
    def logged(self, v: Vertex, elapsed: float | None, line: str) -> None: ...
    def completed(self, v: Vertex) -> None: ...
    def close(self) -> None: ...


def _is_short_id(text: str) -> bool:
    return len(text) == 12 and all(c in "0123456789abcdef" for c in text)


def _is_step(line: str) -> bool:
    """"Step 2/4 : RUN …", as the classic builder announces each instruction."""
    if not line.startswith("Step ") or " : " not in line:
        return False
    number, _, total = line[5:].partition(" : ")[0].partition("/")
    return number.isdigit() and total.isdigit()


class ClassicProgress:
    """The classic stream, message by message, into vertices told to `display`."""

    def __init__(self, display: Display, clock: Callable[[], float] = time.monotonic) -> None:
        self.display = display
        self.clock = clock
        self.vertices: list[Vertex] = []
        self.current: Vertex | None = None
        self.total_steps = 0
        self.pending = ""
        self.result = BuildResult()

    # -- input ---------------------------------------------------------------------------

    def feed(self, message: dict) -> None:
        if "stream" in message:
            self._text(str(message["stream"]))
        if "status" in message:
            self._status(message)
        aux = message.get("aux")
        if isinstance(aux, dict) and aux.get("ID"):
            self.result.image_id = str(aux["ID"])
        if "errorDetail" in message or "error" in message:
            detail = message.get("errorDetail") or {}
            self._flush()
            self._fail(str(detail.get("message") or message.get("error") or "unknown error"),
                       int(detail.get("code") or 1))

    def finish(self) -> BuildResult:
        """The end of the stream: the last step completes, the image is named."""
        self._flush()
        if self.current is not None and not self.result.error:
            self._complete(self.current)
        if self.result.ok and self.result.image_id:
            self._export()
        self.display.close()
        return self.result

    # -- the classic stream's lines ------------------------------------------------------

    def _text(self, text: str) -> None:
        if self.pending and (text.startswith(ARROW) or _is_step(text.partition("\n")[0])):
            self._flush()  # the builder's own line after output that did not end one
        self.pending += text.replace("\r\n", "\n")
        *lines, self.pending = self.pending.split("\n")
        for line in lines:
            self._line(line.rpartition("\r")[2])  # what a terminal would leave showing

    def _flush(self) -> None:
        if self.pending:
            line, self.pending = self.pending, ""
            self._line(line.rpartition("\r")[2])

    def _line(self, line: str) -> None:
        if _is_step(line):
            self._step(line)
        elif line.startswith(ARROW):
            self._arrow(line[len(ARROW):].strip())
        elif line.startswith(REMOVING):
            pass  # the classic builder's own line (dockerd before 23 writes it so)
        elif line.startswith("Successfully built "):
            pass  # the image ID comes whole in "aux"
        elif line.startswith("Successfully tagged "):
            self.result.tags.append(line[len("Successfully tagged "):].strip())
        elif self.current is not None and line.strip():
            self._log(self.current, line)

    def _step(self, line: str) -> None:
        counter, _, instruction = line[len("Step "):].partition(" : ")
        number, _, total = counter.partition("/")
        self.total_steps = int(total)
        if self.current is not None:
            self._complete(self.current)
        v = Vertex(len(self.vertices) + 1, f"[{number}/{total}] {instruction}", self.clock())
        self.vertices.append(v)
        self.current = v
        self.display.started(v)

    def _arrow(self, text: str) -> None:
        v = self.current
        if v is None:
            return
        if text == "Using cache":
            v.cached = True
        elif text.startswith(("Running in ", "Removed intermediate container ")):
            pass
        elif _is_short_id(text):
            self._complete(v)
        else:
            self._log(v, text)

    def _status(self, message: dict) -> None:
        """Pull progress of a FROM: the lines that are not a moving bar."""
        detail = message.get("progressDetail") or {}
        if self.current is None or detail.get("current") or detail.get("total"):
            return
        ident = message.get("id")
        self._log(self.current, f"{ident}: {message['status']}" if ident
                  else str(message["status"]))

    # -- state changes -------------------------------------------------------------------

    def _log(self, v: Vertex, line: str, timed: bool = True) -> None:
        elapsed = self.clock() - v.started if timed else None
        v.logs.append((elapsed, line))
        self.display.logged(v, elapsed, line)

    def _complete(self, v: Vertex) -> None:
        if v.completed is None:
            v.completed = self.clock()
            self.display.completed(v)
        if self.current is v:
            self.current = None

    def _fail(self, message: str, code: int) -> None:
        self.result.error, self.result.code = message, code
        v = self.current
        if v is not None:
            v.error = message
            self.result.failed = v
            self._complete(v)

    def _export(self) -> None:
        from dockyard.cli.references import normalize

        v = Vertex(len(self.vertices) + 1, "exporting to image", self.clock())
        self.vertices.append(v)
        self.display.started(v)
        self._log(v, f"writing image {self.result.image_id} done", timed=False)
        for tag in self.result.tags:
            self._log(v, f"naming to {normalize(tag)} done", timed=False)
        self._complete(v)


def render(messages: Iterable[dict], display: Display,
           clock: Callable[[], float] = time.monotonic) -> BuildResult:
    """Show a whole classic stream on `display`; what was built, or the error."""
    progress = ClassicProgress(display, clock)
    try:
        for message in messages:
            progress.feed(message)
    finally:
        result = progress.finish()
    return result


def failure_report(result: BuildResult) -> str:
    """buildx's words for a failed build: the failed step's last lines, then the error."""
    out = []
    v = result.failed
    if v is not None:
        out.append("------\n")
        out.append(f" > {v.name}:\n")
        for elapsed, line in v.logs[-LOG_TAIL:]:
            out.append(f"{elapsed:.3f} {line}\n" if elapsed is not None else f"{line}\n")
        out.append("------\n")
    out.append(f"ERROR: failed to solve: {result.error}\n")
    return "".join(out)


class QuietDisplay:
    def started(self, v: Vertex) -> None:
        pass

    def logged(self, v: Vertex, elapsed: float | None, line: str) -> None:
        pass

    def completed(self, v: Vertex) -> None:
        pass

    def close(self) -> None:
        pass


class PlainDisplay:
    """`--progress=plain`: BuildKit's plain printer, a blank line between steps."""

    def __init__(self, out) -> None:
        self.out = out
        self.first = True

    def _write(self, text: str) -> None:
        self.out.write(text)
        self.out.flush()

    def started(self, v: Vertex) -> None:
        self._write(("" if self.first else "\n") + f"#{v.number} {v.name}\n")
        self.first = False

    def logged(self, v: Vertex, elapsed: float | None, line: str) -> None:
        self._write(f"#{v.number} {elapsed:.3f} {line}\n" if elapsed is not None
                    else f"#{v.number} {line}\n")

    def completed(self, v: Vertex) -> None:
        if v.error:
            self._write(f"#{v.number} ERROR: {v.error}\n")
        elif v.cached:
            self._write(f"#{v.number} CACHED\n")
        else:
            self._write(f"#{v.number} DONE {v.duration(v.completed or 0):.1f}s\n")

    def close(self) -> None:
        pass


class TtyDisplay:
    """`--progress=tty`: BuildKit's terminal view, redrawn in place (ANSI, no library):

        [+] Building 2.3s (3/5)
         => CACHED [1/4] FROM busybox                                   0.0s
         => [2/4] RUN make                                              1.2s
         => => # the last lines of the running step

    A ticker thread redraws ten times a second so the clocks move while a step is silent.
    """

    def __init__(self, out, clock: Callable[[], float] = time.monotonic,
                 width: int | None = None, tick: float = 0.1) -> None:
        import threading

        self.out = out
        self.clock = clock
        self.width = width or _terminal_width(out)
        self.begun = clock()
        self.vertices: list[Vertex] = []
        self.drawn = 0  # lines of the last drawing, to move back over
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.ticker = None
        if tick > 0:
            self.ticker = threading.Thread(target=self._tick, args=(tick,), daemon=True)
            self.ticker.start()

    def _tick(self, every: float) -> None:
        while not self.stop.wait(every):
            self.draw()

    def started(self, v: Vertex) -> None:
        with self.lock:
            self.vertices.append(v)
        self.draw()

    def logged(self, v: Vertex, elapsed: float | None, line: str) -> None:
        self.draw()

    def completed(self, v: Vertex) -> None:
        self.draw()

    def close(self) -> None:
        self.stop.set()
        if self.ticker is not None:
            self.ticker.join()
        self.draw(final=True)

    def lines(self, final: bool = False) -> list[str]:
        now = self.clock()
        done = sum(1 for v in self.vertices if v.completed is not None)
        out = [f"[+] Building {now - self.begun:.1f}s ({done}/{len(self.vertices)})"
               + (" FINISHED" if final else "")]
        for v in self.vertices:
            mark = "ERROR " if v.error else "CACHED " if v.cached else ""
            out.append(self._row(f" => {mark}{v.name}", f"{v.duration(now):.1f}s"))
            if v.completed is None or v.error:
                out += [self._fit(f" => => # {line}") for _, line in v.logs[-TTY_TAIL:]]
        return out

    def _row(self, left: str, right: str) -> str:
        room = max(self.width - len(right) - 2, 10)
        if len(left) > room:
            left = left[:max(room - 3, 0)] + "..."
        return f"{left:<{room}} {right}"

    def _fit(self, text: str) -> str:
        return text if len(text) < self.width else text[:self.width - 1]

    def draw(self, final: bool = False) -> None:
        with self.lock:
            lines = self.lines(final)
            up = f"\x1b[{self.drawn}A" if self.drawn else ""
            body = "".join(f"\r\x1b[2K{line}\n" for line in lines)
            # clear what the last drawing left below a shorter one
            extra = self.drawn - len(lines)
            tail = ("\x1b[2K\n" * extra + f"\x1b[{extra}A") if extra > 0 else ""
            self.out.write(up + body + tail)
            self.out.flush()
            self.drawn = len(lines)


def _terminal_width(out) -> int:
    import os

    try:
        columns = os.get_terminal_size(out.fileno()).columns
    except (AttributeError, OSError, ValueError):
        columns = 0
    return columns if columns >= 20 else 80  # a pty may not say (0)


def display_for(mode: str, out) -> Display:
    """The display of a --progress mode ("auto" is tty on a terminal, plain off one)."""
    if mode == "quiet":
        return QuietDisplay()
    if mode == "auto":
        mode = "tty" if hasattr(out, "isatty") and out.isatty() else "plain"
    return TtyDisplay(out) if mode == "tty" else PlainDisplay(out)
