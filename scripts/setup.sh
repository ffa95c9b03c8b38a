#!/usr/bin/env bash
# Set up everything tx2setup needs on a fresh Debian 12 machine: Debian packages for the
# emulated boards and the benchmark's GStreamer source, then a venv in .venv with the
# package and its dev extras (torch pinned to the local CPU wheel by constraints.txt).
# Idempotent: a second run installs nothing new.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  debootstrap systemd-container iproute2 openssh-client dpkg-dev   # emulated boards
  nftables                                                          # sim fault net-down/net-flaky
  apt-cacher-ng                                                     # provision: the boards' apt cache (docs/provision.md)
  gnupg                                                             # sim: signs its apt repository
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good
  gir1.2-gstreamer-1.0 gir1.2-gst-plugins-base-1.0
  libgirepository1.0-dev libcairo2-dev pkg-config                   # PyGObject in the venv
  chromium chromium-driver                                          # HTML report tests (headless, WebDriver)
)
if [ "$(id -u)" = 0 ]; then
  missing=()
  for p in "${APT_PACKAGES[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p"); done
  if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
else
  echo "setup.sh: not root; skipping Debian packages (emulated boards need root anyway)" >&2
fi

PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -c constraints.txt -e '.[dev]'
