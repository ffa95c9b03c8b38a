"""STAND-IN ZED SDK installers, one per L4T the matrix pairs with a ZED SDK.

The real ZED_SDK_Tegra_L4T<maj.min>_v<ver>.zstd.run is a makeself archive run as
`./ZED_SDK_...run -- silent skip_tools`; it refuses a board whose /etc/nv_tegra_release
names another L4T and installs /usr/local/zed. The stand-in is a shell script with the
same arguments and failure, and installs /usr/local/zed with the version where the real
SDK keeps it: include/sl/Camera.hpp's ZED_SDK_MAJOR_VERSION / _MINOR_ / _PATCH_VERSION
defines (also as a plain line in /usr/local/zed/version.txt).
"""

from __future__ import annotations

from pathlib import Path

from tx2setup.matrix import Matrix, Release, version_key
from tx2setup.sim.inventory import zed_file

CONTENT_VERSION = 1

TEMPLATE = r"""#!/bin/sh
# STAND-IN (tx2setup sim) for the ZED SDK @VERSION@ installer for Jetson L4T @L4T@.
# Same arguments as the real makeself installer: [-- silent] [skip_tools] [skip_python] ...
set -e
SILENT=0; TOOLS=1
for arg in "$@"; do
  case "$arg" in
    --) ;;
    silent) SILENT=1 ;;
    skip_tools) TOOLS=0 ;;
    skip_python|skip_cuda|skip_od_module|skip_drivers|runtime_only) ;;
    *) echo "ZED SDK installer: unknown option $arg" >&2; exit 1 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "ZED SDK installer: please run as root (or with sudo)" >&2; exit 1; }
if [ "$SILENT" = 0 ] && [ -t 0 ]; then
  printf 'Do you agree with the ZED SDK license? [y/n] '; read -r ans; [ "$ans" = y ] || exit 1
fi
REL=$(head -n 1 /etc/nv_tegra_release 2>/dev/null || true)
MAJOR=$(echo "$REL" | sed -n 's/^# R\([0-9]*\) (release), REVISION: \([0-9]*\)\..*/\1/p')
MINOR=$(echo "$REL" | sed -n 's/^# R\([0-9]*\) (release), REVISION: \([0-9]*\)\..*/\2/p')
if [ -z "$MAJOR" ]; then
  echo "Error: could not read the Jetson L4T version from /etc/nv_tegra_release" >&2; exit 1
fi
if [ "$MAJOR.$MINOR" != "@L4T@" ]; then
  echo "Error: this ZED SDK is built for Jetson L4T @L4T@ but the board runs L4T $MAJOR.$MINOR." >&2
  echo "Download the ZED SDK for your L4T version from https://www.stereolabs.com/developers/release" >&2
  exit 1
fi
rm -rf /usr/local/zed
mkdir -p /usr/local/zed/include/sl /usr/local/zed/lib /usr/local/zed/settings /usr/local/zed/resources
cat > /usr/local/zed/include/sl/Camera.hpp <<'EOF_HPP'
// STAND-IN (tx2setup sim): version header of the ZED SDK @VERSION@ (no camera API here)
#ifndef __CAMERA_HPP__
#define __CAMERA_HPP__
#define ZED_SDK_MAJOR_VERSION @MAJOR@
#define ZED_SDK_MINOR_VERSION @MINOR@
#define ZED_SDK_PATCH_VERSION @PATCH@
#endif
EOF_HPP
echo "@VERSION@" > /usr/local/zed/version.txt
echo "STAND-IN (tx2setup sim): ZED SDK @VERSION@ for L4T @L4T@" > /usr/local/zed/lib/README.STAND-IN
if [ "$TOOLS" = 1 ]; then
  mkdir -p /usr/local/zed/tools
  printf '#!/bin/sh\necho "ZED_Explorer STAND-IN (tx2setup sim): no camera" >&2\nexit 1\n' \
    > /usr/local/zed/tools/ZED_Explorer
  chmod +x /usr/local/zed/tools/ZED_Explorer
fi
echo "ZED SDK @VERSION@ installed in /usr/local/zed (STAND-IN, tx2setup sim)"
"""


def installer(rel: Release) -> str:
    assert rel.zed_sdk is not None
    major, minor, patch = ([*version_key(rel.zed_sdk.version), 0, 0])[:3]
    text = TEMPLATE
    for key, value in {
        "VERSION": rel.zed_sdk.version,
        "L4T": rel.l4t_major_minor,
        "MAJOR": str(major),
        "MINOR": str(minor),
        "PATCH": str(patch),
    }.items():
        text = text.replace(f"@{key}@", value)
    return text


def build(dest: Path, matrix: Matrix) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    for rel in matrix.releases:
        name = zed_file(rel)
        if name is None:
            continue
        path = dest / name
        path.write_text(installer(rel))
        path.chmod(0o755)
