"""cp, diff, export, commit: a container's filesystem from the outside.

`docker cp` works as docker's archive package does: the daemon speaks tar (GET/PUT
/containers/{id}/archive, with the path's stat in X-Docker-Container-Path-Stat), and the
client decides, from what exists on each side, which directory to extract into and under
which name the copied entry lands (PrepareArchiveCopy):

    destination exists, a directory   → extract into it, names unchanged
    destination exists, a file        → a directory source is an error; a file is renamed
    destination missing               → extract into its parent, renamed to its base name
                                        (a missing "dir/" for a file source is an error)
"""

from __future__ import annotations

import os
import sys

from dockyard.cli.flags import Command, CommandError, Flag
from dockyard.client.api import APIError, quote

MODE_DIR = 1 << 31          # Go's os.FileMode bits, as the stat header carries them
MODE_SYMLINK = 1 << 27
MODE_DEVICE = 1 << 26
MODE_PIPE = 1 << 25
MODE_SOCKET = 1 << 24
MODE_CHARDEV = 1 << 21
MODE_IRREGULAR = 1 << 19

# -- paths, as docker's archive package splits them -------------------------------------------


def split_cp_arg(arg: str) -> tuple[str, str]:
    """(container, path); a local path with a colon must start with / or ."""
    if arg.startswith("/"):
        return "", arg
    ctr, sep, path = arg.partition(":")
    if not sep or ctr.startswith("."):
        return "", arg
    return ctr, path


def specifies_current_dir(path: str) -> bool:
    return os.path.basename(path) == "." and (path == "." or path.endswith("/."))


def has_trailing_sep(path: str) -> bool:
    return path.endswith("/")


def asserts_directory(path: str) -> bool:
    return has_trailing_sep(path) or specifies_current_dir(path)


def preserve_trailing(cleaned: str, original: str) -> str:
    """PreserveTrailingDotOrSeparator."""
    if specifies_current_dir(original) and not specifies_current_dir(cleaned):
        cleaned = cleaned.rstrip("/") + "/."
    if has_trailing_sep(original) and not has_trailing_sep(cleaned):
        cleaned += "/"
    return cleaned


def split_dir_entry(path: str) -> tuple[str, str]:
    """SplitPathDirEntry: ("/a", "b") for /a/b, ("/a/b", ".") for /a/b/."""
    cleaned = os.path.normpath(path) if path else "."
    if cleaned.startswith("//"):
        cleaned = "/" + cleaned.lstrip("/")
    if specifies_current_dir(path):
        cleaned += "/."
    return os.path.dirname(cleaned) or ".", os.path.basename(cleaned) or cleaned  # Base("/")


def rebase_name(path: str, resolved: str) -> tuple[str, str]:
    """GetRebaseName: the resolved path with the original's trailing ./ kept, and the name
    the entry must take when a link resolution changed its base name."""
    if specifies_current_dir(path) and not specifies_current_dir(resolved):
        resolved += "/."
    if has_trailing_sep(path) and not has_trailing_sep(resolved):
        resolved += "/"
    base = os.path.basename(os.path.normpath(path)) if path else ""
    rbase = os.path.basename(os.path.normpath(resolved))
    if specifies_current_dir(path):
        base = "."
    if specifies_current_dir(resolved):
        rbase = "."
    return resolved, (base if base != rbase else "")


def rebase(name: str, old: str, new: str) -> str:
    if old == new or not old:
        return name
    if name == old or name.startswith(old + "/"):
        return new + name[len(old):]
    return name


class CopyInfo:
    def __init__(self, path: str, exists: bool = False, is_dir: bool = False,
                 rebase: str = "") -> None:
        self.path, self.exists, self.is_dir, self.rebase = path, exists, is_dir, rebase


def prepare_copy(src: CopyInfo, dst: CopyInfo) -> tuple[str, str, str]:
    """PrepareArchiveCopy: (directory to extract into, old base, new base)."""
    dst_dir, dst_base = split_dir_entry(dst.path)
    _, src_base = split_dir_entry(src.path)
    if dst.exists and dst.is_dir:
        return dst.path, src.rebase or src_base, src.rebase or src_base
    if dst.exists and src.is_dir:
        raise CommandError("cannot copy directory")
    if not dst.exists and not src.is_dir and asserts_directory(dst.path):
        raise CommandError("no such directory")
    return dst_dir, src.rebase or src_base, dst_base


def _go_error(e: OSError, call: str) -> CommandError:
    return CommandError(f"{call} {e.filename}: {(e.strerror or str(e)).lower()}")


def _abs(path: str) -> str:
    return preserve_trailing(os.path.abspath(path), path)


# -- cp ----------------------------------------------------------------------------------------

CP = Command("cp", "[OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n\tdockyard cp [OPTIONS] "
             "SRC_PATH|- CONTAINER:DEST_PATH",
             "Copy files/folders between a container and the local filesystem",
             [Flag("a", "archive", bool, help="Archive mode (copy all uid/gid information)"),
              Flag("L", "follow-link", bool, help="Always follow symbol link in SRC_PATH"),
              Flag("q", "quiet", bool,
                   help="Suppress progress output during copy. Progress\noutput is "
                        "automatically suppressed if no terminal\nis attached")], 2, 2)


def cp(cli, argv: list[str], name: str = "cp") -> int:
    opts, (source, dest) = CP.parse(argv)
    if not source:
        raise CommandError("source can not be empty")
    if not dest:
        raise CommandError("destination can not be empty")
    quiet = opts.quiet if "quiet" in opts.given else not cli.out.isatty()
    src_ctr, src_path = split_cp_arg(source)
    dst_ctr, dst_path = split_cp_arg(dest)
    if src_ctr and dst_ctr:
        raise CommandError("copying between containers is not supported")
    if src_ctr:
        return copy_from(cli, src_ctr, src_path, dst_path, opts.follow_link, quiet)
    if dst_ctr:
        return copy_to(cli, dst_ctr, src_path, dst_path, opts.follow_link, opts.archive, quiet)
    raise CommandError("must specify at least one container source")


cp.spec = CP


def stat_path(cli, ctr: str, path: str) -> dict:
    """HEAD /containers/{id}/archive: the stat header, decoded."""

    from dockyard.client.api import error_from

    resp = cli.client.raw("HEAD", cli.client.url(f"/containers/{quote(ctr)}/archive",
                                                  {"path": path}))
    resp.close()
    if resp.status >= 400:
        if resp.status == 404 and "x-docker-container-path-stat" not in resp.headers:
            raise APIError(404, f"Could not find the file {path} in container {ctr}")
        raise error_from(resp)
    return _stat_header(resp.headers)


def _stat_header(headers: dict) -> dict:
    import base64

    from dockyard.runtime import jsonio

    raw = headers.get("x-docker-container-path-stat", "")
    try:
        return jsonio.loads(base64.b64decode(raw)) if raw else {}
    except ValueError:
        return {}


def validate_output_path(path: str) -> None:
    """command.ValidateOutputPath."""
    import stat as st

    parent = os.path.dirname(os.path.normpath(path))
    if parent not in ("", ".") and not os.path.exists(parent):
        raise CommandError(f'invalid output path: directory "{parent}" does not exist')
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return
    except OSError as e:
        raise _go_error(e, "stat") from None
    if not (st.S_ISDIR(mode) or st.S_ISREG(mode)):
        raise CommandError(f'invalid output path: "{path}" must be a directory or a regular '
                           f"file: {_mode_problem_local(mode)}")


def _mode_problem_local(mode: int) -> str:
    import stat as st

    if st.S_ISLNK(mode):
        return "got a symbolic link"
    if st.S_ISFIFO(mode):
        return "got a named pipe"
    if st.S_ISSOCK(mode):
        return "got a socket"
    return "got a device"


def copy_from(cli, ctr: str, src: str, dst: str, follow: bool, quiet: bool) -> int:
    if dst != "-":
        dst = _abs(dst)
        validate_output_path(dst)
    rebase_to = ""
    if follow:
        try:
            info = stat_path(cli, ctr, src)
        except APIError:
            info = {}
        if info.get("mode", 0) & MODE_SYMLINK:
            target = info.get("linkTarget", "")
            if not target.startswith("/"):
                target = os.path.join(split_dir_entry(src)[0], target)
            src, rebase_to = rebase_name(src, os.path.normpath(target))
    resp = cli.client.request("GET", f"/containers/{quote(ctr)}/archive", {"path": src})
    try:
        if dst == "-":
            out = sys.stdout.buffer
            while chunk := resp.read_chunk():
                out.write(chunk)
            out.flush()
            return 0
        stat = _stat_header(resp.headers)
        src_info = CopyInfo(src, True, bool(stat.get("mode", 0) & MODE_DIR), rebase_to)
        dst_info = destination_info(dst)
        into, old, new = prepare_copy(src_info, dst_info)
        renames = [(old, new)]
        if rebase_to:  # the archive names the link's target: first back to the link's name
            renames.insert(0, (split_dir_entry(src)[1], rebase_to))
        size = untar(_Body(resp), into, renames)
    finally:
        resp.close()
    if not quiet:
        from dockyard.cli.formatting import human_size

        shown = size if src_info.is_dir else stat.get("size", size)
        cli.err.write(f"Successfully copied {human_size(shown)} to {dst}\n")
    return 0


def destination_info(path: str) -> CopyInfo:
    """CopyInfoDestinationPath: follows links at the destination, checks its parent."""
    for _ in range(64):
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            parent = split_dir_entry(path)[0]
            try:
                os.lstat(parent)
            except OSError as e:
                raise _go_error(e, "lstat") from None
            return CopyInfo(path)
        except OSError as e:
            raise _go_error(e, "lstat") from None
        import stat as stmod

        if not stmod.S_ISLNK(st.st_mode):
            return CopyInfo(path, True, stmod.S_ISDIR(st.st_mode))
        target = os.readlink(path)
        if not target.startswith("/"):
            target = os.path.join(split_dir_entry(path)[0], target)
        path = preserve_trailing(os.path.normpath(target), path)
    raise CommandError(f"too many symlinks in {path}")


class _Body:
    """A response body as a file for tarfile's stream mode."""

    def __init__(self, resp) -> None:
        self.resp, self.buf, self.count = resp, b"", 0

    def read(self, n: int = -1) -> bytes:
        while (n < 0 or len(self.buf) < n) and (chunk := self.resp.read_chunk()):
            self.buf += chunk
        data, self.buf = (self.buf, b"") if n < 0 else (self.buf[:n], self.buf[n:])
        self.count += len(data)
        return data


def untar(source, into: str, renames: list[tuple[str, str]]) -> int:
    """Untar with NoLchown and NoOverwriteDirNonDir, each (old, new) of `renames` applied
    to the names in turn; never a write outside `into`. The bytes of regular files."""
    import tarfile

    total = 0
    root = os.path.realpath(into)
    with tarfile.open(fileobj=source, mode="r|*") as tar:
        tar.chown = lambda *a, **k: None  # NoLchown: the files are the caller's
        for m in tar:
            name = m.name.lstrip("/")
            for old, new in renames:
                name = rebase(name, old, new)
            target = os.path.normpath(os.path.join(root, name))
            if target != root and not target.startswith(root.rstrip("/") + "/"):
                raise CommandError(f"invalid archive entry {m.name!r}: outside {into}")
            if m.islnk():
                link = m.linkname.lstrip("/")
                for old, new in renames:
                    link = rebase(link, old, new)
                m.linkname = link
                if not os.path.normpath(os.path.join(root, link)).startswith(root):
                    raise CommandError(f"invalid hard link {m.linkname!r}: outside {into}")
            _no_overwrite_dir_non_dir(target, m)
            m.name = name
            tar.extract(m, root, set_attrs=True, numeric_owner=True, **_filter())
            if m.isreg():
                total += m.size
    return total


def _filter() -> dict:
    import tarfile

    return {"filter": "fully_trusted"} if hasattr(tarfile, "fully_trusted_filter") else {}


def _no_overwrite_dir_non_dir(target: str, m) -> None:
    try:
        is_dir = os.path.isdir(target) and not os.path.islink(target)
    except OSError:
        return
    if not os.path.lexists(target):
        return
    if is_dir and not m.isdir():
        raise CommandError(f"cannot overwrite directory {target!r} with non-directory "
                           f"{m.name!r}")
    if not is_dir and m.isdir():
        raise CommandError(f"cannot overwrite non-directory {target!r} with directory "
                           f"{m.name!r}")


def _mode_problem(mode: int) -> str | None:
    if mode & MODE_DIR or not mode & (MODE_SYMLINK | MODE_DEVICE | MODE_PIPE | MODE_SOCKET
                                      | MODE_CHARDEV | MODE_IRREGULAR):
        return None
    if mode & MODE_SYMLINK:
        return "got a symbolic link"
    if mode & MODE_PIPE:
        return "got a named pipe"
    if mode & MODE_SOCKET:
        return "got a socket"
    if mode & (MODE_DEVICE | MODE_CHARDEV):
        return "got a device"
    return "got an irregular file"


def copy_to(cli, ctr: str, src: str, dst: str, follow: bool, copy_ids: bool,
            quiet: bool) -> int:
    if src != "-":
        src = _abs(src)
    dst_info = CopyInfo(dst)
    try:
        st = stat_path(cli, ctr, dst)
        if st.get("mode", 0) & MODE_SYMLINK:
            target = st.get("linkTarget", "")
            if not target.startswith("/"):
                target = os.path.join(split_dir_entry(dst)[0], target)
            dst_info.path = target
            st = stat_path(cli, ctr, target)
        problem = _mode_problem(st.get("mode", 0))
        if problem:
            raise CommandError(f'destination "{ctr}:{dst}" must be a directory or a regular '
                               f"file: {problem}")
        dst_info.exists, dst_info.is_dir = True, bool(st.get("mode", 0) & MODE_DIR)
    except APIError:
        pass  # the parent may exist: the extraction says
    query = {"path": None, "noOverwriteDirNonDir": True, "copyUIDGID": copy_ids or None}
    if src == "-":
        if not dst_info.is_dir:
            raise CommandError(f'destination "{ctr}:{dst}" must be a directory')
        query["path"] = dst_info.path
        _put(cli, ctr, query, sys.stdin.buffer)
        return 0
    src_info = source_info(src, follow)
    into, _, new = prepare_copy(src_info, dst_info)  # the tar is made with its final name
    query["path"] = into
    size = _put_tar(cli, ctr, query, src_info.path, new)
    if not quiet:
        from dockyard.cli.formatting import human_size

        cli.err.write(f"Successfully copied {human_size(size)} to {ctr}:{dst_info.path}\n")
    return 0


def source_info(path: str, follow: bool) -> CopyInfo:
    """CopyInfoSourcePath: the local source, its links resolved as docker resolves them."""
    if follow:
        try:
            resolved = os.path.realpath(path, strict=True)
        except OSError as e:
            raise _go_error(e, "lstat") from None
        resolved, rebase_to = rebase_name(path, resolved)
    else:
        head, base = os.path.split(path)
        resolved = os.path.join(os.path.realpath(head or "."), base)
        rebase_to = ""
        if has_trailing_sep(path) and os.path.basename(path.rstrip("/")) != \
                os.path.basename(resolved.rstrip("/")):
            rebase_to = os.path.basename(path.rstrip("/"))
    try:
        import stat as stmod

        st = os.lstat(resolved)
    except OSError as e:
        raise _go_error(e, "lstat") from None
    return CopyInfo(resolved, True, stmod.S_ISDIR(st.st_mode), rebase_to)


def _put(cli, ctr: str, query: dict, source) -> None:
    resp = cli.client.request("PUT", f"/containers/{quote(ctr)}/archive", query,
                              headers={"Content-Type": "application/x-tar"}, source=source)
    resp.read()
    resp.close()


def _put_tar(cli, ctr: str, query: dict, path: str, arcname: str) -> int:
    """Tar `path` as `arcname` on a thread, streamed through a pipe; the bytes sent."""
    import tarfile
    import threading

    r, w = os.pipe()
    reader, writer = os.fdopen(r, "rb"), os.fdopen(w, "wb")
    sizes = [0]
    failure: list[BaseException] = []
    src_dir, src_base = split_dir_entry(path)

    def produce() -> None:
        try:
            with tarfile.open(fileobj=writer, mode="w|", format=tarfile.PAX_FORMAT) as tar:
                def count(info):
                    if info.isreg():
                        sizes[0] += info.size
                    return info
                tar.add(os.path.join(src_dir, src_base), arcname=arcname, filter=count)
        except BaseException as e:
            failure.append(e)
        finally:
            try:
                writer.close()
            except OSError:
                pass

    t = threading.Thread(target=produce, daemon=True)
    t.start()
    try:
        _put(cli, ctr, query, reader)
    finally:
        reader.close()
        t.join(5)
    if failure and not isinstance(failure[0], BrokenPipeError):
        raise failure[0]
    return sizes[0]


# -- diff, export, commit ----------------------------------------------------------------------

DIFF = Command("diff", "CONTAINER",
               "Inspect changes to files or directories on a container's filesystem",
               [], 1, 1)


def diff(cli, argv: list[str], name: str = "diff") -> int:
    _, (ctr,) = DIFF.parse(argv)
    kinds = {0: "C", 1: "A", 2: "D"}
    for c in cli.client.get(f"/containers/{quote(ctr)}/changes") or []:
        cli.out.write(f"{kinds.get(c.get('Kind'), '?')} {c.get('Path', '')}\n")
    return 0


diff.spec = DIFF

EXPORT = Command("export", "[OPTIONS] CONTAINER",
                 "Export a container's filesystem as a tar archive",
                 [Flag("o", "output", str, help="Write to a file, instead of STDOUT")], 1, 1)


def export(cli, argv: list[str], name: str = "export") -> int:
    opts, (ctr,) = EXPORT.parse(argv)
    if not opts.output and sys.stdout.isatty():
        raise CommandError("cowardly refusing to save to a terminal. Use the -o flag or "
                           "redirect")
    if opts.output:
        parent = os.path.dirname(os.path.normpath(opts.output))
        try:
            os.stat(parent or ".")
        except OSError as e:
            raise CommandError("failed to export container: invalid output path: "
                               f"{_go_error(e, 'stat')}") from None
    save_response(cli.client.request("GET", f"/containers/{quote(ctr)}/export"), opts.output)
    return 0


def save_response(resp, output: str | None) -> None:
    """A streamed answer (export, save) into `output` whole or not at all, or to stdout."""
    try:
        if output:
            _write_atomically(resp, output)
        else:
            out = sys.stdout.buffer
            while chunk := resp.read_chunk():
                out.write(chunk)
            out.flush()
    finally:
        resp.close()


export.spec = EXPORT


def _write_atomically(resp, path: str) -> None:
    """As docker's atomic writer: a 0600 temporary file beside it, renamed over it."""
    import tempfile

    fd, tmp = tempfile.mkstemp(prefix=".tmp-" + os.path.basename(path),
                               dir=os.path.dirname(os.path.abspath(path)))
    try:
        with os.fdopen(fd, "wb") as f:
            while chunk := resp.read_chunk():
                f.write(chunk)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def parse_repository(ref: str) -> tuple[str, str]:
    """(repository, tag) as reference.ParseNormalizedNamed reads a commit's REPOSITORY[:TAG],
    with its errors: a first component with upper case is a registry host to it."""
    from dockyard.cli.references import is_valid

    first, slash, rest = ref.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"
                  or first.lower() != first):
        domain, remainder = first, rest
    else:
        domain, remainder = "docker.io", ref
        if "/" not in remainder:
            remainder = "library/" + remainder
    remote = remainder.partition(":")[0]
    if remote.lower() != remote:
        raise CommandError(f"invalid reference format: repository name ({remote}) must be "
                           "lowercase")
    if "@" in ref or not is_valid(f"{domain.lower()}/{remainder}"):
        raise CommandError("invalid reference format")
    name, _, tag = remainder.partition(":")
    if tag and (len(tag) > 128 or tag[0] in ".-" or not all(
            c.isascii() and (c.isalnum() or c in "_.-") for c in tag)):
        raise CommandError("invalid reference format")
    return f"{domain}/{name}", tag


COMMIT = Command("commit", "[OPTIONS] CONTAINER [REPOSITORY[:TAG]]",
                 "Create a new image from a container's changes",
                 [Flag("a", "author", str,
                       help='Author (e.g., "John Hannibal Smith\n<hannibal@a-team.com>")'),
                  Flag("c", "change", list, help="Apply Dockerfile instruction to the "
                       "created image"),
                  Flag("m", "message", str, help="Commit message"),
                  Flag("p", "pause", bool, default=True,
                       help="Pause container during commit (default true)")], 1, 2)


def commit(cli, argv: list[str], name: str = "commit") -> int:
    opts, args = COMMIT.parse(argv)
    ctr, ref = args[0], (args[1] if len(args) > 1 else "")
    query: dict = {"container": ctr, "repo": None, "tag": None,
                   "comment": opts.message or None, "author": opts.author or None,
                   "pause": opts.pause}
    if ref:
        repo, tag = parse_repository(ref)
        query["repo"], query["tag"] = repo, tag or None
    target = cli.client.url("/commit", query)
    target += "".join(f"&changes={quote(c)}" for c in opts.change)
    resp = cli.client.raw("POST", target, b"{}", {"Content-Type": "application/json"})
    if resp.status >= 400:
        from dockyard.client.api import error_from

        raise error_from(resp)
    from dockyard.runtime import jsonio

    data = resp.read()
    resp.close()
    cli.out.write((jsonio.loads(data) or {}).get("Id", "") + "\n")
    return 0


commit.spec = COMMIT
