"""Tests of the build package."""
