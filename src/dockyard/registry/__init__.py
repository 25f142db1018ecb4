"""dockyard-registry: an OCI Distribution server. storage/ holds its storage drivers and the
on-disk layout it shares with the reference registry (distribution)."""
