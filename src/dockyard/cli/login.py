"""login and logout: credentials checked by the daemon (POST /auth), kept in the docker
config (DOCKER_CONFIG or ~/.docker/config.json) where pull and push find them."""

from __future__ import annotations

import sys

from dockyard.cli.flags import Command, CommandError, Flag
from dockyard.client import auth

LOGIN = Command("login", "[OPTIONS] [SERVER]",
                "Authenticate to a registry.\nDefaults to Docker Hub if no server is specified.",
                [Flag("p", "password", str), Flag(None, "password-stdin", bool),
                 Flag("u", "username", str)], max_args=1)


def _server(args: list[str]) -> str:
    if not args or args[0] in ("docker.io", "index.docker.io", "registry-1.docker.io"):
        return auth.INDEX_SERVER
    server = args[0]
    for prefix in ("https://", "http://"):
        server = server.removeprefix(prefix)
    return server.rstrip("/")


def login(cli, argv: list[str], name: str = "login") -> int:
    opts, args = LOGIN.parse(argv)
    server = _server(args)
    password = opts.password
    if opts.password_stdin:
        if password:
            raise CommandError("--password and --password-stdin are mutually exclusive")
        if not opts.username:
            raise CommandError("Must provide --username with --password-stdin")
        password = sys.stdin.read().rstrip("\r\n")
    elif password:
        cli.err.write("WARNING! Using --password via the CLI is insecure. Use "
                      "--password-stdin.\n")
    username = opts.username
    if not username:
        if not sys.stdin.isatty():
            raise CommandError("Error: Cannot perform an interactive login from a non TTY "
                               "device")
        cli.out.write("Username: ")
        cli.out.flush()
        username = sys.stdin.readline().strip()
    if not password:
        if not sys.stdin.isatty():
            raise CommandError("Error: Cannot perform an interactive login from a non TTY "
                               "device")
        import getpass

        password = getpass.getpass("Password: ")
    if not username:
        raise CommandError("Error: Non-null Username Required")
    r = cli.client.post("/auth", None, {"username": username, "password": password,
                                        "serveraddress": server}) or {}
    token = r.get("IdentityToken") or ""
    auth.store(server, username, password if not token else "", token)
    cli.err.write(f"WARNING! Your credentials are stored unencrypted in "
                  f"'{auth.config_path()}'.\nConfigure a credential helper to remove this "
                  "warning. See\nhttps://docs.docker.com/go/credential-store/\n\n")
    cli.out.write((r.get("Status") or "Login Succeeded") + "\n")
    return 0


login.spec = LOGIN

LOGOUT = Command("logout", "[SERVER]",
                 "Log out from a registry.\nIf no server is specified, the default is "
                 "defined by the daemon.", [], max_args=1)


def logout(cli, argv: list[str], name: str = "logout") -> int:
    _, args = LOGOUT.parse(argv)
    server = _server(args)
    if not auth.erase(server):
        cli.out.write(f"Not logged in to {server}\n")
        return 0
    cli.out.write(f"Removing login credentials for {server}\n")
    return 0


logout.spec = LOGOUT
