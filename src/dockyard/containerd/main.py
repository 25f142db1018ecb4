"""dockyard-containerd: the supervisor, started as containerd is.

    dockyard-containerd [--config FILE] [--address SOCKET] [--root DIR] [--state DIR]
                        [--log-level LEVEL]
    dockyard-containerd --version

Flags override the config file (config.py), which overrides the defaults. It logs to
stderr in containerd's (logrus) text form, says "serving..." with the address once it
listens, and serves until SIGTERM or SIGINT; then it stops listening, lets in-flight calls
finish for a moment, and exits 0. Like containerd it writes no pid file: the socket and the
locks on root and state are how a second instance is refused.

Exit codes: 0 after a clean stop, 1 when it cannot start (the reason is logged), 2 for bad
usage.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time

LEVELS = {"trace": 5, "debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING,
          "warning": logging.WARNING, "error": logging.ERROR, "fatal": logging.CRITICAL,
          "panic": logging.CRITICAL}
_NAMES = {5: "trace", logging.DEBUG: "debug", logging.INFO: "info",
          logging.WARNING: "warning", logging.ERROR: "error", logging.CRITICAL: "fatal"}


class LogfmtFormatter(logging.Formatter):
    """containerd's lines: time="…" level=info msg="…" key=value …"""

    def format(self, record: logging.LogRecord) -> str:
        at = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        parts = [f'time="{at}.{int(record.created % 1 * 1e6):06d}Z"',
                 f"level={_NAMES.get(record.levelno, record.levelname.lower())}",
                 f"msg={_quote(record.getMessage())}"]
        for key, value in getattr(record, "fields", {}).items():
            parts.append(f"{key}={_quote(str(value))}")
        if record.exc_info:
            parts.append(f"error={_quote(self.formatException(record.exc_info))}")
        return " ".join(parts)


def _quote(text: str) -> str:
    if text and all(c.isalnum() or c in "-._/:@" for c in text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dockyard-containerd",
                                description="The supervisor: content, snapshots, images, "
                                "containers, tasks and events over gRPC.")
    p.add_argument("--config", "-c", help="path to the configuration file (TOML)")
    p.add_argument("--address", "-a", help="address of the gRPC unix socket")
    p.add_argument("--root", help="directory of persistent data")
    p.add_argument("--state", help="directory of runtime state")
    p.add_argument("--log-level", "-l", choices=sorted(LEVELS), help="log level")
    p.add_argument("--version", "-v", action="store_true", help="print the version")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.version:
        from dockyard.containerd.release import REVISION, version

        print(f"dockyard-containerd dockyard {version()} {REVISION}".rstrip())
        return 0
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(LogfmtFormatter())
    log = logging.getLogger("dockyard")
    log.addHandler(handler)
    log.propagate = False

    from dockyard.containerd.config import ConfigError, load

    try:
        config = load(args.config, address=args.address, root=args.root, state=args.state,
                      log_level=args.log_level)
    except ConfigError as e:
        log.setLevel(logging.INFO)
        log.error("%s", e)
        return 1
    log.setLevel(LEVELS[config.log_level])

    from dockyard.containerd.errors import ContainerdError
    from dockyard.containerd.server import serve
    from dockyard.image.errors import ImageError

    try:
        asyncio.run(serve(config))
    except (ContainerdError, ImageError, OSError) as e:
        log.error("dockyard-containerd: %s", e)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
