"""`dockyard-ctr`: containerd's `ctr` for dockyard-containerd, for operators and tests.

    dockyard-ctr [--address SOCK] [--namespace NS] COMMAND ...
      version
      images pull [--mirror URL] [--insecure-registry HOST] REF
      images import FILE | images export FILE NAME... | images ls [-q] | images rm NAME...
      run [--rm] [-d] [-t] [--env K=V] [--cwd DIR] IMAGE ID [CMD ...]
      containers ls [-q] | containers rm ID...
      tasks ls | tasks kill [-s SIGNAL] [-a] [--exec-id ID] ID | tasks ps ID
      tasks exec --exec-id ID [-t] CONTAINER CMD ... | tasks pause ID | tasks resume ID

The flags, verbs and tables are ctr's; the address and namespace come from CONTAINERD_ADDRESS
and CONTAINERD_NAMESPACE as well. Errors are one line on stderr, "ctr: <message>", and exit 1;
`run` and `tasks exec` exit with the process's status.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Sequence

from dockyard.containerd.ctr import commands


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="dockyard-ctr", description=__doc__.split("\n\n")[0])
    ap.add_argument("--address", "-a", default=None,
                    help="address of dockyard-containerd's socket")
    ap.add_argument("--namespace", "-n", default=None, help="namespace to use")
    ap.add_argument("--timeout", type=float, default=None, help="timeout of each call (s)")
    sub = ap.add_subparsers(dest="command", required=True)

    sub.add_parser("version", help="client and server versions")

    images = sub.add_parser("images", aliases=["image", "i"], help="images").add_subparsers(
        dest="verb", required=True)
    p = images.add_parser("pull", help="pull an image from a registry")
    p.add_argument("--mirror", action="append", default=[], help="docker.io mirror URL")
    p.add_argument("--insecure-registry", action="append", default=[],
                   help="a registry reached over HTTP or with unchecked TLS")
    p.add_argument("ref")
    p = images.add_parser("import", help="import an image archive (docker save or OCI)")
    p.add_argument("file")
    p = images.add_parser("export", help="export images to an archive")
    p.add_argument("file")
    p.add_argument("names", nargs="+")
    p = images.add_parser("ls", aliases=["list"], help="list images")
    p.add_argument("-q", "--quiet", action="store_true")
    p = images.add_parser("rm", aliases=["remove", "delete", "del"], help="remove images")
    p.add_argument("names", nargs="+")

    p = sub.add_parser("run", help="run a container")
    p.add_argument("--rm", action="store_true", help="remove the container when it exits")
    p.add_argument("-d", "--detach", action="store_true", help="return once it started")
    p.add_argument("-t", "--tty", action="store_true", help="allocate a terminal")
    p.add_argument("--env", action="append", default=[], help="K=V for the environment")
    p.add_argument("--cwd", default=None, help="working directory")
    p.add_argument("--log-uri", default="", help="json-file log path (ours: a file path)")
    p.add_argument("image")
    p.add_argument("id")
    p.add_argument("args", nargs=argparse.REMAINDER)

    containers = sub.add_parser("containers", aliases=["container", "c"],
                                help="containers").add_subparsers(dest="verb", required=True)
    p = containers.add_parser("ls", aliases=["list"], help="list containers")
    p.add_argument("-q", "--quiet", action="store_true")
    p = containers.add_parser("rm", aliases=["remove", "delete", "del"],
                              help="remove containers (and their snapshots)")
    p.add_argument("ids", nargs="+")

    tasks = sub.add_parser("tasks", aliases=["task", "t"], help="tasks").add_subparsers(
        dest="verb", required=True)
    tasks.add_parser("ls", aliases=["list"], help="list tasks")
    p = tasks.add_parser("kill", help="signal a task")
    p.add_argument("-s", "--signal", default="SIGTERM")
    p.add_argument("-a", "--all", action="store_true", help="every process of the task")
    p.add_argument("--exec-id", default="")
    p.add_argument("id")
    p = tasks.add_parser("ps", help="processes of a task")
    p.add_argument("id")
    for verb in ("pause", "resume", "start", "delete"):
        p = tasks.add_parser(verb, aliases=["rm"] if verb == "delete" else [])
        p.add_argument("id")
    p = tasks.add_parser("exec", help="run a process in a task")
    p.add_argument("--exec-id", required=True)
    p.add_argument("-t", "--tty", action="store_true")
    p.add_argument("-d", "--detach", action="store_true")
    p.add_argument("--cwd", default=None)
    p.add_argument("id")
    p.add_argument("args", nargs=argparse.REMAINDER)
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    args.address = args.address or os.environ.get(
        "CONTAINERD_ADDRESS", "/run/dockyard/containerd/containerd.sock")
    args.namespace = args.namespace or os.environ.get("CONTAINERD_NAMESPACE", "default")
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    try:
        return commands.dispatch(args)
    except commands.CtrError as e:
        sys.stderr.write(f"ctr: {e}\n")
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
