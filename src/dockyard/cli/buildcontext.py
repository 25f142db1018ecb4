"""The build context `dockyard build` sends, as docker's CLI makes it (one tar, uncompressed):

- PATH walked as TarWithOptions walks it, less what .dockerignore excludes; the Dockerfile
  and .dockerignore are always sent (TrimBuildFilesFromExcludes); owner root, names relative
  to PATH. `-f` is relative to the working directory, not to PATH.
- a Dockerfile outside PATH (or `-f -`) goes in as `.dockerfile.<20 hex>`, a name appended to
  .dockerignore so that `COPY .` skips it (AddDockerfileToBuildContext).
- `-` reads the context from stdin: a tar (compressed or not), sent as it is, or copied
  member by member when files join it; or a Dockerfile alone.
- secrets as `.dockyard-secrets/ID` (0400, in a 0700 directory), the classic API having no
  channel of its own for them; the engine takes that directory out before it reads the
  context. The context's own `.dockyard-secrets`, if any, is never sent.

    ctx = local_context("app", "-f value or None")    # or stdin_context(stdin, file)
    add_secrets(ctx, {"token": b"…"})
    write_context(ctx, tmpfile)                      # ctx.dockerfile: the `dockerfile` param
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from dockyard.cli.flags import CommandError

SECRETS_DIR = ".dockyard-secrets"
DOCKERIGNORE = ".dockerignore"


@dataclass
class Context:
    """What the tar holds: a directory walked, or a tar read from stdin, plus files."""

    dockerfile: str                      # its name in the tar: the `dockerfile` parameter
    directory: str | None = None
    stdin_tar: object | None = None      # a binary file
    keep: tuple[str, ...] = ()           # sent even if .dockerignore excludes them
    extra: dict[str, bytes] = field(default_factory=dict)   # name in the tar → content
    ignore_also: list[str] = field(default_factory=list)    # appended to .dockerignore



def _random_dockerfile_name() -> str:
    import secrets

    return ".dockerfile." + secrets.token_hex(10)


def local_context(path: str, file: str | None, stdin=None) -> Context:
    """GetContextFromLocalDir: PATH and where its Dockerfile is (`file` is relative to the
    working directory); a Dockerfile outside PATH, or from stdin, is carried in."""
    if not os.path.exists(path):
        raise CommandError(f'unable to prepare context: path "{path}" not found')
    if not os.path.isdir(path):
        raise CommandError("unable to prepare context: context must be a directory: "
                           f"{os.path.abspath(path)}")
    root = os.path.realpath(path)
    if file == "-":
        return _carried(Context("", root), stdin.read())
    given = os.path.abspath(file) if file else os.path.join(root, "Dockerfile")
    if not file and not os.path.lexists(given) and os.path.lexists(
            os.path.join(root, "dockerfile")):
        given = os.path.join(root, "dockerfile")
    try:
        real = os.path.realpath(given, strict=True)
    except OSError as e:
        raise CommandError("unable to prepare context: unable to evaluate symlinks in "
                           f"Dockerfile path: lstat {given}: {e.strerror}") from None
    if os.path.isdir(real):
        raise CommandError(f"unable to prepare context: the Dockerfile ({real}) must be a "
                           "file, not a directory")
    rel = os.path.relpath(real, root)
    if rel == ".." or rel.startswith("../"):
        with open(real, "rb") as f:
            return _carried(Context("", root), f.read())
    return Context(rel, root, keep=(DOCKERIGNORE, rel))


def _carried(ctx: Context, dockerfile: bytes) -> Context:
    name = _random_dockerfile_name()
    ctx.dockerfile = name
    ctx.extra[name] = dockerfile
    ctx.ignore_also.append(name)
    ctx.keep = (DOCKERIGNORE,)
    return ctx


class _Prefixed:
    """A binary stream with the bytes already read from it put back in front."""

    def __init__(self, head: bytes, rest) -> None:
        self.head, self.rest = head, rest

    def read(self, n: int = -1) -> bytes:
        if self.head:
            if n < 0:
                data, self.head = self.head + self.rest.read(), b""
                return data
            data, self.head = self.head[:n], self.head[n:]
            return data
        return self.rest.read(n)


def _read_head(stream, n: int = 512) -> bytes:
    head = b""
    while len(head) < n and (chunk := stream.read(n - len(head))):
        head += chunk
    return head


def is_archive(head: bytes) -> bool:
    """IsArchive: compressed (gzip, bzip2, xz, zstd) or a tar header."""
    import tarfile

    if head.startswith((b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00", b"\x28\xb5\x2f\xfd")):
        return True
    try:
        tarfile.TarInfo.frombuf(head[:512], "utf-8", "surrogateescape")
    except tarfile.HeaderError:
        return False
    return True


def stdin_context(stdin, file: str | None) -> Context:
    """`-`: a tar on stdin (its Dockerfile named by -f), or a Dockerfile alone."""
    if file == "-":
        raise CommandError("invalid argument: can't use stdin for both build context and "
                           "dockerfile")
    head = _read_head(stdin)
    if is_archive(head):
        return Context(file or "Dockerfile", stdin_tar=_Prefixed(head, stdin))
    return Context("Dockerfile", extra={"Dockerfile": head + stdin.read()})


def add_secrets(ctx: Context, secrets: dict[str, bytes]) -> None:
    """Each secret (by id) as `.dockyard-secrets/ID`: see the module's docstring."""
    for ident, data in secrets.items():
        ctx.extra[f"{SECRETS_DIR}/{ident}"] = data


def needs_rewrite(ctx: Context) -> bool:
    """Whether a stdin tar must be copied member by member (to add files to it)."""
    return bool(ctx.extra or ctx.ignore_also)


def write_context(ctx: Context, out) -> None:
    """The context as one uncompressed tar on the binary file `out`."""
    import tarfile

    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        ignore = _dockerignore_text(ctx)
        if ctx.directory is not None:
            _walk(tar, ctx.directory, "", _matcher(ignore, ctx.keep), ctx)
        elif ctx.stdin_tar is not None:
            _copy_members(tar, ctx)
        if ctx.ignore_also:
            text = (ignore if ignore is not None else DOCKERIGNORE) + "\n" + "".join(
                f"{name}\n" for name in ctx.ignore_also)
            _add_bytes(tar, DOCKERIGNORE, text.encode(), 0o600)
        if any(name.startswith(SECRETS_DIR + "/") for name in ctx.extra):
            _add_dir(tar, SECRETS_DIR, 0o700)
        for name, data in ctx.extra.items():
            _add_bytes(tar, name, data, 0o400 if name.startswith(SECRETS_DIR) else 0o600)


def _dockerignore_text(ctx: Context) -> str | None:
    if ctx.directory is None:
        return None
    path = os.path.join(ctx.directory, DOCKERIGNORE)
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8", errors="surrogateescape") as f:
        return f.read()


def _matcher(text: str | None, keep: tuple[str, ...]):
    if text is None:
        return None
    from dockyard.build.dockerignore import IgnoreMatcher, PatternError

    try:
        return IgnoreMatcher.from_text(text).keeping(*keep)
    except PatternError as e:
        raise CommandError(f"error reading .dockerignore: {e}") from None


def _walk(tar, root: str, rel: str, matcher, ctx: Context) -> None:
    """TarWithOptions' walk: names in order; an excluded directory is looked into only when
    an exception may bring something below it back (and is itself not sent)."""
    directory = os.path.join(root, rel) if rel else root
    try:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except OSError as e:
        raise CommandError(f"error checking context: can't stat '{directory}': "
                           f"{e.strerror}") from None
    for entry in entries:
        path = f"{rel}/{entry.name}" if rel else entry.name
        if path == SECRETS_DIR or (ctx.ignore_also and path == DOCKERIGNORE):
            continue  # ours to write
        is_dir = entry.is_dir(follow_symlinks=False)
        if matcher is not None and matcher.matches(path):
            if is_dir and matcher.could_reinclude(path):
                _walk(tar, root, path, matcher, ctx)
            continue
        _add_path(tar, entry.path, path)
        if is_dir:
            _walk(tar, root, path, matcher, ctx)


def _add_path(tar, full: str, name: str) -> None:
    try:
        info = tar.gettarinfo(full, arcname=name)
    except OSError as e:
        raise CommandError(f"error checking context: can't stat '{full}': "
                           f"{e.strerror}") from None
    if info is None:
        return  # a socket: tar has no type for it
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    if not info.isreg():
        tar.addfile(info)
        return
    try:
        with open(full, "rb") as f:
            tar.addfile(info, f)
    except PermissionError:
        raise CommandError("error checking context: 'no permission to read from "
                           f"'{full}''") from None


def _add_bytes(tar, name: str, data: bytes, mode: int) -> None:
    import io
    import tarfile
    import time

    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), mode, int(time.time())
    tar.addfile(info, io.BytesIO(data))


def _add_dir(tar, name: str, mode: int) -> None:
    import tarfile
    import time

    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime = tarfile.DIRTYPE, mode, int(time.time())
    tar.addfile(info)


def _copy_members(tar, ctx: Context) -> None:
    """A stdin tar copied into ours, which adds files to it; its own secrets directory is
    left out."""
    import io
    import tarfile

    with tarfile.open(fileobj=ctx.stdin_tar, mode="r|*") as src:
        for m in src:
            name = m.name.removeprefix("./").rstrip("/")
            if name == SECRETS_DIR or name.startswith(SECRETS_DIR + "/"):
                continue
            data = src.extractfile(m).read() if m.isreg() else None
            tar.addfile(m, io.BytesIO(data) if data is not None else None)
