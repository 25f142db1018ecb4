"""Dockerfile builds served by the classic /build API."""
