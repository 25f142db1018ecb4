"""The build context of a classic `/build` request, on disk.

The client sends the context as a tar (gzip, bzip2, xz or zstd compressed, or not), already
filtered by its .dockerignore (docker/cli, docker-py). The daemon, as moby's
builder/remotecontext does:

    extract_context(stream, dest)   unpack it safely (archives.extract, strict names) and
                                    apply .dockerignore again, for clients that did not;
                                    the Dockerfile and .dockerignore stay for now
    read_dockerfile(dest, name)     the Dockerfile named by the `dockerfile` query parameter,
                                    found with symlinks scoped to the context
                                    ("Dockerfile" falls back to "dockerfile")
    remove_build_files(dest, name)  removeDockerfile: drop .dockerignore and the Dockerfile
                                    when .dockerignore lists them, so that `COPY . /` does not
                                    copy them

Errors are ContextError, with moby's words: the executor reports them as the build's error.
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from dockyard.build import archives
from dockyard.build.dockerignore import IgnoreMatcher, PatternError, clean
from dockyard.runtime.linux import securejoin

if TYPE_CHECKING:
    from dockyard.build.filedigests import FileDigests

DOCKERIGNORE = ".dockerignore"
DEFAULT_DOCKERFILE = "Dockerfile"


SECRETS = ".dockyard-secrets"


class ContextError(Exception):
    """A context that cannot be used: unreadable, unsafe, or without its Dockerfile."""


def extract_context(stream: BinaryIO, dest: Path, *, max_size: int | None = None,
                    dockerfile: str = DEFAULT_DOCKERFILE,
                    digests: FileDigests | None = None) -> Path:
    """Unpack the context tar `stream` into `dest` (made if missing) and remove what its
    .dockerignore excludes, except the Dockerfile and .dockerignore themselves (the CLI's
    TrimBuildFilesFromExcludes). Returns `dest`. `digests` records the files' sha256 as they
    are written, for the COPY cache keys."""
    dest.mkdir(parents=True, exist_ok=True)
    try:
        archives.extract(stream, dest, strict=True, max_size=max_size, digests=digests)
    except archives.ArchiveError as e:
        raise ContextError(f"invalid build context: {e}") from e
    matcher = load_dockerignore(dest)
    if matcher is not None:
        # the secrets `dockyard build --secret` sends leave the context right after (the
        # engine's api/build.py): .dockerignore is not theirs to drop
        remove_ignored(dest, matcher.keeping(DOCKERIGNORE, clean(dockerfile.lstrip("/")),
                                             SECRETS, f"{SECRETS}/**"))
    return dest


def load_dockerignore(ctx: Path) -> IgnoreMatcher | None:
    """The matcher of the context's .dockerignore, None without one (a missing file is not an
    error). A symlinked .dockerignore is read inside the context."""
    path = securejoin.resolve(str(ctx), DOCKERIGNORE)
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            text = f.read()
    except (FileNotFoundError, NotADirectoryError):
        return None
    except IsADirectoryError:
        raise ContextError("error reading .dockerignore: is a directory") from None
    try:
        return IgnoreMatcher.from_text(text)
    except PatternError as e:
        raise ContextError(f"error reading .dockerignore: {e}") from e


def remove_ignored(ctx: Path, matcher: IgnoreMatcher) -> None:
    """Remove from `ctx` what `matcher` excludes, walking as TarWithOptions walks: an excluded
    directory is dropped whole unless an exception may bring something below it back; such a
    directory is looked into, and dropped afterwards if nothing came back."""
    _prune(ctx, "", matcher)


def _prune(directory: Path, rel: str, matcher: IgnoreMatcher) -> bool:
    """Prune below `directory` (`rel` in the context); True if something is left in it."""
    left = False
    for entry in sorted(os.scandir(directory), key=lambda e: e.name):
        path = f"{rel}/{entry.name}" if rel else entry.name
        is_dir = entry.is_dir(follow_symlinks=False)
        if matcher.excluded(path, is_dir):
            _remove(Path(entry.path), is_dir)
            continue
        if is_dir:
            kept = _prune(Path(entry.path), path, matcher)
            if not kept and matcher.matches(path):
                os.rmdir(entry.path)  # excluded, and nothing below it came back
                continue
        left = True
    return left


def _remove(path: Path, is_dir: bool) -> None:
    if is_dir:
        shutil.rmtree(path)
    else:
        path.unlink()


def _dockerfile_path(ctx: Path, name: str) -> Path | None:
    """The host path of `name` in the context (symlinks scoped to it: moby's FullPath), or
    None when no regular file is there."""
    path = Path(securejoin.resolve(str(ctx), name))
    try:
        st = path.stat()
    except (FileNotFoundError, NotADirectoryError):
        return None
    if stat.S_ISDIR(st.st_mode):
        raise ContextError(f"Cannot locate specified Dockerfile: {name} (is a directory)")
    return path


def dockerfile_name(ctx: Path, name: str | None = None) -> str:
    """The Dockerfile's name as found: `name` (default "Dockerfile") or, for the default
    only, "dockerfile" (withDockerfileFromContext's fallback)."""
    name = name or DEFAULT_DOCKERFILE
    if _dockerfile_path(ctx, name) is not None:
        return name
    if name == DEFAULT_DOCKERFILE and _dockerfile_path(ctx, name.lower()) is not None:
        return name.lower()
    raise ContextError(f"Cannot locate specified Dockerfile: {name}")


def read_dockerfile(ctx: Path, name: str | None = None) -> str:
    """The Dockerfile's text. `name` is the `dockerfile` query parameter, a path inside the
    context; ".." cannot leave it (moby refuses such a path: "Forbidden path outside the
    build context"), symlinks are followed inside it."""
    name = name or DEFAULT_DOCKERFILE
    if clean(name.lstrip("/")).startswith("../") or clean(name.lstrip("/")) == "..":
        raise ContextError(f"Forbidden path outside the build context: {name} ()")
    found = dockerfile_name(ctx, name)
    path = _dockerfile_path(ctx, found)
    assert path is not None
    data = path.read_bytes()
    if not data:
        raise ContextError(f"the Dockerfile ({found}) cannot be empty")
    return data.decode("utf-8", errors="surrogateescape")


def remove_build_files(ctx: Path, dockerfile: str | None = None) -> None:
    """removeDockerfile: once the Dockerfile is read, drop .dockerignore and the Dockerfile
    from the context when .dockerignore lists them (so COPY cannot copy them)."""
    matcher = load_dockerignore(ctx)
    if matcher is None:
        return
    for name in (DOCKERIGNORE, clean((dockerfile or DEFAULT_DOCKERFILE).lstrip("/"))):
        if not matcher.matches(name):
            continue
        parent = securejoin.resolve(str(ctx), os.path.dirname(name))  # scoped, never out
        path = Path(parent, os.path.basename(name))
        if path.is_symlink() or path.is_file():
            path.unlink()
