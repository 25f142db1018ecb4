"""Docker's stdio on the wire (its stdcopy and term packages): the multiplexed frame, and
the detach keys that end an attach without stopping the process."""

from __future__ import annotations


def frame(stream: int, data: bytes) -> bytes:
    """One multiplexed frame: stream, three zero bytes, the length (big-endian), the data."""
    return bytes((stream, 0, 0, 0)) + len(data).to_bytes(4, "big") + data


class DetachKeys:
    """Finds the detach sequence in stdin (Docker's escape proxy): bytes that might start it
    are held back until they do not; feed() returns (bytes to pass on, detached)."""

    def __init__(self, keys: bytes) -> None:
        self.keys = keys
        self.held = b""

    def feed(self, data: bytes) -> tuple[bytes, bool]:
        if not self.keys:
            return data, False
        out = bytearray()
        for byte in data:
            candidate = self.held + bytes((byte,))
            if self.keys.startswith(candidate):
                if candidate == self.keys:
                    return bytes(out), True
                self.held = candidate
                continue
            out += self.held
            self.held = b""
            if self.keys[:1] == bytes((byte,)):
                if len(self.keys) == 1:
                    return bytes(out), True
                self.held = bytes((byte,))
            else:
                out.append(byte)
        return bytes(out), False


ASCII_CTRL = ["ctrl-@", *[f"ctrl-{chr(c)}" for c in range(ord("a"), ord("z") + 1)],
              "ctrl-[", "ctrl-\\", "ctrl-]", "ctrl-^", "ctrl-_"]
DEFAULT_DETACH_KEYS = "ctrl-p,ctrl-q"


def parse_detach_keys(text: str) -> bytes:
    """Docker's term.ToBytes: "ctrl-p,ctrl-q" -> b"\\x10\\x11"; ValueError if unknown."""
    out = bytearray()
    for key in text.split(","):
        if len(key) == 1:
            out += key.encode("latin-1")
        elif key in ASCII_CTRL:
            out.append(ASCII_CTRL.index(key))
        elif key == "DEL":
            out.append(127)
        else:
            raise ValueError(f"Unknown character: '{key}'")
    return bytes(out)
