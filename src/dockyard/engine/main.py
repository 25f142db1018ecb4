"""dockyardd: the engine, started as dockerd is.

    dockyardd [-H unix:///path | -H tcp://host:port ...] [--data-root DIR] [--exec-root DIR]
              [--pidfile FILE] [--config-file FILE] [--containerd SOCKET]
              [--tlsverify --tlscacert CA --tlscert CERT --tlskey KEY] [--tcp-insecure]
              [--registry-mirror URL ...] [--insecure-registry HOST ...] [--live-restore]
              [--log-level LEVEL] [-D]

A unix socket is made root:dockyard 0660 (root:root when there is no group "dockyard"). A
tcp:// host needs mutual TLS (--tlsverify with CA, certificate and key); plain TCP only with
--tcp-insecure, an explicit opt-out. SIGTERM or SIGINT stops the engine: without
--live-restore it first stops the running containers and the supervisor it started, as dockerd
does; with it, both keep running for the next engine to find.

Exit codes: 0 after a clean stop, 1 when it cannot start (the reason on stderr).
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import grp
import logging
import os
import signal
import ssl
import sys
from pathlib import Path

from dockyard.containerd.main import LEVELS, LogfmtFormatter


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dockyardd", description="The Dockyard engine: the "
                                "Docker Engine API over dockyard-containerd.")
    p.add_argument("-H", "--host", action="append", dest="hosts", default=[],
                   help="daemon socket(s) to listen on")
    p.add_argument("--data-root", help="root directory of persistent state")
    p.add_argument("--exec-root", help="root directory of execution state")
    p.add_argument("-p", "--pidfile", help="path to the daemon's PID file")
    p.add_argument("--config-file", help="daemon configuration file (daemon.json)")
    p.add_argument("--containerd", help="a running dockyard-containerd's socket")
    p.add_argument("--tls", action="store_true", default=None, help="use TLS")
    p.add_argument("--tlsverify", action="store_true", default=None,
                   help="use TLS and verify the client (mutual TLS)")
    p.add_argument("--tlscacert", help="trust certs signed only by this CA")
    p.add_argument("--tlscert", help="path to the TLS certificate file")
    p.add_argument("--tlskey", help="path to the TLS key file")
    p.add_argument("--tcp-insecure", action="store_true", default=None,
                   help="allow plain TCP without TLS (anyone who reaches it is root)")
    p.add_argument("--registry-mirror", action="append", dest="registry_mirrors", default=[],
                   help="preferred registry mirror for docker.io")
    p.add_argument("--insecure-registry", action="append", dest="insecure_registries",
                   default=[], help="registry allowed over plain HTTP")
    p.add_argument("--live-restore", action="store_true", default=None,
                   help="keep containers running while the engine is down")
    p.add_argument("-l", "--log-level", choices=["debug", "info", "warn", "error", "fatal"])
    p.add_argument("-D", "--debug", action="store_true", default=None)
    p.add_argument("-G", "--group", help="group of the unix socket")
    p.add_argument("--cgroup-parent", help="parent cgroup of all containers")
    p.add_argument("-b", "--bridge", help="the default bridge network's bridge (none: no "
                   "default bridge network)")
    p.add_argument("--bip", help="the default bridge's address and prefix (CIDR)")
    p.add_argument("--fixed-cidr", help="IPv4 subnet for the default bridge's containers")
    p.add_argument("--mtu", type=int, help="MTU of the default bridge network")
    p.add_argument("--icc", action=argparse.BooleanOptionalAction, default=None,
                   help="traffic between containers of the default bridge")
    p.add_argument("--ip-masq", action=argparse.BooleanOptionalAction, default=None,
                   help="masquerade containers' traffic leaving the host")
    p.add_argument("--ip-forward", action=argparse.BooleanOptionalAction, default=None,
                   help="set net.ipv4.ip_forward")
    p.add_argument("--iptables", action=argparse.BooleanOptionalAction, default=None,
                   help="manage Dockyard's nftables table")
    p.add_argument("--host-gateway-ip", help="the address host-gateway stands for")
    p.add_argument("--dns", action="append", default=[], help="DNS server for containers")
    p.add_argument("--dns-search", action="append", default=[],
                   help="DNS search domain for containers")
    p.add_argument("--dns-opt", action="append", dest="dns_opts", default=[],
                   help="DNS option for containers")
    p.add_argument("-v", "--version", action="store_true", help="print the version")
    return p


def _unix_path(host: str) -> str:
    return host.removeprefix("unix://")


def _tls_context(config) -> ssl.SSLContext:
    if not (config.tlscert and config.tlskey):
        raise SystemExit("dockyardd: TLS needs --tlscert and --tlskey")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(config.tlscert, config.tlskey)
    if config.tlsverify:
        if not config.tlscacert:
            raise SystemExit("dockyardd: --tlsverify needs --tlscacert")
        ctx.load_verify_locations(config.tlscacert)
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def check_hosts(config) -> None:
    for host in config.listen():
        if host.startswith("tcp://"):
            if not (config.tls or config.tlsverify) and not config.tcp_insecure:
                raise SystemExit(
                    f"dockyardd: refusing to listen on {host} without TLS: use --tlsverify "
                    "with --tlscacert, --tlscert and --tlskey, or --tcp-insecure to opt out")
        elif not host.startswith(("unix://", "/")):
            raise SystemExit(f"dockyardd: unsupported host {host!r}: unix:// or tcp:// only")


def _lock_pidfile(path: str) -> int:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        other = os.read(fd, 32).decode(errors="replace").strip()
        os.close(fd)
        raise SystemExit(f"dockyardd: pid file found, ensure dockyardd is not running or "
                         f"delete {path} (pid {other})") from None
    os.ftruncate(fd, 0)
    os.write(fd, str(os.getpid()).encode())
    return fd


async def serve(config) -> int:
    from aiohttp import web

    from dockyard.engine.api.routes import all_routes
    from dockyard.engine.api.server import make_app
    from dockyard.engine.daemon import Daemon

    log = logging.getLogger("dockyard.engine")
    daemon = Daemon(config)
    await daemon.start()
    app = make_app(daemon, all_routes(daemon))
    runner = web.AppRunner(app, handle_signals=False, access_log=None,
                           shutdown_timeout=2.0)
    await runner.setup()
    for host in config.listen():
        if host.startswith("tcp://"):
            addr, _, port = host.removeprefix("tcp://").rpartition(":")
            ctx = _tls_context(config) if (config.tls or config.tlsverify) else None
            await web.TCPSite(runner, addr or "0.0.0.0", int(port or 2376),
                              ssl_context=ctx).start()
        else:
            path = _unix_path(host)
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
            await web.UnixSite(runner, path).start()
            try:
                gid = grp.getgrnam(config.group).gr_gid
            except KeyError:
                gid = 0
            os.chown(path, 0 if os.geteuid() == 0 else -1, gid if os.geteuid() == 0 else -1)
            os.chmod(path, 0o660)
        log.info("API listen on %s", host)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info("Daemon has completed initialization")
    await stop.wait()
    log.info("Processing signal 'terminated'")
    await daemon.close(stop_containers=not config.live_restore)
    await runner.cleanup()
    if not config.live_restore and not config.containerd:
        from dockyard.engine.supervisor import stop_managed

        await asyncio.to_thread(stop_managed, config.exec_root)
    for host in config.listen():
        if not host.startswith("tcp://"):
            try:
                os.unlink(_unix_path(host))
            except FileNotFoundError:
                pass
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.version:
        from dockyard import __version__

        print(f"Dockyard version {__version__}, build dockyard")
        return 0
    from dockyard.engine.config import ConfigError, load

    flags = {k: v for k, v in vars(args).items() if k not in ("config_file", "version")}
    try:
        config = load(args.config_file, flags)
    except ConfigError as e:
        sys.stderr.write(f"dockyardd: {e}\n")
        return 1
    if config.debug:
        config.log_level = "debug"
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(LogfmtFormatter())
    root = logging.getLogger("dockyard")
    root.addHandler(handler)
    root.setLevel(LEVELS.get(config.log_level, logging.INFO))
    root.propagate = False
    try:
        check_hosts(config)
        pid_fd = _lock_pidfile(config.pid_path)
    except SystemExit as e:
        sys.stderr.write(f"{e}\n")
        return 1
    try:
        return asyncio.run(serve(config))
    except Exception as e:
        logging.getLogger("dockyard.engine").error("%s", e)
        return 1
    finally:
        os.close(pid_fd)
        try:
            os.unlink(config.pid_path)
        except FileNotFoundError:
            pass


if __name__ == "__main__":
    sys.exit(main())
