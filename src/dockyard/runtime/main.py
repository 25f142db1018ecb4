"""The entry point of dockyard-runc: for create, run and exec, stage-1 starts before the rest
of the CLI is imported, so that its interpreter start-up overlaps ours (runtime/process.py)."""

from __future__ import annotations

import sys


def spawning(argv: list[str]) -> int | None:
    """preserve-fds of a create, run or exec command line; None for anything else."""
    from dockyard.runtime.flags import ALIASES, COMMAND_FLAGS, GLOBAL_FLAGS, parse_flags

    try:
        g, rest = parse_flags(argv, GLOBAL_FLAGS)
        if not rest or g.get("help") or g.get("version"):
            return None
        name = ALIASES.get(rest[0], rest[0])
        if name not in ("create", "run", "exec"):
            return None
        opts, args = parse_flags(rest[1:], COMMAND_FLAGS[name])
    except Exception:  # the CLI reports it, in runc's words
        return None
    if opts.get("help") or not args:
        return None
    return opts.get("preserve-fds", 0)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    from dockyard.runtime import tracepoints

    tracepoints.setup_from_env()
    tracepoints.mark("cli: started")
    preserve = spawning(argv)
    if preserve is not None:
        from dockyard.runtime import process

        process.prespawn(preserve)
        tracepoints.mark("cli: stage-1 spawned")
    from dockyard.runtime import cli

    return cli.main(argv)


if __name__ == "__main__":
    sys.exit(main())
