"""`dockyard`: docker's commands and flags. The dispatcher parses the global options by hand
and imports only the module of the command it runs (each import is start-up time).

    dockyard [-H HOST] [--config DIR] [--tls…] COMMAND [ARGS…]
    dockyard container ls  ==  dockyard ps     (management commands and their aliases)
"""

from __future__ import annotations

import os
import sys

# command → "module:function" under dockyard.cli
COMMANDS = {
    "version": "system:version", "info": "system:info", "events": "system:events",
    "ps": "containers:ps", "create": "run:create", "run": "run:run",
    "start": "lifecycle:start", "stop": "lifecycle:stop", "restart": "lifecycle:restart",
    "kill": "lifecycle:kill", "rm": "lifecycle:rm", "logs": "containers:logs",
    "wait": "lifecycle:wait", "rename": "lifecycle:rename", "pause": "lifecycle:pause",
    "unpause": "lifecycle:unpause", "inspect": "inspection:inspect",
    "attach": "run:attach", "exec": "run:exec_",
    "top": "containers:top", "port": "containers:port", "update": "lifecycle:update",
    "images": "images:images", "pull": "images:pull", "push": "images:push",
    "tag": "images:tag", "rmi": "images:rmi", "save": "images:save", "load": "images:load",
    "history": "images:history", "import": "images:import_", "search": "images:search",
    "login": "login:login", "logout": "login:logout",
    "cp": "files:cp", "diff": "files:diff", "export": "files:export", "commit": "files:commit",
    "stats": "stats:stats", "build": "build:build",
}

MANAGEMENT = {
    "container": {"ls": "containers:ps", "list": "containers:ps", "ps": "containers:ps",
                  "create": "run:create", "run": "run:run", "start": "lifecycle:start",
                  "stop": "lifecycle:stop", "restart": "lifecycle:restart",
                  "kill": "lifecycle:kill", "rm": "lifecycle:rm", "remove": "lifecycle:rm",
                  "logs": "containers:logs", "wait": "lifecycle:wait",
                  "rename": "lifecycle:rename", "pause": "lifecycle:pause",
                  "unpause": "lifecycle:unpause", "inspect": "inspection:inspect_container",
                  "attach": "run:attach", "exec": "run:exec_", "top": "containers:top",
                  "port": "containers:port", "prune": "containers:prune",
                  "update": "lifecycle:update", "cp": "files:cp", "diff": "files:diff",
                  "export": "files:export", "commit": "files:commit", "stats": "stats:stats"},
    "image": {"ls": "images:images", "list": "images:images", "pull": "images:pull",
              "push": "images:push", "tag": "images:tag", "rm": "images:rmi",
              "remove": "images:rmi", "save": "images:save", "load": "images:load",
              "inspect": "images:inspect_image", "history": "images:history",
              "prune": "images:prune", "import": "images:import_", "build": "build:build"},
    "network": {"create": "networks:create", "ls": "networks:ls", "list": "networks:ls",
                "inspect": "networks:inspect", "rm": "networks:rm", "remove": "networks:rm",
                "connect": "networks:connect", "disconnect": "networks:disconnect",
                "prune": "networks:prune"},
    "volume": {"create": "volumes:create", "ls": "volumes:ls", "list": "volumes:ls",
               "inspect": "volumes:inspect", "rm": "volumes:rm", "remove": "volumes:rm",
               "prune": "volumes:prune"},
    "system": {"info": "system:info", "events": "system:events", "df": "system:df",
               "prune": "system:prune"},
    "builder": {"prune": "system:builder_prune", "build": "build:build"},
}

GLOBAL_VALUE = {"-H": "host", "--host": "host", "--config": "config", "-c": "context",
                "--context": "context", "-l": "log_level", "--log-level": "log_level",
                "--tlscacert": "tlscacert", "--tlscert": "tlscert", "--tlskey": "tlskey"}
GLOBAL_BOOL = {"-D": "debug", "--debug": "debug", "--tls": "tls", "--tlsverify": "tlsverify"}

USAGE = """
Usage:  dockyard [OPTIONS] COMMAND

A self-sufficient runtime for containers

Common Commands:
  run         Create and run a new container from an image
  exec        Execute a command in a running container
  ps          List containers
  build       Build an image from a Dockerfile
  images      List images
  pull        Download an image from a registry
  push        Upload an image to a registry
  login       Authenticate to a registry
  logout      Log out from a registry
  version     Show the Docker version information
  info        Display system-wide information

Management Commands:
  builder     Manage builds
  container   Manage containers
  image       Manage images
  network     Manage networks
  system      Manage Docker
  volume      Manage volumes

Global Options:
      --config string      Location of client config files
  -c, --context string     Name of the context to use
  -D, --debug              Enable debug mode
  -H, --host string        Daemon socket to connect to
  -l, --log-level string   Set the logging level
      --tls                Use TLS; implied by --tlsverify
      --tlscacert string   Trust certs signed only by this CA
      --tlscert string     Path to TLS certificate file
      --tlskey string      Path to TLS key file
      --tlsverify          Use TLS and verify the remote
  -v, --version            Print version information and quit
"""


class Cli:
    """What every command gets: the streams, the global options and a lazy API client."""

    def __init__(self, options: dict) -> None:
        self.options = options
        self.out = sys.stdout
        self.err = sys.stderr
        self._client = None
        self.debug = bool(options.get("debug"))

    @property
    def host(self) -> str:
        from dockyard.client.transport import DEFAULT_HOST

        return self.options.get("host") or os.environ.get("DOCKER_HOST") or DEFAULT_HOST

    @property
    def client(self):
        if self._client is None:
            from dockyard.client.api import APIClient

            o = self.options
            certs = {"ca": o.get("tlscacert"), "cert": o.get("tlscert"), "key": o.get("tlskey")}
            self._client = APIClient.from_env(
                self.host, tls=bool(o.get("tls")), tlsverify=bool(o.get("tlsverify")),
                cert_path=certs if any(certs.values()) else None)
        return self._client


def _parse_globals(argv: list[str]) -> tuple[dict, list[str]]:
    options: dict = {}
    i = 0
    while i < len(argv):
        a = argv[i]
        name, eq, value = a.partition("=")
        if name in GLOBAL_VALUE:
            if not eq:
                i += 1
                if i >= len(argv):
                    raise SystemExit(_usage_error(f"flag needs an argument: {name}"))
                value = argv[i]
            options[GLOBAL_VALUE[name]] = value
        elif a.startswith("-H") and len(a) > 2:
            options["host"] = a[2:]
        elif a in GLOBAL_BOOL:
            options[GLOBAL_BOOL[a]] = True
        elif a in ("-v", "--version"):
            options["version"] = True
        elif a in ("-h", "--help"):
            options["help"] = True
        elif a.startswith("-") and a != "-":
            raise SystemExit(_usage_error(f"unknown flag: {a}" if a.startswith("--")
                                          else f"unknown shorthand flag: '{a[1]}' in {a}"))
        else:
            break
        i += 1
    return options, argv[i:]


def _usage_error(message: str) -> int:
    sys.stderr.write(f"{message}\nSee 'dockyard --help'.\n")
    return 125


def _resolve(args: list[str]) -> tuple[str | None, list[str], str]:
    if not args:
        return None, [], ""
    name = args[0]
    if name in MANAGEMENT and len(args) > 1 and args[1] in MANAGEMENT[name]:
        return MANAGEMENT[name][args[1]], args[2:], f"{name} {args[1]}"
    if name in MANAGEMENT:
        return None, args[1:], name
    return COMMANDS.get(name), args[1:], name


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        options, rest = _parse_globals(argv)
    except SystemExit as e:
        return int(e.code or 0)
    if options.get("config"):
        os.environ["DOCKER_CONFIG"] = options["config"]
    if options.get("version"):
        from dockyard import __version__

        sys.stdout.write(f"Dockyard version {__version__}, build dockyard\n")
        return 0
    target, args, name = _resolve(rest)
    if target is None:
        if not rest or options.get("help") or rest[0] == "help":
            sys.stdout.write(USAGE)
            return 0
        if rest[0] in MANAGEMENT:
            sub = f" {rest[1]}" if len(rest) > 1 else ""
            if sub:
                sys.stderr.write(f'dockyard: unknown command: dockyard {rest[0]}{sub}\n\n'
                                 f"Run 'dockyard {rest[0]} --help' for more information\n")
                return 1
            sys.stdout.write(f"\nUsage:  dockyard {rest[0]} COMMAND\n\nCommands:\n" + "".join(
                f"  {c}\n" for c in sorted(MANAGEMENT[rest[0]])))
            return 0
        sys.stderr.write(f"dockyard: unknown command: dockyard {rest[0]}\n\n"
                         "Run 'dockyard --help' for more information\n")
        return 1
    cli = Cli(options)
    return run_command(cli, target, name, args)


def run_command(cli: Cli, target: str, name: str, args: list[str]) -> int:
    module, _, func = target.partition(":")
    fn = getattr(__import__(f"dockyard.cli.{module}", fromlist=[func]), func)
    from dockyard.cli.flags import HelpRequested, UsageError

    try:
        return fn(cli, args, name) or 0
    except HelpRequested:
        spec = getattr(fn, "spec", None)
        cli.out.write(spec.help_text() if spec else USAGE)
        return 0
    except UsageError as e:
        cli.err.write(f"{e}\n")
        return e.status
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except Exception as e:
        return report(cli, e)


def report(cli: Cli, e: Exception) -> int:
    """Docker's words for what went wrong; the exit status."""
    from dockyard.cli.flags import CommandError
    from dockyard.cli.template import TemplateError
    from dockyard.client.api import APIError, DaemonUnreachable

    if isinstance(e, APIError):
        cli.err.write(f"Error response from daemon: {e.message}\n")
        return 1
    if isinstance(e, DaemonUnreachable):
        cli.err.write(f"{e}\n")
        return 1
    if isinstance(e, TemplateError):
        cli.err.write(f"template parsing error: {e}\n")
        return 1
    if isinstance(e, CommandError):
        cli.err.write(f"{e}\n" if str(e) else "")
        return e.status
    raise e


if __name__ == "__main__":
    sys.exit(main())
