"""Dockyard: a container engine that does what the Docker Engine does."""

__version__ = "0.1.0"
