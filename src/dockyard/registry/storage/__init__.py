"""Registry storage: driver.py (the StorageDriver interface and its errors), filesystem.py
(the local driver), paths.py (the layout, as distribution's filesystem driver writes it) and
blobs.py (repositories, blobs, manifests and tags on top of a driver)."""
