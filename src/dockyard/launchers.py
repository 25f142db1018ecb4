"""Lean launchers for the short-lived programs.

pip's console-script wrappers run the interpreter with `site` (and its .pth files) and import
`re` before our code starts: about 8 ms, which is a third of what `runc run /bin/true` takes.
These launchers run `python -I -S` with an explicit sys.path instead. `scripts/install.sh`
writes them over pip's wrappers; pip's remain valid entry points elsewhere.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import dockyard

LAUNCHERS = {"dockyard-runc": "dockyard.runtime.main"}

# os._exit skips the interpreter's teardown (~2 ms): these programs write through os.write
# or flushed streams and leave no thread behind.
TEMPLATE = """#!{python} -IS
import sys
sys.path[:0] = {paths!r}
from {module} import main
code = main() or 0
try:
    sys.stdout.flush()
    sys.stderr.flush()
except OSError:
    pass
import os
os._exit(code)
"""


def write(bindir: Path) -> None:
    src = str(Path(dockyard.__file__).resolve().parent.parent)
    python = os.path.join(str(bindir.resolve()), "python")
    for name, module in LAUNCHERS.items():
        path = bindir / name
        tmp = path.with_suffix(".tmp")
        tmp.write_text(TEMPLATE.format(python=python, paths=[src], module=module))
        tmp.chmod(0o755)
        tmp.rename(path)


if __name__ == "__main__":
    write(Path(sys.argv[1]))
