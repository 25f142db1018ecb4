"""The shim protocol: frames over a unix stream socket, shared by the shim and both clients.

A frame is a 4-byte big-endian length and that many bytes of UTF-8 JSON; a frame longer than
MAX_FRAME is refused before it is read. Requests and replies carry the request's id, so many
requests can be in flight on one connection and replies may come back in any order:

    client                                            shim
      ── {"id": 1, "method": "create", "params": {…}} ──►
      ── {"id": 2, "method": "state", "params": {}} ────►
      ◄── {"id": 2, "result": {"status": "created", …}} ─
      ◄── {"id": 1, "result": {"pid": 4242}} ────────────
      ── {"id": 3, "method": "kill", …} ─────────────────►
      ◄── {"id": 3, "error": {"code": "not_found", "message": "process already finished"}}

Two methods turn the connection into a stream after their reply:

    attach  ◄── Docker's multiplexed stdout/stderr frames (STREAM_HEADER: stream, 0, 0, 0,
                 4-byte big-endian length; then the data). The shim shuts its writing side
                 when the process's output ends.
            ──► raw bytes for the process's stdin; the client's SHUT_WR ends them.
    events  ◄── one JSON frame per event: {"topic": "/tasks/exit", "id", "exec_id", …}

Error codes are containerd's names (ERROR_CODES); ShimError carries one, on both sides.
Standard library only: the shim imports this.
"""

from __future__ import annotations

from dockyard.runtime import jsonio

MAX_FRAME = 16 << 20
HEADER = 4

ERROR_CODES = ("not_found", "already_exists", "failed_precondition", "invalid_argument",
               "unavailable", "internal")

STDOUT, STDERR = 1, 2
STREAMS = {"stdout": STDOUT, "stderr": STDERR}


class ShimError(Exception):
    """An error reply (or a broken connection, as "unavailable"): `code` is one of
    ERROR_CODES, `message` the shim's (or the runtime's) words."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code if code in ERROR_CODES else "internal"
        self.message = message

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"ShimError({self.code!r}, {self.message!r})"

    def to_json(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


class FrameError(ShimError):
    """A frame that cannot be read: too long, not JSON, not an object, cut short."""

    def __init__(self, message: str) -> None:
        super().__init__("invalid_argument", message)


def encode(obj: object) -> bytes:
    body = jsonio.dumps(obj).encode()
    if len(body) > MAX_FRAME:
        raise FrameError(f"frame of {len(body)} bytes is longer than {MAX_FRAME}")
    return len(body).to_bytes(HEADER, "big") + body


def frame_length(header: bytes) -> int:
    """The body length a header announces; FrameError past MAX_FRAME."""
    n = int.from_bytes(header, "big")
    if n > MAX_FRAME:
        raise FrameError(f"frame of {n} bytes is longer than {MAX_FRAME}")
    return n


def decode(body: bytes) -> dict:
    try:
        obj = jsonio.loads(body)
    except jsonio.DecodeError as e:
        raise FrameError(f"frame is not JSON: {e}") from None
    if not isinstance(obj, dict):
        raise FrameError("frame is not a JSON object")
    return obj


class Decoder:
    """Incremental: feed() bytes as they come, take whole frames with next(). One at a time,
    because the bytes after an attach request are not frames but the stream's first bytes."""

    def __init__(self) -> None:
        self.buf = bytearray()

    def feed(self, data: bytes) -> None:
        self.buf += data
        if len(self.buf) >= HEADER:
            frame_length(self.buf[:HEADER])  # refuse an oversized frame before it arrives

    def next(self) -> dict | None:
        """The next whole frame, or None until more bytes come."""
        if len(self.buf) < HEADER:
            return None
        n = frame_length(self.buf[:HEADER])
        if len(self.buf) < HEADER + n:
            return None
        body = bytes(self.buf[HEADER:HEADER + n])
        del self.buf[:HEADER + n]
        return decode(body)

    def take_rest(self) -> bytes:
        """What follows the last whole frame: the first bytes of a raw stream."""
        rest, self.buf = bytes(self.buf), bytearray()
        return rest


def request(rid: int, method: str, params: dict | None = None) -> bytes:
    return encode({"id": rid, "method": method, "params": params or {}})


def result_of(reply: dict):
    """The result of a reply, or its error raised as ShimError."""
    err = reply.get("error")
    if err is not None:
        if not isinstance(err, dict):
            raise ShimError("internal", f"malformed error reply: {err!r}")
        raise ShimError(str(err.get("code", "internal")), str(err.get("message", "")))
    return reply.get("result")


def stream_header(stream: int, size: int) -> bytes:
    """Docker's stdcopy header for `size` bytes of `stream` (1 stdout, 2 stderr)."""
    return bytes((stream, 0, 0, 0)) + size.to_bytes(4, "big")


def unix_path(address: str) -> str:
    """The socket path of an address: "unix:///run/…" or a bare path."""
    return address[len("unix://"):] if address.startswith("unix://") else address
