#!/usr/bin/env bash
# Runs the whole test suite (installing first if needed). Root tests need root; as another
# user they are skipped with the reason.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
.venv/bin/ruff check src tests bench
exec .venv/bin/python -m pytest -q "$@"
