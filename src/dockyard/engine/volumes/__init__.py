"""Volumes: the local driver, and the mount points containers get (binds, volumes, tmpfs)."""
