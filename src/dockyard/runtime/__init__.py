"""`dockyard-runc`: an OCI runtime, drop-in for runc."""
