"""Linux mechanisms the runtime drives: namespaces, mounts, cgroups, capabilities, seccomp."""
