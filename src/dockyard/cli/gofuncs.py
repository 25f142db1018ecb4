"""Go's view of values, for templates: fmt's %v, encoding/json, truth, and the functions
docker's templates and Go's builtins offer."""

from __future__ import annotations


class TemplateError(ValueError):
    pass


class _Missing:
    def __repr__(self) -> str:
        return "<no value>"


MISSING = _Missing()


def go_str(v) -> str:
    """fmt's %v of a value decoded from JSON."""
    if v is MISSING:
        return "<no value>"
    if v is None:
        return "<nil>"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, str):
        return v
    if isinstance(v, float):
        if v == int(v) and abs(v) < 1e21:
            return str(int(v))
        r = repr(v)
        if "e" in r:
            m, _, e = r.partition("e")
            sign = "-" if e.startswith("-") else "+"
            return f"{m}e{sign}{e.lstrip('+-').zfill(2)}"
        return r
    if isinstance(v, list | tuple):
        return "[" + " ".join(go_str(x) for x in v) + "]"
    if isinstance(v, dict):
        return "map[" + " ".join(f"{k}:{go_str(v[k])}" for k in sorted(v)) + "]"
    return str(v)


def truth(v) -> bool:
    return v is not MISSING and bool(v)


def go_json(v) -> str:
    import _json

    enc = _json.make_encoder(None, _json_default, _json.encode_basestring, None, ":", ",",
                             False, False, True)
    if v is MISSING:
        v = None
    s = "".join(enc(v, 0))
    return s.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _json_default(o):
    if o is MISSING:
        return None
    if hasattr(o, "to_json"):
        return o.to_json()
    raise TypeError(f"cannot encode {type(o).__name__}")


def _printf(fmt: str, *args) -> str:
    out, i, n = [], 0, 0
    while i < len(fmt):
        c = fmt[i]
        if c != "%" or i + 1 >= len(fmt):
            out.append(c)
            i += 1
            continue
        j = i + 1
        while j < len(fmt) and fmt[j] in "-+ #0123456789.":
            j += 1
        verb, flags = fmt[j] if j < len(fmt) else "", fmt[i + 1:j]
        i = j + 1
        if verb == "%":
            out.append("%")
            continue
        a = args[n] if n < len(args) else MISSING
        n += 1
        if verb in "dxXob" and isinstance(a, int | float):
            out.append(("%" + flags + ("d" if verb == "b" else verb)) % int(a))
        elif verb in "feEgG" and isinstance(a, int | float):
            out.append(("%" + flags + verb) % a)
        elif verb == "q":
            out.append(go_json(go_str(a)))
        else:
            out.append(("%" + flags + "s") % go_str(a))
    return "".join(out)


def _index(v, *keys):
    for k in keys:
        if isinstance(v, dict):
            v = v.get(k, None)
        elif isinstance(v, list | str):
            v = v[int(k)]
        else:
            raise TemplateError(f"template: :1: can't index item of type {type(v).__name__}")
    return v


def _title(s) -> str:
    s = go_str(s)
    return " ".join(w[:1].upper() + w[1:] for w in s.split(" "))


def _truncate(s, n) -> str:
    s = go_str(s)
    return s[:int(n)]


def _pad(s, left, right) -> str:
    return " " * int(left) + go_str(s) + " " * int(right)


def _cmp(op):
    def f(a, b, *more):
        if op == "eq":
            return any(a == x for x in (b, *more))
        return {"ne": a != b, "lt": a < b, "le": a <= b, "gt": a > b, "ge": a >= b}[op]
    return f


def _and(*args):
    for a in args:
        if not truth(a):
            return a
    return args[-1]


def _or(*args):
    for a in args:
        if truth(a):
            return a
    return args[-1]


def _slice(v, *idx):
    return v[int(idx[0]) if idx else 0:int(idx[1]) if len(idx) > 1 else None]


FUNCS = {
    "json": go_json,
    "join": lambda items, sep: sep.join(go_str(x) for x in (items or [])),
    "split": lambda s, sep: go_str(s).split(sep),
    "lower": lambda s: go_str(s).lower(),
    "upper": lambda s: go_str(s).upper(),
    "title": _title,
    "pad": _pad,
    "truncate": _truncate,
    "println": lambda *a: " ".join(go_str(x) for x in a) + "\n",
    "print": lambda *a: "".join(go_str(x) for x in a),
    "printf": _printf,
    "index": _index,
    "len": lambda v: len(v) if v not in (None, MISSING) else 0,
    "not": lambda v: not truth(v),
    "and": _and,
    "or": _or,
    "slice": _slice,
    **{op: _cmp(op) for op in ("eq", "ne", "lt", "le", "gt", "ge")},
}
