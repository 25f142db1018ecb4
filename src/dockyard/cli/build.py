"""`dockyard build [OPTIONS] PATH | -`: docker's flags over the classic builder API.

    dockyard                                                  dockyardd
    PATH less .dockerignore ───────┐
    a Dockerfile from elsewhere ───┼─ tar (temp file) ── POST /build?t=…&dockerfile=… ──▶
    --secret files ────────────────┘   X-Registry-Config: config.json's credentials
                      ◀── {"stream": "Step 1/4 : FROM busybox\\n"} … {"aux": {"ID": …}}
    progress as BuildKit shows it (buildprogress), -q, --iidfile
    -o: POST /containers/create (never started) → GET /containers/{id}/export → DELETE

The context tar is buildcontext's: PATH less what .dockerignore excludes (the Dockerfile and
.dockerignore always sent), a Dockerfile from outside PATH (or `-f -`) carried in under a
generated name, or `-`: a tar or a Dockerfile on stdin.

Secrets: the classic API has no channel for them, so each `--secret id=ID,src=PATH` travels
in the context tar as `.dockyard-secrets/ID` (mode 0400, in a 0700 directory). The engine
takes that directory out of the context before anything else reads it — before .dockerignore
is applied and before any COPY/ADD — and mounts ID read-only for
`RUN --mount=type=secret,id=ID`. A context's own `.dockyard-secrets` is never sent.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

from dockyard.cli.flags import Command, CommandError, Flag, UsageError

PROGRESS_MODES = ("auto", "plain", "tty", "quiet")

BUILD = Command("build", "[OPTIONS] PATH | -", "Build an image from a Dockerfile", [
    Flag(None, "build-arg", list, help="Set build-time variables"),
    Flag("f", "file", str, help='Name of the Dockerfile (default: "PATH/Dockerfile")'),
    Flag(None, "force-rm", bool, help="Always remove intermediate containers"),
    Flag(None, "iidfile", str, help="Write the image ID to the file"),
    Flag(None, "label", list, help="Set metadata for an image"),
    Flag(None, "network", str, default="default",
         help='Set the networking mode for the RUN instructions during build (default '
              '"default")'),
    Flag(None, "no-cache", bool, help="Do not use cache when building the image"),
    Flag("o", "output", list,
         help='Output destination (format: "type=local,dest=path")'),
    Flag(None, "platform", str, default=os.environ.get("DOCKER_DEFAULT_PLATFORM") or None,
         help="Set target platform for build"),
    Flag(None, "progress", str, default=os.environ.get("BUILDKIT_PROGRESS") or "auto",
         help='Set type of progress output ("auto", "plain", "tty", "quiet")'),
    Flag(None, "pull", bool, help="Always attempt to pull a newer version of the image"),
    Flag("q", "quiet", bool, help="Suppress the build output and print image ID on success"),
    Flag(None, "rm", bool, default=True,
         help="Remove intermediate containers after a successful build (default true)"),
    Flag(None, "secret", list,
         help='Secret to expose to the build (format: "id=mysecret[,src=/local/secret]")'),
    Flag("t", "tag", list, help='Name and optionally a tag in the "name:tag" format'),
    Flag(None, "target", str, help="Set the target build stage to build"),
], min_args=1, max_args=1)


@dataclass(frozen=True)
class Secret:
    """`--secret`: a file (`src`) or an environment variable (`env`) named `id`."""

    id: str
    src: str = ""
    env: str = ""

    def read(self, environ) -> bytes:
        if self.env:
            if self.env not in environ:
                raise CommandError(f'secret {self.id}: environment variable "{self.env}" is '
                                   "not set")
            return environ[self.env].encode()
        try:
            with open(self.src, "rb") as f:
                return f.read()
        except OSError as e:
            raise CommandError(f"secret {self.id}: failed to read {self.src}: "
                               f"{e.strerror or e}") from None


@dataclass(frozen=True)
class Output:
    """`-o`: "local" (a directory), "tar" (a file, or "-" for stdout) or "image" (the
    classic builder's own result: nothing more to do)."""

    type: str
    dest: str = ""


def _flag_error(value: str, flag: str, why: str) -> UsageError:
    return UsageError(f'invalid argument "{value}" for "{flag}" flag: {why}\n'
                      "See 'dockyard build --help'.")


# -- flags -----------------------------------------------------------------------------------

def parse_build_args(items: list[str], environ) -> dict[str, str | None]:
    """NAME=VALUE, or NAME alone: its value from the environment, or none (null) so that the
    Dockerfile's default applies (opts.ValidateEnv, ConvertKVStringsToMapWithNil)."""
    out: dict[str, str | None] = {}
    for item in items:
        name, eq, value = item.partition("=")
        if not name:
            raise _flag_error(item, "--build-arg", f"invalid environment variable: {item}")
        out[name] = value if eq else environ.get(name)
    return out


def parse_labels(items: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        name, _, value = item.partition("=")
        if not name.strip():
            raise _flag_error(item, "--label", f"invalid label '{item}': empty name")
        out[name] = value
    return out


def _fields(item: str, flag: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in item.split(","):
        key, eq, value = part.partition("=")
        if not eq:
            raise _flag_error(item, flag, f"invalid field '{part}' must be a key=value pair")
        out[key.strip().lower()] = value.strip()
    return out


def parse_secret(item: str, environ) -> Secret:
    """BuildKit's `id=ID[,src=PATH|,env=VAR][,type=file|env]`; without src or env, the
    variable named ID if set, else the file named ID."""
    fields = _fields(item, "--secret")
    unknown = set(fields) - {"id", "src", "source", "env", "type"}
    if unknown:
        raise _flag_error(item, "--secret", f"unexpected key '{sorted(unknown)[0]}'")
    kind = fields.get("type", "file")
    if kind not in ("file", "env"):
        raise _flag_error(item, "--secret", f"unsupported secret type {kind!r}")
    ident = fields.get("id", "")
    src = fields.get("src") or fields.get("source") or ""
    env = fields.get("env", "")
    if kind == "env" and not env:
        env, src = src or ident, ""
    if not ident:
        ident = os.path.basename(src) if src else env
    if not ident or ident in (".", "..") or not all(c.isalnum() or c in "-_." for c in ident):
        raise _flag_error(item, "--secret", f"invalid secret ID {ident!r}: letters, digits, "
                          "'-', '_' and '.' only")
    if not src and not env:
        if ident in environ:
            env = ident
        else:
            src = ident
    if src and not os.path.isfile(src):
        raise _flag_error(item, "--secret", f"failed to stat {src}: no such file")
    return Secret(ident, src, env)


def parse_output(item: str) -> Output:
    """buildx's `-o`: `type=local,dest=DIR`, `type=tar,dest=FILE|-`, or the shorthands
    `-o DIR` and `-o -` (a tar on stdout)."""
    if "=" not in item and "," not in item:
        return Output("tar", "-") if item == "-" else Output("local", item)
    fields = _fields(item, "-o, --output")
    kind, dest = fields.get("type", ""), fields.get("dest", "")
    if kind in ("image", "docker", "moby"):
        return Output("image")
    if kind == "local":
        if not dest or dest == "-":
            raise _flag_error(item, "-o, --output", "dest is required for local output")
        return Output("local", dest)
    if kind == "tar":
        return Output("tar", dest or "-")
    if not kind:
        raise _flag_error(item, "-o, --output", "type is required for output")
    raise _flag_error(item, "-o, --output", f'output type "{kind}" is not supported: '
                      "local, tar or image")


def check_tags(tags: list[str]) -> None:
    from dockyard.cli.references import is_valid

    for t in tags:
        if not is_valid(t):
            raise _flag_error(t, "-t, --tag", "invalid reference format: repository name "
                              f"({t.rpartition(':')[0] or t}) must be lowercase")


def build_query(opts, dockerfile: str, build_args: dict, labels: dict) -> str:
    """The query string; `t` repeats (encode_query takes one value a key)."""
    from dockyard.client.api import quote
    from dockyard.runtime import jsonio

    pairs = [("t", t) for t in opts.tag]
    pairs.append(("dockerfile", dockerfile))
    if build_args:
        pairs.append(("buildargs", jsonio.dumps(build_args)))
    if labels:
        pairs.append(("labels", jsonio.dumps(labels)))
    if opts.target:
        pairs.append(("target", opts.target))
    for flag, key in (("no_cache", "nocache"), ("pull", "pull"), ("quiet", "q"),
                      ("force_rm", "forcerm")):
        if getattr(opts, flag):
            pairs.append((key, "1"))
    pairs.append(("rm", "1" if opts.rm else "0"))
    if opts.network:
        pairs.append(("networkmode", opts.network))
    if opts.platform:
        pairs.append(("platform", opts.platform))
    return "&".join(f"{quote(k)}={quote(v)}" for k, v in pairs)


# -- the command -----------------------------------------------------------------------------

def registry_config_header() -> dict[str, str]:
    from dockyard.client.auth import all_credentials, encode_header

    creds = all_credentials()
    return {"X-Registry-Config": encode_header(creds)} if creds else {}


def build(cli, argv: list[str], name: str = "build") -> int:
    opts, (path,) = BUILD.parse(argv)
    environ = os.environ
    if opts.progress not in PROGRESS_MODES:
        raise _flag_error(opts.progress, "--progress", "unknown progress mode (auto, plain, "
                          "tty or quiet)")
    check_tags(opts.tag)
    build_args = parse_build_args(opts.build_arg, environ)
    labels = parse_labels(opts.label)
    outputs = [parse_output(o) for o in opts.output]
    secrets = [parse_secret(s, environ) for s in opts.secret]
    if any(o.type == "tar" and o.dest == "-" for o in outputs) and sys.stdout.isatty():
        raise CommandError("ERROR: refusing to write the output tar to a terminal: use "
                           "-o type=tar,dest=FILE or redirect")
    if opts.iidfile:
        _remove_quietly(opts.iidfile)
    from dockyard.cli.buildcontext import add_secrets, local_context, stdin_context

    if path == "-":
        ctx = stdin_context(sys.stdin.buffer, opts.file)
    else:
        ctx = local_context(path, opts.file, sys.stdin.buffer if opts.file == "-" else None)
    add_secrets(ctx, {s.id: s.read(environ) for s in secrets})
    query = build_query(opts, ctx.dockerfile, build_args, labels)
    result = send(cli, ctx, query, "quiet" if opts.quiet else opts.progress)
    if not result.ok:
        from dockyard.cli.buildprogress import failure_report

        cli.err.write(failure_report(result))
        return result.code or 1
    if not result.image_id:
        raise CommandError("ERROR: the daemon ended the build without an image")
    to_stdout = any(o.type == "tar" and o.dest == "-" for o in outputs)
    if (opts.quiet or opts.progress == "quiet") and not to_stdout:
        cli.out.write(result.image_id + "\n")
    if opts.iidfile:
        with open(opts.iidfile, "w") as f:
            f.write(result.image_id)
    for output in outputs:
        if output.type != "image":
            export_output(cli, result.image_id, output)
    if outputs and all(o.type != "image" for o in outputs):
        _drop_if_untagged(cli, result.image_id)
    return 0


def _drop_if_untagged(cli, image_id: str) -> None:
    """Exported elsewhere, an image nobody named is not kept (BuildKit stores none for -o
    local or tar); the cached steps before it stay (noprune). A named one stays."""
    from dockyard.client.api import APIError

    try:
        if not (cli.client.get(f"/images/{image_id}/json") or {}).get("RepoTags"):
            cli.client.delete(f"/images/{image_id}", {"noprune": "1"})
    except APIError:
        pass  # in use, or gone already: nothing to undo


build.spec = BUILD


def _remove_quietly(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass
    except OSError as e:
        raise CommandError(f"Removing image ID file: {e}") from None


def send(cli, ctx, query: str, progress: str):
    """POST /build with the context; the stream shown as `progress` asks."""
    import tempfile

    from dockyard.cli.buildcontext import needs_rewrite, write_context
    from dockyard.cli.buildprogress import display_for, render

    headers = {"Content-Type": "application/x-tar", **registry_config_header()}
    with tempfile.TemporaryFile(prefix="dockyard-context-") as body:
        if ctx.stdin_tar is not None and not needs_rewrite(ctx):
            source = ctx.stdin_tar
        else:
            write_context(ctx, body)
            body.seek(0)
            source = body
        stream = cli.client.json_stream("POST", "/build?" + query, headers=headers,
                                        source=source)
        return render(stream, display_for(progress, cli.err))


# -- -o: the image's filesystem, through a container never started ---------------------------

def export_output(cli, image_id: str, output: Output) -> None:
    from dockyard.client.api import APIError, quote

    created = cli.client.post("/containers/create", None,
                              {"Image": image_id, "Cmd": ["/dockyard-build-output"],
                               "Labels": {"com.dockyard.build.output": "1"}})
    cid = created["Id"]
    try:
        resp = cli.client.request("GET", f"/containers/{quote(cid)}/export")
        if output.type == "tar":
            from dockyard.cli.files import save_response

            save_response(resp, None if output.dest == "-" else output.dest)
        else:
            from dockyard.cli.files import _Body

            try:
                extract_rootfs(_Body(resp), output.dest)
            finally:
                resp.close()
    finally:
        try:
            cli.client.delete(f"/containers/{quote(cid)}", {"force": True, "v": True})
        except APIError:
            pass


def extract_rootfs(source, dest: str) -> None:
    """An exported filesystem into `dest`: nothing written outside it (tarfile's "tar"
    filter, hard links checked), devices skipped unless root, directories' modes set last
    so that read-only ones can be filled."""
    import tarfile

    os.makedirs(dest, exist_ok=True)
    root = os.path.realpath(dest)
    dirs = []
    privileged = os.geteuid() == 0
    with tarfile.open(fileobj=source, mode="r|*") as tar:
        for m in tar:
            if m.name.removeprefix("./").lstrip("/") == ".dockerenv":
                continue
            if (m.ischr() or m.isblk() or m.isfifo()) and not privileged:
                continue
            try:
                m = tarfile.tar_filter(m, root)
            except tarfile.FilterError as e:
                raise CommandError(f"invalid archive entry {e.tarinfo.name!r}: {e}") from None
            if m.islnk():
                target = os.path.realpath(os.path.join(root, m.linkname))
                if target != root and not target.startswith(root + "/"):
                    raise CommandError(f"invalid hard link {m.linkname!r}: outside {dest}")
            if m.isdir():
                tar.extract(m, root, set_attrs=False, filter="fully_trusted")
                dirs.append(m)
            else:
                tar.extract(m, root, numeric_owner=True, filter="fully_trusted")
    for m in reversed(dirs):
        path = os.path.join(root, m.name)
        os.chmod(path, m.mode)
        os.utime(path, (m.mtime, m.mtime))
