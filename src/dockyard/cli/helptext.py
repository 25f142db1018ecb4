"""Flag descriptions for --help (docker's words), imported only when help is asked for."""

FLAG_HELP = {
    "add-host": "Add a custom host-to-IP mapping (host:ip)",
    "all": "Show all (default shows just running)",
    "all-tags": "Download all tagged images in the repository",
    "attach": "Attach to STDIN, STDOUT or STDERR",
    "cap-add": "Add Linux capabilities", "cap-drop": "Drop Linux capabilities",
    "cgroup-parent": "Optional parent cgroup for the container",
    "cidfile": "Write the container ID to the file",
    "cpu-shares": "CPU shares (relative weight)", "cpus": "Number of CPUs",
    "cpuset-cpus": "CPUs in which to allow execution (0-3, 0,1)",
    "detach": "Run container in background and print container ID",
    "detach-keys": "Override the key sequence for detaching a container",
    "device": "Add a host device to the container",
    "digests": "Show digests", "dns": "Set custom DNS servers",
    "entrypoint": "Overwrite the default ENTRYPOINT of the image",
    "env": "Set environment variables", "env-file": "Read in a file of environment variables",
    "expose": "Expose a port or a range of ports",
    "filter": "Filter output based on conditions provided",
    "follow": "Follow log output",
    "force": "Force the removal of a running container (uses SIGKILL)",
    "format": "Format output using a custom template:\n"
              "'table':            Print output in table format with column headers (default)\n"
              "'table TEMPLATE':   Print output in table format using the given Go template\n"
              "'json':             Print in JSON format\n"
              "'TEMPLATE':         Print output using the given Go template",
    "hostname": "Container host name", "init": "Run an init inside the container",
    "input": "Read from tar archive file, instead of STDIN",
    "interactive": "Keep STDIN open even if not attached",
    "label": "Set meta data on a container", "last": "Show n last created containers",
    "latest": "Show the latest created container", "link": "Remove the specified link",
    "log-driver": "Logging driver for the container", "log-opt": "Log driver options",
    "memory": "Memory limit", "memory-swap": "Swap limit equal to memory plus swap",
    "mount": "Attach a filesystem mount to the container",
    "name": "Assign a name to the container",
    "network": "Connect a container to a network",
    "no-trunc": "Don't truncate output", "output": "Write to a file, instead of STDOUT",
    "password": "Password", "password-stdin": "Take the password from stdin",
    "pids-limit": "Tune container pids limit (set -1 for unlimited)",
    "platform": "Set platform if server is multi-platform capable",
    "privileged": "Give extended privileges to this container",
    "publish": "Publish a container's port(s) to the host",
    "publish-all": "Publish all exposed ports to random ports",
    "pull": 'Pull image before running ("always", "missing", "never")',
    "quiet": "Only display IDs", "read-only": "Mount the container's root filesystem as "
                                               "read only",
    "restart": "Restart policy to apply when a container exits",
    "rm": "Automatically remove the container and its associated anonymous volumes when it "
          "exits",
    "security-opt": "Security Options", "shm-size": "Size of /dev/shm",
    "sig-proxy": "Proxy received signals to the process",
    "signal": "Signal to send to the container", "since": "Show logs since timestamp "
                                                          "(e.g. 2013-01-02T13:23:37Z) or "
                                                          "relative (e.g. 42m for 42 minutes)",
    "size": "Display total file sizes", "stop-signal": "Signal to stop the container",
    "stop-timeout": "Timeout (in seconds) to stop a container",
    "tail": 'Number of lines to show from the end of the logs (default "all")',
    "timeout": "Seconds to wait before killing the container",
    "timestamps": "Show timestamps", "tmpfs": "Mount a tmpfs directory",
    "tty": "Allocate a pseudo-TTY", "ulimit": "Ulimit options",
    "until": "Show logs before a timestamp (e.g. 2013-01-02T13:23:37Z) or relative "
             "(e.g. 42m for 42 minutes)",
    "user": "Username or UID (format: <name|uid>[:<group|gid>])",
    "username": "Username", "volume": "Bind mount a volume",
    "volumes": "Remove anonymous volumes associated with the container",
    "volumes-from": "Mount volumes from the specified container(s)",
    "workdir": "Working directory inside the container",
}
