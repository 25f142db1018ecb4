"""dockyard-registry: serve the registry, as the reference's `registry serve` does.

    dockyard-registry serve [config.yml] [--addr 127.0.0.1:5000] [--root DIR] [--delete]
    dockyard-registry garbage-collect [config.yml] [--root DIR] [--dry-run] [--delete-untagged]
                                      [--purge-uploads-after HOURS]
    dockyard-registry token-server --addr HOST:PORT --key KEY.pem --issuer NAME --service NAME
                                   [--htpasswd FILE] [--ttl SECONDS]
    dockyard-registry --version

`token-server` is the token endpoint a registry with `auth: token:` sends clients to (its
realm is `http(s)://HOST:PORT/token`); the registry trusts it through the certificate of KEY
in its `rootcertbundle`. Users in the htpasswd file get what they ask for, anonymous ones
pull only.

Command-line flags override the config file. The process serves until SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import ssl
import sys
from dataclasses import replace
from importlib import metadata

from aiohttp import web

from dockyard.registry.config import Config, ConfigError, load
from dockyard.registry.server import make_app
from dockyard.registry.storage.blobs import RegistryStore
from dockyard.registry.storage.filesystem import FilesystemDriver

_LEVELS = {"error": logging.ERROR, "warn": logging.WARNING, "info": logging.INFO,
           "debug": logging.DEBUG}


def version() -> str:
    try:
        return metadata.version("dockyard")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def ssl_context(config: Config) -> ssl.SSLContext | None:
    if config.tls is None:
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(config.tls.certificate, config.tls.key)
    return ctx


def access_for(config: Config):  # -> an access controller, or None for open access
    """The controller `auth:` names: htpasswd (Basic) or token (Bearer JWTs signed by a key
    whose certificate is in `rootcertbundle`)."""
    from dockyard.registry.auth.access import HtpasswdAccess, TokenAccess
    from dockyard.registry.auth.htpasswd import Htpasswd
    from dockyard.registry.auth.token import TokenVerifier

    if config.htpasswd is not None:
        return HtpasswdAccess(Htpasswd(config.htpasswd.path), config.htpasswd.realm)
    if config.token is not None:
        from cryptography import x509

        t = config.token
        try:
            with open(t.rootcertbundle, "rb") as f:
                certs = x509.load_pem_x509_certificates(f.read())
        except ValueError as e:
            raise ConfigError(f"auth.token.rootcertbundle: {e}") from None
        verifier = TokenVerifier([c.public_key() for c in certs], t.issuer, t.service)
        return TokenAccess(verifier, t.realm, t.service)
    return None


async def serve(config: Config, ready: asyncio.Event | None = None) -> None:
    store = RegistryStore(FilesystemDriver(config.rootdirectory))
    app = make_app(store, access=access_for(config), delete_enabled=config.delete_enabled,
                   log=logging.getLogger("dockyard.registry"))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    host, port = config.host_port()
    site = web.TCPSite(runner, host, port, ssl_context=ssl_context(config))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    purger = (asyncio.ensure_future(purge_uploads_every(store, config))
              if config.upload_purging.enabled else None)
    try:
        await site.start()
        scheme = "https" if config.tls else "http"
        print(f"dockyard-registry {version()} listening on {scheme}://{host}:{port} "
              f"(root {config.rootdirectory})", file=sys.stderr, flush=True)
        if ready is not None:
            ready.set()
        await stop.wait()
    finally:
        if purger is not None:
            purger.cancel()
        await runner.cleanup()


async def purge_uploads_every(store: RegistryStore, config: Config) -> None:
    """storage.maintenance.uploadpurging: abandoned uploads go, once now and then every
    interval, as the reference registry's purger does."""
    from dockyard.registry.gc import purge_uploads

    p = config.upload_purging
    log = logging.getLogger("dockyard.registry")
    while True:
        try:
            stale = await asyncio.to_thread(purge_uploads, store.driver, older_than=p.age,
                                            dry_run=p.dryrun)
            for repo, upload in stale:
                log.info("upload purge%s: %s %s", " (dry run)" if p.dryrun else "", repo,
                         upload)
        except OSError as e:
            log.warning("upload purge failed: %s", e)
        await asyncio.sleep(p.interval.total_seconds())


def garbage_collect(args: argparse.Namespace) -> int:
    """As `registry garbage-collect`: what is marked, what goes, and the totals."""
    from datetime import timedelta

    from dockyard.registry.gc import collect, purge_uploads

    try:
        config = load(args.config) if args.config else Config()
        driver = FilesystemDriver(args.root or config.rootdirectory)
        stale = purge_uploads(driver, older_than=timedelta(hours=args.purge_uploads_after),
                              dry_run=args.dry_run)
        report = collect(driver, dry_run=args.dry_run, delete_untagged=args.delete_untagged)
    except (ConfigError, OSError) as e:
        print(f"dockyard-registry: {e}", file=sys.stderr)
        return 1
    for repo, upload in stale:
        print(f"{repo}: upload eligible for purge: {upload}")
    for repo, digest in report.deleted_manifests:
        print(f"{repo}: manifest eligible for deletion: {digest}")
    for digest in report.deleted_blobs:
        print(f"blob eligible for deletion: {digest}")
    print(f"{len(report.marked)} blobs marked, {len(report.deleted_blobs)} blobs and "
          f"{len(report.deleted_manifests)} manifests eligible for deletion"
          + (" (dry run: nothing deleted)" if args.dry_run else
             f", {report.bytes_freed} bytes freed"))
    return 0


def token_server(args: argparse.Namespace) -> int:
    from cryptography.hazmat.primitives import serialization

    from dockyard.registry.auth.htpasswd import Htpasswd
    from dockyard.registry.auth.token import TokenIssuer
    from dockyard.registry.auth.tokenserver import token_app

    try:
        with open(args.key, "rb") as f:
            key = serialization.load_pem_private_key(f.read(), password=None)
        host, _, port = args.addr.rpartition(":")
        issuer = TokenIssuer(key, args.issuer, args.service, ttl=args.ttl)  # type: ignore[arg-type]
        users = Htpasswd(args.htpasswd) if args.htpasswd else None
        web.run_app(token_app(issuer, users), host=host or "127.0.0.1", port=int(port),
                    print=lambda msg: print(msg, file=sys.stderr), access_log=None)
    except (OSError, ValueError, TypeError) as e:
        print(f"dockyard-registry: {e}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dockyard-registry",
                                     description="an OCI distribution registry")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command")
    s = sub.add_parser("serve", help="serve the registry")
    s.add_argument("config", nargs="?", help="config.yml, as the reference registry's")
    s.add_argument("--addr", help="listen on [host]:port (overrides http.addr)")
    s.add_argument("--root", help="storage root directory (overrides "
                                  "storage.filesystem.rootdirectory)")
    s.add_argument("--delete", action="store_true", help="enable deletes")
    g = sub.add_parser("garbage-collect", help="delete blobs no manifest references")
    g.add_argument("config", nargs="?")
    g.add_argument("--root")
    g.add_argument("-d", "--dry-run", action="store_true")
    g.add_argument("-m", "--delete-untagged", action="store_true")
    g.add_argument("--purge-uploads-after", type=float, default=168, metavar="HOURS",
                   help="remove uploads started this long ago (168: the reference's week)")
    t = sub.add_parser("token-server", help="serve the token endpoint of bearer auth")
    t.add_argument("--addr", required=True)
    t.add_argument("--key", required=True, help="PEM private key (EC P-256 or RSA)")
    t.add_argument("--issuer", required=True)
    t.add_argument("--service", required=True)
    t.add_argument("--htpasswd")
    t.add_argument("--ttl", type=int, default=300)
    args = parser.parse_args(argv)
    if args.version:
        print(f"dockyard-registry {version()}")
        return 0
    if args.command == "garbage-collect":
        return garbage_collect(args)
    if args.command == "token-server":
        return token_server(args)
    if args.command != "serve":
        parser.print_help(sys.stderr)
        return 2
    try:
        config = load(args.config) if args.config else Config()
        if args.addr:
            config = replace(config, addr=args.addr)
        if args.root:
            config = replace(config, rootdirectory=args.root)
        if args.delete:
            config = replace(config, delete_enabled=True)
        config.host_port()
    except (ConfigError, OSError) as e:
        print(f"dockyard-registry: {e}", file=sys.stderr)
        return 1
    logging.basicConfig(level=_LEVELS[config.log_level], stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        asyncio.run(serve(config))
    except (ConfigError, OSError, ssl.SSLError) as e:
        print(f"dockyard-registry: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
