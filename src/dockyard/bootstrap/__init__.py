"""Root filesystems and bundles made from the host, with no network: the embedded default."""
