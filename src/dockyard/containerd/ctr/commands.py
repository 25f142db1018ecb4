"""What each `dockyard-ctr` verb does, over dockyard.containerd.client."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import select
import signal
import sys
import termios
import threading
import tty
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import grpc
from google.protobuf import any_pb2

from dockyard.api.services.containers.v1 import containers_pb2 as containers_pb
from dockyard.api.services.images.v1 import images_pb2 as images_pb
from dockyard.api.services.tasks.v1 import tasks_pb2 as tasks_pb
from dockyard.api.types import task_pb2
from dockyard.containerd.client import Client

STATUS = {task_pb2.CREATED: "CREATED", task_pb2.RUNNING: "RUNNING",
          task_pb2.STOPPED: "STOPPED", task_pb2.PAUSED: "PAUSED",
          task_pb2.PAUSING: "PAUSING", task_pb2.UNKNOWN: "UNKNOWN"}


class CtrError(Exception):
    """One line for stderr."""


@contextlib.contextmanager
def errors() -> Iterator[None]:
    try:
        yield
    except grpc.RpcError as e:
        if e.code() == grpc.StatusCode.UNAVAILABLE and "connect" in (e.details() or ""):
            raise CtrError(f"failed to dial: {e.details()}") from None
        raise CtrError(e.details() or str(e.code())) from None


def dispatch(args: argparse.Namespace) -> int:
    with errors(), Client(args.address, args.namespace, args.timeout) as client:
        command = args.command
        verb = getattr(args, "verb", None)
        if command == "version":
            return version(client)
        if command == "run":
            return run(client, args)
        handler = HANDLERS[(ALIASES.get(command, command), ALIASES.get(verb, verb))]
        return handler(client, args)


ALIASES = {"image": "images", "i": "images", "container": "containers", "c": "containers",
           "task": "tasks", "t": "tasks", "list": "ls", "remove": "rm", "del": "rm",
           "delete": "rm"}


def table(rows: Sequence[Sequence[str]]) -> None:
    """Columns as Go's tabwriter lays them out for ctr (padding 1, left aligned)."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        sys.stdout.write(" ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                         + "\n")


def version(client: Client) -> int:
    from google.protobuf import empty_pb2

    from dockyard import __version__
    got = client.call(client.version.Version, empty_pb2.Empty())
    print(f"Client:\n  Version:  {__version__}\n  Revision: \n  Go version: -\n")
    print(f"Server:\n  Version:  {got.version}\n  Revision: {got.revision}\n  UUID: ")
    return 0


# -- images --------------------------------------------------------------------------------

def images_pull(client: Client, args: argparse.Namespace) -> int:
    last: dict[str, tuple[int, int]] = {}
    for p in client.pull(args.ref, mirrors=args.mirror, insecure=args.insecure_registry):
        if p.event == "resolving":
            print(f"{p.name}: resolving", flush=True)
        elif p.event == "downloading":
            last[p.digest] = (p.progress, p.total)
        elif p.event == "complete":
            for digest, (done, total) in last.items():
                print(f"layer-{digest}: done {done}/{total}", flush=True)
            print(f"unpacked {p.name} ({p.digest})")
    return 0


def images_ls(client: Client, args: argparse.Namespace) -> int:
    found = client.call(client.images.List, images_pb.ListImagesRequest()).images
    if args.quiet:
        for image in found:
            print(image.name)
        return 0
    rows = [["REF", "TYPE", "DIGEST", "SIZE", "PLATFORMS", "LABELS"]]
    for image in found:
        labels = ",".join(f"{k}={v}" for k, v in sorted(image.labels.items())) or "-"
        rows.append([image.name, image.target.media_type, image.target.digest,
                     human_size(image.target.size), "-", labels])
    table(rows)
    return 0


def images_rm(client: Client, args: argparse.Namespace) -> int:
    failed = 0
    for name in args.names:
        try:
            client.call(client.images.Delete, images_pb.DeleteImageRequest(name=name))
            print(name)
        except grpc.RpcError as e:
            sys.stderr.write(f"ctr: unable to delete {name}: {e.details()}\n")
            failed = 1
    return failed


def images_import(client: Client, args: argparse.Namespace) -> int:
    for p in client.import_archive(args.file):
        if p.event == "complete":
            print(f"unpacking {p.name} ({p.digest})...done")
    return 0


def images_export(client: Client, args: argparse.Namespace) -> int:
    client.export_archive(args.file, args.names)
    return 0


def human_size(n: int) -> str:
    """Go's units.HumanSize as ctr prints sizes (1024 steps, 4 significant digits)."""
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.4g} {unit}"
        size /= 1024
    return f"{n} B"


# -- containers ----------------------------------------------------------------------------

def containers_ls(client: Client, args: argparse.Namespace) -> int:
    found = client.call(client.containers.List, containers_pb.ListContainersRequest()).containers
    if args.quiet:
        for c in found:
            print(c.id)
        return 0
    table([["CONTAINER", "IMAGE", "RUNTIME"],
           *[[c.id, c.image or "-", c.runtime.name] for c in found]])
    return 0


def containers_rm(client: Client, args: argparse.Namespace) -> int:
    failed = 0
    for cid in args.ids:
        try:
            client.remove_container(cid)
        except grpc.RpcError as e:
            sys.stderr.write(f"ctr: failed to delete container {cid!r}: {e.details()}\n")
            failed = 1
    return failed


# -- tasks -----------------------------------------------------------------------------------

def tasks_ls(client: Client, args: argparse.Namespace) -> int:
    found = client.call(client.tasks.List, tasks_pb.ListTasksRequest()).tasks
    table([["TASK", "PID", "STATUS"],
           *[[t.id, str(t.pid), STATUS.get(t.status, "UNKNOWN")] for t in found]])
    return 0


def parse_signal(text: str) -> int:
    if text.isdigit():
        return int(text)
    name = text.upper()
    name = name if name.startswith("SIG") else "SIG" + name
    try:
        return int(signal.Signals[name])
    except KeyError:
        raise CtrError(f"invalid signal {text!r}") from None


def tasks_kill(client: Client, args: argparse.Namespace) -> int:
    client.call(client.tasks.Kill, tasks_pb.KillRequest(
        container_id=args.id, exec_id=args.exec_id, signal=parse_signal(args.signal),
        all=args.all))
    return 0


def tasks_ps(client: Client, args: argparse.Namespace) -> int:
    found = client.call(client.tasks.ListPids,
                        tasks_pb.ListPidsRequest(container_id=args.id)).processes
    table([["PID", "INFO"], *[[str(p.pid), "-"] for p in found]])
    return 0


def tasks_simple(rpc: str, request: Callable[[str], Any]) -> Callable[..., int]:
    def handler(client: Client, args: argparse.Namespace) -> int:
        client.call(getattr(client.tasks, rpc), request(args.id))
        return 0
    return handler


def tasks_exec(client: Client, args: argparse.Namespace) -> int:
    if not args.args:
        raise CtrError("command must be specified")
    container = client.call(client.containers.Get,
                            containers_pb.GetContainerRequest(id=args.id)).container
    process = json.loads(container.spec.value)["process"]
    process.update(args=list(args.args), terminal=args.tty)
    if args.cwd:
        process["cwd"] = args.cwd
    client.call(client.tasks.Exec, tasks_pb.ExecProcessRequest(
        container_id=args.id, exec_id=args.exec_id, terminal=args.tty, stdin=not args.detach,
        spec=any_pb2.Any(type_url="types.containerd.io/opencontainers/runtime-spec/1/Process",
                         value=json.dumps(process).encode())))
    try:
        if args.detach:
            client.start(args.id, args.exec_id)
            return 0
        return attached(client, args.id, args.exec_id, args.tty)
    finally:
        if not args.detach:
            with contextlib.suppress(grpc.RpcError):
                client.call(client.tasks.DeleteProcess, tasks_pb.DeleteProcessRequest(
                    container_id=args.id, exec_id=args.exec_id))


# -- run -------------------------------------------------------------------------------------

def run(client: Client, args: argparse.Namespace) -> int:
    image = client.image(args.image)
    mounts = client.new_container(args.id, image, args.args, terminal=args.tty, env=args.env,
                                  cwd=args.cwd)
    status = 0
    try:
        client.create_task(args.id, mounts, terminal=args.tty, stdin=not args.detach,
                           log_path=args.log_uri)
        if args.detach:
            client.start(args.id)
            return 0
        try:
            status = attached(client, args.id, "", args.tty)
        finally:
            if args.rm:
                client.delete_task(args.id)
    finally:
        if args.rm:
            client.remove_container(args.id)
    return status


def attached(client: Client, cid: str, exec_id: str, terminal: bool) -> int:
    """Attach our stdio to the process, start it, relay until it exits; its status. On a
    terminal, ours is raw meanwhile and its size follows ours."""
    ready = threading.Event()
    done = threading.Event()
    interactive = terminal and os.isatty(0)

    def requests() -> Iterator[tasks_pb.AttachRequest]:
        yield tasks_pb.AttachRequest(container_id=cid, exec_id=exec_id, stdin=True,
                                     stdout=True, stderr=not terminal, stdin_once=True)
        ready.wait()
        while not done.is_set():
            readable, _, _ = select.select([0], [], [], 0.2)
            if not readable:
                continue
            data = os.read(0, 65536)
            if not data:
                yield tasks_pb.AttachRequest(close_stdin=True)
                return
            yield tasks_pb.AttachRequest(data=data)

    saved = termios.tcgetattr(0) if interactive else None
    responses = client.tasks.Attach(requests(), metadata=client.metadata)
    try:
        first = next(responses)
        assert first.stream == 0
        if interactive:
            tty.setraw(0)
            resize(client, cid, exec_id)
            signal.signal(signal.SIGWINCH, lambda *_: resize(client, cid, exec_id))
        client.start(cid, exec_id)
        ready.set()
        out = {1: sys.stdout.buffer, 2: sys.stderr.buffer}
        for r in responses:
            stream = out.get(r.stream)
            if stream is not None:
                stream.write(r.data)
                stream.flush()
        return client.wait(cid, exec_id)
    finally:
        done.set()
        ready.set()
        responses.cancel()
        if saved is not None:
            termios.tcsetattr(0, termios.TCSADRAIN, saved)


def resize(client: Client, cid: str, exec_id: str) -> None:
    size = os.get_terminal_size(0)
    with contextlib.suppress(grpc.RpcError):
        client.call(client.tasks.ResizePty, tasks_pb.ResizePtyRequest(
            container_id=cid, exec_id=exec_id, width=size.columns, height=size.lines))


HANDLERS: dict[tuple[str, str | None], Callable[[Client, argparse.Namespace], int]] = {
    ("images", "pull"): images_pull,
    ("images", "ls"): images_ls,
    ("images", "rm"): images_rm,
    ("images", "import"): images_import,
    ("images", "export"): images_export,
    ("containers", "ls"): containers_ls,
    ("containers", "rm"): containers_rm,
    ("tasks", "ls"): tasks_ls,
    ("tasks", "kill"): tasks_kill,
    ("tasks", "ps"): tasks_ps,
    ("tasks", "exec"): tasks_exec,
    ("tasks", "pause"): tasks_simple("Pause", lambda i: tasks_pb.PauseTaskRequest(container_id=i)),
    ("tasks", "resume"): tasks_simple("Resume",
                                      lambda i: tasks_pb.ResumeTaskRequest(container_id=i)),
    ("tasks", "start"): tasks_simple("Start", lambda i: tasks_pb.StartRequest(container_id=i)),
    ("tasks", "rm"): tasks_simple("Delete", lambda i: tasks_pb.DeleteTaskRequest(container_id=i)),
}

__all__ = ["CtrError", "dispatch"]
