#!/usr/bin/env bash
# Installs everything Dockyard needs on a fresh Debian 12 machine (as root): Debian packages,
# then a .venv with the project and its test tools. Safe to run again: it skips what is there.
set -euo pipefail
cd "$(dirname "$0")/.."

DEBS=(busybox-static libseccomp2 iproute2 nftables conntrack runc podman skopeo hyperfine time
      uidmap crun umoci docker.io docker-registry)
missing=()
for p in "${DEBS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # No package may start a system-wide service (docker.io would start dockerd and containerd):
  # tests start their own, isolated. invoke-rc.d asks policy-rc.d; 101 means "not allowed".
  policy=/usr/sbin/policy-rc.d
  own_policy=
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    own_policy=1
    trap 'rm -f "$policy"' EXIT
  fi
  before=$(pgrep -x dockerd; pgrep -x containerd; pgrep -x docker-registry; true)
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  if [ -n "$own_policy" ]; then
    rm -f "$policy"
    trap - EXIT
  fi
  # Belt and braces, for an init that ignores policy-rc.d: a dockerd or containerd that the
  # install itself started (new since, by pid, and not an isolated test instance, whose
  # command line names its own exec root) is stopped.
  # A docker-registry counts only if it serves the service's /etc/docker/registry/config.yml:
  # test instances (tests/refregistry.py) serve a config of their own.
  for pid in $(pgrep -x dockerd; pgrep -x containerd; pgrep -x docker-registry; true); do
    cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)
    if ! grep -qx "$pid" <<<"$before" && [[ $cmdline != *exec-root* ]] \
        && [[ $cmdline != *containerd.toml* ]] \
        && { [[ $cmdline != *docker-registry* ]] || [[ $cmdline == */etc/docker/registry/* ]]; }; then
      echo "stopping $(cat "/proc/$pid/comm" 2>/dev/null) ($pid) that the install started"
      kill "$pid" 2>/dev/null || true
    fi
  done
  # docker-registry's postinst enables its service for the next boot (systemd unit and SysV
  # links): tests start their own registry, so a fresh install is disabled.
  if [[ " ${missing[*]} " == *" docker-registry "* ]]; then
    if command -v systemctl >/dev/null; then
      systemctl disable --quiet docker-registry.service >/dev/null 2>&1 || true
    elif command -v update-rc.d >/dev/null; then
      update-rc.d docker-registry disable >/dev/null 2>&1 || true
    fi
  fi
fi

PY=${PYTHON:-python3}
# dockyardd's socket is root:dockyard 0660, as dockerd's is root:docker.
getent group dockyard >/dev/null || groupadd --system dockyard

if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.dockyard-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e '.[test]'
  touch "$stamp"
fi
# Short-lived programs (the CLI, shims, the runtime) start faster from bytecode; write it now,
# as an interpreter run with PYTHONDONTWRITEBYTECODE never would.
.venv/bin/python -m compileall -q -j 0 src >/dev/null
# The runtime is started for every container: give it a launcher that skips site and
# pip's wrapper (which imports `re`), about 8 ms of a ~20 ms budget.
.venv/bin/python -m dockyard.launchers .venv/bin
