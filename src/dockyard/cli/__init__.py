"""`dockyard`: docker's commands and flags over the Engine API client (dockyard.client).
main.py dispatches; each command group is a module imported only when one of its commands
runs."""
