"""`dockyard-image`: the local image store from the command line, without any daemon.

    dockyard-image [--root DIR] [--snapshotter overlayfs|native] COMMAND

    bootstrap [NAME...]          busybox:latest (and NAME...) from the host's busybox-static
    load -i FILE [--base-name N] docker save archives, OCI layouts (tar or directory)
    save -o FILE [--oci] NAME... what docker save writes (an OCI layout with manifest.json)
    import FILE|- [NAME]         a root filesystem tarball as a one-layer image
    ls | inspect NAME | unpack NAME | rm NAME... | gc

It is what the supervisor will serve over gRPC; tests and the README's first command use it
directly. Messages follow Docker's ("Loaded image: busybox:latest").
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from dockyard.image import reference
from dockyard.image.errors import ImageError

if TYPE_CHECKING:
    from dockyard.image.library import ImageLibrary
    from dockyard.image.manifest import Descriptor

DEFAULT_ROOT = "/var/lib/dockyard/containerd"


def _full(name: str) -> str:
    return str(reference.parse_tagged(name))


def _familiar(name: str) -> str:
    try:
        return reference.parse(name).familiar()
    except ImageError:
        return name


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dockyard-image", description=__doc__.split("\n")[0])
    p.add_argument("--root", default=DEFAULT_ROOT, help=f"image store root ({DEFAULT_ROOT})")
    p.add_argument("--snapshotter", choices=("overlayfs", "native"), default=None,
                   help="overlayfs where it works, else native")
    sub = p.add_subparsers(dest="command", required=True)
    b = sub.add_parser("bootstrap", help="make busybox:latest from the host's busybox-static")
    b.add_argument("names", nargs="*", default=["busybox:latest"])
    b.add_argument("--no-unpack", action="store_true")
    ld = sub.add_parser("load", help="load images from an archive or an OCI layout")
    ld.add_argument("-i", "--input", required=True)
    ld.add_argument("--base-name", help="name for images an OCI layout gives only a tag")
    ld.add_argument("--no-unpack", action="store_true")
    ld.add_argument("-q", "--quiet", action="store_true")
    s = sub.add_parser("save", help="save images to a tar archive (docker save format)")
    s.add_argument("-o", "--output", required=True)
    s.add_argument("--oci", action="store_true", help="an OCI layout only (a directory if "
                   "OUTPUT is one or ends with /)")
    s.add_argument("names", nargs="+")
    i = sub.add_parser("import", help="import a root filesystem tarball")
    i.add_argument("file")
    i.add_argument("name", nargs="?")
    i.add_argument("-m", "--message", default="")
    sub.add_parser("ls", help="list images")
    ins = sub.add_parser("inspect", help="show an image's manifest and config")
    ins.add_argument("name")
    u = sub.add_parser("unpack", help="unpack an image into the snapshotter")
    u.add_argument("name")
    r = sub.add_parser("rm", help="remove image names")
    r.add_argument("names", nargs="+")
    sub.add_parser("gc", help="remove content and snapshots no image or lease holds")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _run(args)
    except ImageError as e:
        sys.stderr.write(f"Error: {e}\n")
        return 1
    except OSError as e:
        sys.stderr.write(f"Error: {e.filename + ': ' if e.filename else ''}{e.strerror}\n")
        return 1
    except KeyboardInterrupt:
        return 130


def _run(args: argparse.Namespace) -> int:
    from dockyard.image.library import ImageLibrary

    with ImageLibrary(Path(args.root), args.snapshotter) as lib:
        match args.command:
            case "bootstrap":
                from dockyard.image.imports import bootstrap
                target = bootstrap(lib, args.names, unpack=not args.no_unpack)
                for n in args.names:
                    print(f"Bootstrapped image: {_familiar(_full(n))} ({target.digest})")
            case "load":
                from dockyard.image.archive.load import load
                loaded = load(lib, args.input, base_name=args.base_name,
                              unpack=not args.no_unpack)
                if not args.quiet:
                    for name in loaded.names:
                        kind = "ID" if name.startswith("sha256:") else ""
                        label = f"Loaded image{' ' + kind if kind else ''}"
                        print(f"{label}: {_familiar(name)}")
            case "save":
                from dockyard.image.archive.save import save
                out = sys.stdout.buffer if args.output == "-" else args.output
                save(lib, [_full(n) for n in args.names], out, oci=args.oci)
            case "import":
                from dockyard.image.imports import import_rootfs
                if args.file == "-":
                    target = import_rootfs(lib, sys.stdin.buffer, args.name,
                                           message=args.message)
                else:
                    with open(args.file, "rb") as f:
                        target = import_rootfs(lib, f, args.name, source=args.file,
                                               message=args.message)
                print(lib.resolve(target).manifest.config.digest)
            case "ls":
                _ls(lib)
            case "inspect":
                resolved = lib.resolve(lib.get(_full(args.name)).target)
                print(json.dumps({"Name": _full(args.name),
                                  "Manifest": resolved.manifest.to_json(),
                                  "Config": resolved.config.to_json()}, indent=2))
            case "unpack":
                print(lib.unpack(_full(args.name)))
            case "rm":
                for n in args.names:
                    name = n if n.startswith("sha256:") else _full(n)
                    lib.remove(name)
                    print(f"Untagged: {_familiar(name)}")
            case "gc":
                removed = lib.gc()
                print(f"removed {len(removed.content)} blobs, {len(removed.snapshots)} "
                      f"snapshots, {len(removed.ingests)} ingests, {len(removed.leases)} leases")
    return 0


def _ls(lib: ImageLibrary) -> None:
    rows = [("REF", "TYPE", "DIGEST", "SIZE")]
    for image in lib.list():
        rows.append((_familiar(image.name), image.target.media_type.rsplit(".", 2)[-2],
                     str(image.target.digest), _size(_total(lib, image.target))))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in rows:
        print("   ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


def _total(lib: ImageLibrary, target: Descriptor) -> int:
    try:
        resolved = lib.resolve(target)
    except ImageError:
        return 0
    return sum(d.size for d in resolved.manifest.layers) + resolved.manifest.config.size


def _size(n: int) -> str:
    """Docker's units (decimal, as `docker images` prints them)."""
    if n < 1000:
        return f"{n}B"
    for unit, scale in (("kB", 1e3), ("MB", 1e6), ("GB", 1e9)):
        if n < scale * 1000 or unit == "GB":
            return f"{n / scale:.3g}{unit}"
    return f"{n}B"


if __name__ == "__main__":
    sys.exit(main())
