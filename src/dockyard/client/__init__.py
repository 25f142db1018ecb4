"""The Engine API client: a socket transport, version negotiation, Docker's error bodies,
hijacked streams and their demultiplexer, registry credentials from the docker config."""
