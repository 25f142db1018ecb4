#!/usr/bin/env bash
# Installs everything Dockyard needs on a fresh Debian 12 machine (as root): Debian packages,
# then a .venv with the project and its test tools. Safe to run again: it skips what is there.
set -euo pipefail
cd "$(dirname "$0")/.."

DEBS=(busybox-static libseccomp2 iproute2 nftables runc podman skopeo hyperfine time
      uidmap crun umoci)
missing=()
for p in "${DEBS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.dockyard-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e '.[test]'
  touch "$stamp"
fi
# The runtime is started for every container: give it a launcher that skips site and
# pip's wrapper (which imports `re`), about 8 ms of a ~20 ms budget.
.venv/bin/python -m dockyard.launchers .venv/bin
