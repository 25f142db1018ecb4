"""The part of Go's text/template that docker's `--format` users write.

    render("{{range .Mounts}}{{.Source}} {{end}}", container)

Actions: {{pipeline}}, {{range}}/{{if}}/{{with}} … {{else}} … {{end}} (`else if`), variables
(`$`, `$x := …`, `range $i, $v := …`), `{{-`/`-}}` trimming. Pipelines: `.A.B`, `$v.A`,
literals, `(…)`, `|`. Functions: docker's (json, join, split, lower, upper, title, pad,
truncate, println) and Go's builtins (index, len, print, printf, eq, ne, lt, le, gt, ge, and,
or, not, slice). Values print as Go's fmt %v does: <no value> for a missing key, <nil>,
true/false, [a b], map[k:v].
"""

from __future__ import annotations

from dockyard.cli.gofuncs import (  # noqa: F401 - go_json, go_str: for the formatters
    FUNCS,
    MISSING,
    TemplateError,
    go_json,
    go_str,
    truth,
)

# -- lexing and parsing ---------------------------------------------------------------


def _split(src: str) -> list[tuple[str, str]]:
    """[("text", …) | ("action", …)] with trim markers applied."""
    out: list[tuple[str, str]] = []
    pos = 0
    while True:
        start = src.find("{{", pos)
        if start < 0:
            out.append(("text", src[pos:]))
            return out
        text = src[pos:start]
        body_start = start + 2
        if src.startswith("- ", body_start) or src.startswith("-\t", body_start) or \
                src.startswith("-\n", body_start):
            text = text.rstrip(" \t\r\n")
            body_start += 1
        end = _find_close(src, body_start)
        if end < 0:
            raise TemplateError("template: :1: unclosed action")
        body = src[body_start:end]
        pos = end + 2
        if body.endswith(" -") or body.endswith("\t-") or body.endswith("\n-"):
            body = body[:-1]
            while pos < len(src) and src[pos] in " \t\r\n":
                pos += 1
        out.append(("text", text))
        out.append(("action", body.strip()))


def _find_close(src: str, pos: int) -> int:
    quote = ""
    while pos < len(src) - 1:
        c = src[pos]
        if quote:
            if c == "\\" and quote == '"':
                pos += 2
                continue
            if c == quote:
                quote = ""
        elif c in "\"`":
            quote = c
        elif src.startswith("}}", pos):
            return pos
        pos += 1
    return -1


def _tokens(s: str) -> list[str]:
    toks: list[str] = []
    i = 0
    while i < len(s):
        c = s[i]
        if c in " \t\r\n":
            i += 1
        elif c in "()|,":
            toks.append(c)
            i += 1
        elif s.startswith(":=", i):
            toks.append(":=")
            i += 2
        elif c == "=":
            toks.append("=")
            i += 1
        elif c == '"':
            j = i + 1
            while j < len(s) and s[j] != '"':
                j += 2 if s[j] == "\\" else 1
            toks.append(s[i:j + 1])
            i = j + 1
        elif c == "`":
            j = s.find("`", i + 1)
            if j < 0:
                raise TemplateError("template: :1: unterminated raw quoted string")
            toks.append(s[i:j + 1])
            i = j + 1
        else:
            j = i
            while j < len(s) and s[j] not in " \t\r\n()|,":
                if s.startswith(":=", j) or (s[j] == "=" and j > i and s[i] == "$"):
                    break
                j += 1
            toks.append(s[i:j])
            i = j
    return toks


class Node:
    __slots__ = ("body", "decl", "elif_", "else_", "kind", "pipe")

    def __init__(self, kind: str, pipe=None, decl=None) -> None:
        self.kind = kind          # text | action | range | if | with
        self.pipe = pipe
        self.decl = decl or []
        self.body: list = []
        self.else_: list | None = None


def _unquote(tok: str) -> str:
    if tok.startswith("`"):
        return tok[1:-1]
    from dockyard.runtime import jsonio

    try:
        return jsonio.loads(tok)
    except ValueError:
        raise TemplateError(f"template: :1: bad string {tok}") from None


def _parse_pipeline(toks: list[str]) -> list:
    """A pipeline: [command, …]; a command: [operand, …]; an operand: a tuple."""
    pipeline: list = []
    cmd: list = []
    i = 0
    while i < len(toks):
        t = toks[i]
        if t == "|":
            if not cmd:
                raise TemplateError("template: :1: missing command before |")
            pipeline.append(cmd)
            cmd = []
        elif t == "(":
            depth, j = 1, i + 1
            while j < len(toks) and depth:
                depth += {"(": 1, ")": -1}.get(toks[j], 0)
                j += 1
            if depth:
                raise TemplateError("template: :1: unclosed left paren")
            sub = ("pipe", _parse_pipeline(toks[i + 1:j - 1]))
            # a field chain after the parenthesis: (index .X 0).Name
            if j < len(toks) and toks[j].startswith(".") and toks[j] != ".":
                sub = ("chain", sub, toks[j][1:].split("."))
                j += 1
            cmd.append(sub)
            i = j
            continue
        elif t == ")":
            raise TemplateError("template: :1: unexpected right paren")
        else:
            cmd.append(_operand(t))
        i += 1
    if cmd:
        pipeline.append(cmd)
    if not pipeline:
        raise TemplateError("template: :1: missing value for command")
    return pipeline


def _operand(t: str) -> tuple:
    if t == ".":
        return ("dot",)
    if t.startswith("."):
        return ("field", None, t[1:].split("."))
    if t.startswith("$"):
        name, _, rest = t.partition(".")
        return ("field", name, rest.split(".") if rest else [])
    if t[0] in "\"`":
        return ("lit", _unquote(t))
    if t in ("true", "false"):
        return ("lit", t == "true")
    if t == "nil":
        return ("lit", None)
    if t[0].isdigit() or (t[0] in "-+" and len(t) > 1):
        try:
            return ("lit", int(t, 0))
        except ValueError:
            try:
                return ("lit", float(t))
            except ValueError:
                raise TemplateError(f"template: :1: bad number syntax: {t!r}") from None
    return ("func", t)


def _parse_action(body: str):
    toks = _tokens(body)
    decl: list[str] = []
    if len(toks) >= 2 and toks[0].startswith("$") and (toks[1] in (":=", "=") or (
            len(toks) >= 4 and toks[1] == "," and toks[3] in (":=", "="))):
        if toks[1] == ",":
            decl, toks = [toks[0], toks[2]], toks[4:]
        else:
            decl, toks = [toks[0]], toks[2:]
    return decl, _parse_pipeline(toks)


def parse(src: str) -> list:
    root: list = []
    stack: list[tuple[Node | None, list]] = [(None, root)]
    for kind, s in _split(src):
        target = stack[-1][1]
        if kind == "text":
            if s:
                target.append(s)
            continue
        if not s or s.startswith("/*"):
            continue
        word, _, rest = s.partition(" ")
        rest = rest.strip()
        if word in ("range", "if", "with"):
            decl, pipe = _parse_action(rest)
            node = Node(word, pipe, decl)
            target.append(node)
            stack.append((node, node.body))
        elif word == "else":
            node = stack[-1][0]
            if node is None:
                raise TemplateError("template: :1: unexpected {{else}}")
            node.else_ = []
            if rest.startswith(("if ", "with ")):
                kw, _, cond = rest.partition(" ")
                decl, pipe = _parse_action(cond)
                inner = Node(kw, pipe, decl)
                inner.elif_ = True
                node.else_.append(inner)
                stack[-1] = (node, node.else_)
                stack.append((inner, inner.body))
            else:
                stack[-1] = (node, node.else_)
        elif word == "end":
            if len(stack) == 1:
                raise TemplateError("template: :1: unexpected {{end}}")
            node, _ = stack.pop()
            while getattr(node, "elif_", False) is True and len(stack) > 1:
                node, _ = stack.pop()
        else:
            decl, pipe = _parse_action(s)
            node = Node("action", pipe, decl)
            target.append(node)
    if len(stack) > 1:
        raise TemplateError("template: :1: unexpected EOF")
    return root


# -- evaluation -----------------------------------------------------------------------

def _field(v, name: str, full: str, scope: _Scope | None = None):
    if v is MISSING or v is None:
        raise TemplateError(
            f'template: :1: executing "" at <.{full}>: nil pointer evaluating '
            f"interface {{}}.{name}")
    if isinstance(v, dict):
        found = v.get(name, MISSING)
        if found is MISSING and scope is not None and scope.strict:
            at = scope.src.find("." + full)
            col = at + len(full) - len(full.rpartition(".")[2]) if at >= 0 else 0
            raise TemplateError(f'template: :1:{col}: executing "" at <.{full}>: map has no '
                                f'entry for key "{name}"')
        return found
    attr = getattr(v, name, MISSING) if name[:1].isupper() else MISSING
    if attr is MISSING:
        col = 0
        if scope is not None:
            at = scope.src.find("." + full)
            col = at + len(full) - len(full.rpartition(".")[2]) if at >= 0 else 0
        kind = getattr(v, "GO_TYPE", type(v).__name__)
        raise TemplateError(f'template: :1:{col}: executing "" at <.{full}>: can\'t evaluate '
                            f"field {name} in type {kind}")
    return attr() if callable(attr) else attr

class _Scope:
    def __init__(self, root, src: str = "", strict: bool = False) -> None:
        self.vars: list[dict] = [{"$": root}]
        self.src = src
        self.strict = strict  # missingkey=error, as `docker inspect` executes templates

    def get(self, name: str):
        for frame in reversed(self.vars):
            if name in frame:
                return frame[name]
        raise TemplateError(f'template: :1: undefined variable "{name}"')

    def set(self, name: str, value) -> None:
        self.vars[-1][name] = value


def _operand_value(op: tuple, dot, scope: _Scope, extra: list):
    kind = op[0]
    if kind == "dot":
        return dot
    if kind == "lit":
        return op[1]
    if kind == "field":
        v = dot if op[1] is None else scope.get(op[1])
        full = ".".join(op[2])
        for name in op[2]:
            v = _field(v, name, full, scope)
        return v
    if kind == "pipe":
        return _pipeline(op[1], dot, scope)
    if kind == "chain":
        v = _operand_value(op[1], dot, scope, [])
        for name in op[2]:
            v = _field(v, name, ".".join(op[2]))
        return v
    if kind == "func":
        fn = FUNCS.get(op[1])
        if fn is None:
            raise TemplateError(f'template: :1: function "{op[1]}" not defined')
        return fn
    raise TemplateError("template: bad operand")


def _pipeline(pipeline: list, dot, scope: _Scope):
    value = MISSING
    for i, cmd in enumerate(pipeline):
        head = cmd[0]
        if head[0] == "func":
            fn = _operand_value(head, dot, scope, [])
            args = [_operand_value(a, dot, scope, []) for a in cmd[1:]]
            if i:
                args.append(value)
            try:
                value = fn(*args)
            except TemplateError:
                raise
            except (TypeError, ValueError, IndexError, KeyError, AttributeError) as e:
                raise TemplateError(
                    f'template: :1: executing "" at <{head[1]}>: error calling '
                    f"{head[1]}: {e}") from None
        elif head[0] == "field" and head[2] and (len(cmd) > 1 or i):
            # a method with arguments: {{.Label "com.example"}}
            owner = dot if head[1] is None else scope.get(head[1])
            full = ".".join(head[2])
            for name in head[2][:-1]:
                owner = _field(owner, name, full, scope)
            method = getattr(owner, head[2][-1], None)
            if not callable(method) or isinstance(owner, dict):
                raise TemplateError(f"template: :1: can't give argument to non-function "
                                    f".{full}")
            args = [_operand_value(a, dot, scope, []) for a in cmd[1:]]
            value = method(*args, *([value] if i else []))
        else:
            if len(cmd) > 1 or i:
                raise TemplateError(f"template: :1: can't give argument to non-function "
                                    f"{head}")
            value = _operand_value(head, dot, scope, [])
    return value


def _exec(nodes: list, dot, scope: _Scope, out: list) -> None:
    for node in nodes:
        if isinstance(node, str):
            out.append(node)
            continue
        value = _pipeline(node.pipe, dot, scope)
        if node.kind == "action":
            if node.decl:
                scope.set(node.decl[0], value)
            else:
                out.append(go_str(value))
        elif node.kind == "if":
            branch = node.body if truth(value) else node.else_
            if branch:
                _exec(branch, dot, scope, out)
        elif node.kind == "with":
            if truth(value):
                _exec(node.body, value, scope, out)
            elif node.else_:
                _exec(node.else_, dot, scope, out)
        elif node.kind == "range":
            _range(node, value, dot, scope, out)


def _range(node: Node, value, dot, scope: _Scope, out: list) -> None:
    if isinstance(value, dict):
        items = [(k, value[k]) for k in sorted(value)]
    elif isinstance(value, list | tuple):
        items = list(enumerate(value))
    elif isinstance(value, int) and not isinstance(value, bool):
        items = [(i, i) for i in range(value)]
    elif value is None or value is MISSING:
        items = []
    else:
        raise TemplateError(f"template: :1: range can't iterate over {go_str(value)}")
    if not items:
        if node.else_:
            _exec(node.else_, dot, scope, out)
        return
    for k, v in items:
        scope.vars.append({})
        if len(node.decl) == 2:
            scope.set(node.decl[0], k)
            scope.set(node.decl[1], v)
        elif node.decl:
            scope.set(node.decl[0], v)
        _exec(node.body, v, scope, out)
        scope.vars.pop()


class Template:
    def __init__(self, src: str, strict: bool = False) -> None:
        self.src = src
        self.strict = strict
        self.nodes = parse(src)

    def render(self, data) -> str:
        out: list[str] = []
        _exec(self.nodes, data, _Scope(data, self.src, self.strict), out)
        return "".join(out)


def render(src: str, data) -> str:
    return Template(src).render(data)
