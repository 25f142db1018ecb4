"""Image archives: Docker's `docker save` format and the OCI image layout, both directions."""
