"""JSON as Go's encoding/json writes it for docker: HTML characters escaped, non-ASCII
kept, and `docker inspect`'s four-space indentation."""

from __future__ import annotations

import _json

_enc = _json.encode_basestring


def _s(s: str) -> str:
    return _enc(s).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def indent(obj, step: str = "    ", level: int = 0) -> str:
    pad = step * (level + 1)
    end = step * level
    if isinstance(obj, dict):
        if not obj:
            return "{}"
        items = [f"{pad}{_s(str(k))}: {indent(v, step, level + 1)}" for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + end + "}"
    if isinstance(obj, list | tuple):
        if not obj:
            return "[]"
        return "[\n" + ",\n".join(pad + indent(v, step, level + 1) for v in obj) + \
            "\n" + end + "]"
    if isinstance(obj, str):
        return _s(obj)
    if obj is None:
        return "null"
    if obj is True:
        return "true"
    if obj is False:
        return "false"
    if isinstance(obj, float):
        from dockyard.cli.template import go_str

        return go_str(obj)
    return str(obj)
