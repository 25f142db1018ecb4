"""`dockyardd`: the engine. It serves the Docker Engine API and keeps what Docker's daemon
keeps (container configurations, names, volumes, networks, events); containers themselves
run under dockyard-containerd, reached over gRPC in the namespace "moby"."""
