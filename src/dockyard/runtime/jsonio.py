"""JSON through the C accelerator `_json`, without importing the `json` package.

`import json` pulls in `re` and `enum`: about 7 ms, a third of the time runc takes to run a
container. The runtime reads one config.json and writes one state.json per call, so it uses
the C scanner and encoder directly. The results are the same as json.loads/json.dumps
(strict parsing; non-ASCII escaped in compact output).
"""

from __future__ import annotations

import _json

TYPE_CHECKING = False  # not from typing: importing typing costs ~9 ms
if TYPE_CHECKING:
    from typing import Any


class DecodeError(ValueError):
    pass


class _Context:
    """The attributes `_json.make_scanner` reads from a json.JSONDecoder."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    memo: dict = {}

    @staticmethod
    def parse_constant(name: str) -> float:
        return {"NaN": float("nan"), "Infinity": float("inf"),
                "-Infinity": float("-inf")}[name]


_scan = _json.make_scanner(_Context())
_WS = " \t\n\r"


def _lineno(doc: str, pos: int) -> str:
    line = doc.count("\n", 0, pos) + 1
    col = pos - doc.rfind("\n", 0, pos)
    return f"line {line} column {col} (char {pos})"


def loads(doc: str | bytes) -> Any:
    if isinstance(doc, bytes | bytearray):
        if doc[:3] == b"\xef\xbb\xbf":  # a BOM: not through the utf-8-sig codec (an import)
            doc = doc[3:]
        try:
            doc = doc.decode("utf-8")
        except UnicodeDecodeError as e:
            raise DecodeError(f"invalid UTF-8: {e}") from None
    pos = 0
    n = len(doc)
    while pos < n and doc[pos] in _WS:
        pos += 1
    try:
        value, end = _scan(doc, pos)
    except StopIteration as e:
        raise DecodeError(f"Expecting value: {_lineno(doc, e.value)}") from None
    except (ValueError, SystemError):
        # The scanner builds its error from json.decoder and fails when that module was
        # never imported: on this (rare) path, let the json package say what is wrong.
        import json

        try:
            json.loads(doc)
        except ValueError as e:
            raise DecodeError(str(e)) from None
        raise DecodeError("invalid JSON") from None
    finally:
        _Context.memo.clear()
    while end < n and doc[end] in _WS:
        end += 1
    if end != n:
        raise DecodeError(f"Extra data: {_lineno(doc, end)}")
    return value


_compact = _json.make_encoder({}, None, _json.encode_basestring_ascii, None, ":", ",",
                              False, False, True)


def dumps(obj: Any) -> str:
    """Compact JSON, as runc writes its state file."""
    return "".join(_compact(obj, 0))


def dumps_pretty(obj: Any, indent: int = 2, _level: int = 0) -> str:
    """Indented JSON like json.dumps(obj, indent=indent): the C encoder has no indentation."""
    pad = " " * (indent * (_level + 1))
    end = " " * (indent * _level)
    if isinstance(obj, dict):
        if not obj:
            return "{}"
        items = [f"{pad}{_json.encode_basestring_ascii(str(k))}: "
                 f"{dumps_pretty(v, indent, _level + 1)}" for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + end + "}"
    if isinstance(obj, list | tuple):
        if not obj:
            return "[]"
        items = [pad + dumps_pretty(v, indent, _level + 1) for v in obj]
        return "[\n" + ",\n".join(items) + "\n" + end + "]"
    return dumps(obj)
