"""`python -m dockyard.shim`, and the script spawn.start_shim runs as
`python -I -S <this file>`: with no site, the package's parent goes on sys.path here."""

import os
import sys

if not __package__:
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))))

from dockyard.shim.main import main

code = main() or 0
try:
    sys.stdout.flush()
    sys.stderr.flush()
except (OSError, ValueError):
    pass
os._exit(code)  # no interpreter teardown: nothing is left to flush, nothing to join
