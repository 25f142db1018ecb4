"""The engine's images: Docker's view (IDs are config digests, names are familiar references)
of the images the supervisor holds in the namespace "moby"."""
