"""COPY and ADD as the classic builder does them (moby builder/dockerfile/copy.go), writing
into a mounted snapshot that is hostile (its symlinks may point anywhere).

    resolve_sources    the sources in the context: a leading "/" or "./" dropped; Go
                       filepath.Match wildcards ("*" and "?" never cross "/", no "**")
                       matched against every path of the context, in lexical order; ".."
                       stops at the context root ("../x" is "x")
    copy               sources into the destination: a directory's contents, a file (into
                       the destination directory when it ends in "/" or is one), a local
                       tar unpacked when ADD
    fetch_url          ADD <url>
    resolve_chown      --chown=user:group against the destination's /etc/passwd and group
    make_dirs          WORKDIR's directory, made inside the root
    content_digest     what a COPY reads from the context, hashed (the cache key's part)

Reading the context: a source that is a symlink is followed *inside the context*
(securejoin), as moby's FollowSymlinkInScope does; below a copied directory, symlinks are
copied as symlinks and hard links between copied files kept. Writing: every path in the
destination is walked with descriptors from its root (safepath.Root), a symlink met on the
way followed as if the root were "/", the last component made with O_NOFOLLOW; so
`/etc -> /` in the snapshot leads back into the snapshot, never to the host.

Ownership: everything copied, and each directory made on the way, belongs to the --chown
identity, else to 0:0 (Docker: "All new files and directories are created with a UID and
GID of 0"). Modes are the sources' unless --chmod; mtimes are kept.
"""

from __future__ import annotations

import email.utils
import hashlib
import os
import shutil
import stat
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Iterator, Sequence
from email.message import Message
from pathlib import Path

from dockyard.build import archives
from dockyard.build.dockerignore import IgnoreMatcher, clean, filepath_match, has_wildcards
from dockyard.build.filedigests import FileDigests
from dockyard.image.errors import InvalidArgument
from dockyard.image.layers.safepath import Root
from dockyard.runtime.linux import securejoin

CHUNK = 1 << 20
Parts = tuple[str, ...]


class CopyError(Exception):
    """A COPY/ADD that cannot be done, in moby's words (the executor prefixes
    "COPY failed: ")."""


def _trim(pattern: str) -> str:
    """A source path relative to the context root, cleaned from "/": "../../x" is "x", as
    both builders scope it (the classic one answers `COPY ../../x` with "stat x: file does
    not exist")."""
    return clean("/" + pattern).lstrip("/") or "."


def resolve_sources(ctx: Path, patterns: Sequence[str], *, excludes: Iterable[str] = (),
                    follow_links: bool = True) -> list[Path]:
    """The context paths the sources name, each as `ctx / relative path` (a symlink stays
    a symlink here; `copy` follows it). CopyError when a source leaves the context, names
    nothing, or a wildcard matches nothing."""
    skip = IgnoreMatcher(excludes)
    found: list[Path] = []
    for pattern in patterns:
        rel = _trim(pattern)
        if has_wildcards(rel):
            matches = [p for p in _walk_names(ctx) if filepath_match(rel, p)]
            if not matches:
                raise CopyError("no source files were specified")
        else:
            if not _exists(ctx, rel, follow_links):
                raise CopyError("file not found in build context or excluded by "
                                f".dockerignore: stat {rel}: file does not exist")
            matches = [rel]
        found.extend(ctx / p if p != "." else ctx for p in matches if not skip.matches(p))
    return found


def _walk_names(ctx: Path) -> Iterator[str]:
    """Every path below `ctx`, relative, in filepath.Walk's lexical order; not following
    symlinks."""
    def walk(directory: str, rel: str) -> Iterator[str]:
        for entry in sorted(os.scandir(directory), key=lambda e: e.name):
            path = f"{rel}/{entry.name}" if rel else entry.name
            yield path
            if entry.is_dir(follow_symlinks=False):
                yield from walk(entry.path, path)
    return walk(str(ctx), "")


def _exists(ctx: Path, rel: str, follow_links: bool) -> bool:
    return os.path.lexists(_in_context(ctx, rel, follow_links))


def _in_context(root: Path, rel: str, follow_links: bool) -> str:
    """The host path of `rel`, its directories' symlinks followed inside `root`; the last
    component's too when `follow_links`."""
    if follow_links or rel in (".", ""):
        return securejoin.resolve(str(root), rel)
    return os.path.join(securejoin.resolve(str(root), os.path.dirname(rel)),
                        os.path.basename(rel))


def source_path(src_root: Path, source: Path, follow_links: bool) -> str:
    """The host path to read `source` from: a symlink followed inside `src_root`."""
    rel = _trim(os.path.relpath(source, src_root))
    return _in_context(src_root, rel, follow_links)


def normalize_dest(dest: str, workdir: str) -> tuple[Parts, bool]:
    """(components below "/", is a directory) of a destination: relative to WORKDIR, a
    trailing "/" (or "." as BuildKit accepts) meaning a directory."""
    is_dir = dest.endswith("/") or dest == "." or dest.endswith("/.")
    if not dest.startswith("/"):
        dest = f"/{workdir}/{dest}"
    parts = clean(dest).strip("/")
    return (tuple(parts.split("/")) if parts else ()), is_dir


class _Writer:
    """Makes entries under a destination root, with descriptors (see the module's text)."""

    def __init__(self, root: Path, owner: tuple[int, int], chmod: int | None) -> None:
        self.root_path, self.owner, self.chmod = root, owner, chmod
        self.as_root = os.geteuid() == 0
        self.root = Root(root, self._mkdir)
        self.links: dict[tuple[int, int], Parts] = {}
        self.dir_times: list[tuple[Parts, int]] = []

    def _mkdir(self, parent: int, name: str, real: Parts) -> None:
        os.mkdir(name, 0o755, dir_fd=parent)
        os.chmod(name, 0o755, dir_fd=parent, follow_symlinks=False)
        if self.as_root:
            os.chown(name, *self.owner, dir_fd=parent, follow_symlinks=False)

    def dir(self, parts: Parts) -> int:
        try:
            found = self.root.dir(parts, True)
        except InvalidArgument as e:
            raise CopyError(f"cannot copy to /{'/'.join(parts)}: {e}") from None
        assert found is not None
        return found[0]

    def real(self, parts: Parts) -> Parts:
        """`parts` with its symlinks resolved inside the root (the destination's own name
        is followed, as moby's FollowSymlinkInScope follows it)."""
        host = securejoin.resolve(str(self.root_path), "/".join(parts))
        inside = securejoin.relative(str(self.root_path), host) or "/"
        return tuple(c for c in inside.split("/") if c)

    def is_dir(self, parts: Parts) -> bool:
        if not parts:
            return True
        try:
            found = self.root.dir(parts[:-1], False)
        except InvalidArgument:
            return False
        if found is None:
            return False
        try:
            st = os.stat(parts[-1], dir_fd=found[0], follow_symlinks=False)
        except FileNotFoundError:
            return False
        return stat.S_ISDIR(st.st_mode)

    def put(self, parts: Parts, src: str, st: os.stat_result, *, top: bool = False) -> None:
        """One entry read from host path `src` (lstat `st`) at `parts`."""
        if not parts:  # the root itself: only a directory can go there
            self.dir(())
            return
        parent, name = self.dir(parts[:-1]), parts[-1]
        key = (st.st_dev, st.st_ino)
        if stat.S_ISDIR(st.st_mode):
            if not top and not self._is_real_dir(parent, name):
                self._clear(parent, name)  # a file or symlink there is replaced, as by tar
            self.dir(parts)  # an existing directory is merged into
            if not top:
                self._set(parent, name, st)
                self.dir_times.append((parts, int(st.st_mtime)))
            return
        self._clear(parent, name)
        if stat.S_ISREG(st.st_mode) and st.st_nlink > 1 and key in self.links:
            first = self.links[key]
            os.link(first[-1], name, src_dir_fd=self.dir(first[:-1]), dst_dir_fd=parent,
                    follow_symlinks=False)
            return
        if stat.S_ISREG(st.st_mode):
            self._write_file(parent, name, src)
            if st.st_nlink > 1:
                self.links[key] = parts
        elif stat.S_ISLNK(st.st_mode):
            os.symlink(os.readlink(src), name, dir_fd=parent)
        else:
            return  # sockets, fifos, devices: not copied
        self._set(parent, name, st)
        self.root.release()

    @staticmethod
    def _is_real_dir(parent: int, name: str) -> bool:
        try:
            return stat.S_ISDIR(os.stat(name, dir_fd=parent, follow_symlinks=False).st_mode)
        except FileNotFoundError:
            return False

    def _clear(self, parent: int, name: str) -> None:
        try:
            st = os.stat(name, dir_fd=parent, follow_symlinks=False)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(st.st_mode):
            shutil.rmtree(name, dir_fd=parent)
        else:
            os.unlink(name, dir_fd=parent)
        if stat.S_ISDIR(st.st_mode) or stat.S_ISLNK(st.st_mode):
            self.root.forget()  # a cached directory may be gone (released after this entry)

    def _write_file(self, parent: int, name: str, src: str) -> None:
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                     0o600, dir_fd=parent)
        with os.fdopen(fd, "wb") as out, open(os.open(src, os.O_RDONLY | os.O_NOFOLLOW |
                                                       os.O_CLOEXEC), "rb") as f:
            shutil.copyfileobj(f, out, CHUNK)

    def _set(self, parent: int, name: str, st: os.stat_result) -> None:
        mtime = (st.st_atime_ns, st.st_mtime_ns)
        if stat.S_ISLNK(st.st_mode):
            if self.as_root:
                os.chown(name, *self.owner, dir_fd=parent, follow_symlinks=False)
            os.utime(name, ns=mtime, dir_fd=parent, follow_symlinks=False)
            return
        fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
        try:
            proc = f"/proc/self/fd/{fd}"
            if self.as_root:
                os.chown(proc, *self.owner)
            os.chmod(proc, self.chmod if self.chmod is not None else st.st_mode & 0o7777)
        finally:
            os.close(fd)
        os.utime(name, ns=mtime, dir_fd=parent, follow_symlinks=False)

    def finish(self) -> None:
        for parts, mtime in reversed(self.dir_times):
            found = self.root.dir(parts[:-1], False)
            if found is not None:
                os.utime(parts[-1], (mtime, mtime), dir_fd=found[0], follow_symlinks=False)
        self.root.close()


def walk_tree(src: str, skip: IgnoreMatcher) -> Iterator[tuple[Parts, str, os.stat_result]]:
    """The entries below directory `src`, parents first, not following symlinks; `skip`
    matches paths relative to `src`."""
    def walk(directory: str, rel: Parts) -> Iterator[tuple[Parts, str, os.stat_result]]:
        for entry in sorted(os.scandir(directory), key=lambda e: e.name):
            parts = (*rel, entry.name)
            if skip.matches("/".join(parts)):
                continue
            st = entry.stat(follow_symlinks=False)
            yield parts, entry.path, st
            if stat.S_ISDIR(st.st_mode):
                yield from walk(entry.path, parts)
    return walk(src, ())


def copy(sources: Sequence[Path], src_root: Path, dest_root: Path, dest: str, *,
         workdir: str = "/", chown: tuple[int, int] | None = None, chmod: int | None = None,
         parents: bool = False, excludes: Iterable[str] = (), add_archives: bool = False,
         follow_links: bool = True, instruction: str = "COPY") -> None:
    """COPY/ADD `sources` (from resolve_sources, inside `src_root`) to `dest` in the root
    file system `dest_root`. `parents`: each source keeps its path relative to the context
    below the destination (BuildKit's --parents). `add_archives`: ADD's unpacking of local
    tar archives."""
    dest_parts, dest_is_dir = normalize_dest(dest, workdir)
    if len(sources) > 1 and not dest_is_dir:
        raise CopyError(f"When using {instruction} with more than one source file, the "
                        "destination must be a directory and end with a /")
    skip = IgnoreMatcher(excludes)
    writer = _Writer(dest_root, chown or (0, 0), chmod)
    try:
        for source in sources:
            src = source_path(src_root, source, follow_links)
            rel = _trim(os.path.relpath(source, src_root))
            name = os.path.basename(rel) if rel != "." else ""
            target = dest_parts
            if parents and rel != ".":
                target = (*dest_parts, *clean(rel).split("/")[:-1])
                if os.path.isdir(src):
                    target = (*target, name)  # --parents: dir/ keeps its own name
            _copy_one(writer, src, name, target, dest_is_dir or parents, skip, add_archives)
    finally:
        writer.finish()


def _copy_one(writer: _Writer, src: str, name: str, target: Parts, into: bool,
              skip: IgnoreMatcher, add_archives: bool) -> None:
    try:
        st = os.lstat(src)
    except FileNotFoundError:
        raise CopyError(f"file not found in build context or excluded by .dockerignore: "
                        f"stat {name}: file does not exist") from None
    if stat.S_ISDIR(st.st_mode):
        real = writer.real(target)
        writer.dir(real)
        for parts, path, entry in walk_tree(src, skip):
            writer.put((*real, *parts), path, entry)
        return
    if add_archives and stat.S_ISREG(st.st_mode) and archives.is_archive(src):
        real = writer.real(target)
        fd = writer.dir(real)
        try:
            archives.extract_path(src, Path(f"/proc/self/fd/{fd}"))
        except archives.ArchiveError as e:
            raise CopyError(f"failed to extract {name}: {e}") from e
        return
    real = writer.real(target)
    if into or writer.is_dir(real):
        real = writer.real((*real, name))
    writer.put(real, src, st, top=True)


def make_dirs(root: Path, path: str, owner: tuple[int, int] = (0, 0)) -> None:
    """mkdir -p of `path` inside `root` (0755, `owner`), symlinks scoped to the root: how
    WORKDIR makes its directory."""
    writer = _Writer(root, owner, None)
    try:
        writer.dir(writer.real(normalize_dest(path, "/")[0]))
    finally:
        writer.finish()


def resolve_chown(spec: str, rootfs: Path) -> tuple[int, int]:
    """--chown=user[:group] (names or numbers) as parseChownFlag: the group defaults to the
    *user string*, names are looked up in the destination's /etc/passwd and /etc/group
    (read inside `rootfs`)."""
    parts = spec.split(":")
    if len(parts) > 2:
        raise CopyError(f"invalid chown string format: {spec}")
    user, group = (parts[0], parts[0]) if len(parts) == 1 else (parts[0], parts[1])
    uid = _lookup(user, rootfs, "passwd", 2, "user")
    gid = _lookup(group, rootfs, "group", 2, "group")
    return uid, gid


def _lookup(name: str, rootfs: Path, db: str, field: int, what: str) -> int:
    if name.isdigit():
        return int(name)
    intro = f"can't find {'uid' if what == 'user' else 'gid'} for {what} {name}"
    try:
        with open(securejoin.resolve(str(rootfs), f"/etc/{db}"), encoding="utf-8",
                  errors="replace") as f:
            lines = f.read().splitlines()
    except OSError as e:
        raise CopyError(f"{intro}: open /etc/{db}: {e.strerror.lower()}") from e
    for line in lines:
        cols = line.split(":")
        if len(cols) > field and cols[0] == name and cols[field].isdigit():
            return int(cols[field])
    raise CopyError(f"{intro}: no such {what}: {name}")


def fetch_url(url: str, dest_root: Path, dest: str, *, workdir: str = "/",
              chown: tuple[int, int] | None = None, chmod: int | None = None,
              timeout: float = 60.0) -> None:
    """ADD <url> <dest>: downloaded as is (never unpacked), mode 0600 unless --chmod, mtime
    from Last-Modified; into a directory (dest ending in "/") under the URL path's last
    name, else Content-Disposition's filename (getFilenameForDownload)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        resp = opener.open(urllib.request.Request(url), timeout=timeout)
    except urllib.error.HTTPError as e:
        raise CopyError(f"failed to GET {url} with status {e.code} {e.reason}") from e
    except OSError as e:
        raise CopyError(f"failed to GET {url}: {e}") from e
    dest_parts, dest_is_dir = normalize_dest(dest, workdir)
    writer = _Writer(dest_root, chown or (0, 0), chmod)
    try:
        with resp, tempfile.TemporaryDirectory(prefix="dockyard-add-") as tmpdir:
            real = writer.real(dest_parts)
            if dest_is_dir or writer.is_dir(real):  # into the directory, named for the URL
                real = writer.real((*real, _download_name(url, resp.headers)))
            tmp = os.path.join(tmpdir, "download")
            with open(tmp, "xb") as out:
                shutil.copyfileobj(resp, out, CHUNK)
            mtime = _last_modified(resp.headers.get("Last-Modified"))
            os.chmod(tmp, 0o600)
            os.utime(tmp, (mtime, mtime))
            writer.put(real, tmp, os.lstat(tmp), top=True)
    finally:
        writer.finish()


def _download_name(url: str, headers: Message) -> str:
    path = urllib.parse.urlsplit(url).path
    if path and not path.endswith("/"):
        name = os.path.basename(urllib.parse.unquote(path))
        if name:
            return name
    filename = headers.get_param("filename", header="content-disposition")
    if isinstance(filename, str) and filename and not filename.endswith("/"):
        return os.path.basename(filename)
    raise CopyError(f"cannot determine filename for source {url}")


def _last_modified(value: str | None) -> float:
    if value:
        try:
            return email.utils.parsedate_to_datetime(value).timestamp()
        except (TypeError, ValueError):
            pass
    return time.time()


def content_digest(ctx: Path, sources: Sequence[Path], *, excludes: Iterable[str] = (),
                   follow_links: bool = True, known: FileDigests | None = None) -> str:
    """sha256 over what a COPY of `sources` reads: each entry's path (relative to the
    context), type, permission bits, symlink target and content; not owners or times
    (BuildKit's content checksums leave mtimes out too). `known`: files' sha256 taken when
    the context was unpacked, used instead of reading a file that has not changed since."""
    skip = IgnoreMatcher(excludes)
    h = hashlib.sha256()
    for source in sources:
        rel = _trim(os.path.relpath(source, ctx))
        src = source_path(ctx, source, follow_links)
        st = os.lstat(src)
        _hash_entry(h, rel, src, st, known)
        if stat.S_ISDIR(st.st_mode):
            for parts, path, entry in walk_tree(src, skip):
                _hash_entry(h, "/".join((rel, *parts)), path, entry, known)
    return "sha256:" + h.hexdigest()


def _hash_entry(h: hashlib._Hash, rel: str, path: str, st: os.stat_result,
                known: FileDigests | None) -> None:
    kind = stat.S_IFMT(st.st_mode)
    h.update(f"{rel}\0{kind:o}\0{stat.S_IMODE(st.st_mode):o}\0".encode(errors="surrogateescape"))
    if stat.S_ISLNK(st.st_mode):
        h.update(os.readlink(path).encode(errors="surrogateescape") + b"\0")
    elif stat.S_ISREG(st.st_mode):
        digest = known.lookup(st) if known is not None else None
        if digest is None:
            fh = hashlib.sha256()
            with open(os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC), "rb") as f:
                for block in iter(lambda: f.read(CHUNK), b""):
                    fh.update(block)
            digest = fh.digest()
        h.update(digest)
    h.update(b"\n")
