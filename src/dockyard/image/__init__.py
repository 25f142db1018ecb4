"""Images: OCI and Docker schema2 types, the content store, snapshotters, layers, image
metadata and archives. A library shared by the supervisor, the engine and the registry."""
