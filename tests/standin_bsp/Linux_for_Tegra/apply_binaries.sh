#!/bin/bash
# STAND-IN for NVIDIA's Linux_for_Tegra/apply_binaries.sh, for tx2setup's tests. Kept from
# the real tool: options (-r/--root, -t/--target-overlay, -b/--bsp, --openrm, -h), the
# root check, the "rootfs has to be extracted" error, the progress lines, "Success!" and
# the exit codes. Instead of installing NVIDIA's .debs into the rootfs it installs
# extlinux.conf and writes etc/nv_tegra_release. Knobs: STANDIN_APPLY_FAIL, STANDIN_CALLS.

set -e
set -o pipefail
LDK_DIR=$(cd "$(dirname "$0")" && pwd)
source "${LDK_DIR}/tools/standin/standin.func"
standin_log_call "apply_binaries.sh $*"
SCRIPT_NAME=$(basename "$0")

ShowUsage()
{
	echo "Use: $1 [--bsp|-b PATH] [--root|-r PATH] [--target-overlay] [--openrm] [--help|-h]"
}

TGETOPT=$(getopt -n "$SCRIPT_NAME" --longoptions help,bsp:,debug,openrm,target-overlay,root: -o b:r:dht -- "$@") || {
	echo "Terminating... wrong switch"
	ShowUsage "$SCRIPT_NAME"
	exit 1
}
eval set -- "$TGETOPT"
while [ $# -gt 0 ]; do
	case "$1" in
	-r|--root) LDK_ROOTFS_DIR="$2"; shift ;;
	-h|--help) ShowUsage "$SCRIPT_NAME"; exit 1 ;;
	-b|--bsp) shift ;;
	-d|--debug|-t|--target-overlay|--openrm) ;;
	--) shift; break ;;
	esac
	shift
done
if [ $# -gt 0 ]; then
	ShowUsage "$SCRIPT_NAME"
	exit 1
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "This script requires root privilege"
	exit 1
fi
LDK_ROOTFS_DIR="${LDK_ROOTFS_DIR:-${LDK_DIR}/rootfs}"
echo "Using rootfs directory of: ${LDK_ROOTFS_DIR}"
if [ ! -f "${LDK_ROOTFS_DIR}/etc/passwd" ]; then
	echo "||||||||||||||||||||||| ERROR |||||||||||||||||||||||"
	echo "1. The root filesystem, provided with this package,"
	echo "   has to be extracted to this directory:"
	echo "   ${LDK_ROOTFS_DIR}"
	echo "|||||||||||||||||||||||||||||||||||||||||||||||||||||"
	exit 1
fi
if [ -f "${LDK_DIR}/bootloader/extlinux.conf" ]; then
	echo "Installing extlinux.conf into /boot/extlinux in target rootfs"
	mkdir -p "${LDK_ROOTFS_DIR}/boot/extlinux/"
	install --mode=644 -D "${LDK_DIR}/bootloader/extlinux.conf" "${LDK_ROOTFS_DIR}/boot/extlinux/"
fi
echo "${LDK_DIR}/nv_tegra/nv-apply-debs.sh"
standin_step "Installing BSP Debian packages in ${LDK_ROOTFS_DIR}"
if [ "${STANDIN_APPLY_FAIL}" = "1" ]; then
	echo "dpkg: error processing package nvidia-l4t-core (--install):"
	echo " installed nvidia-l4t-core package pre-installation script subprocess returned error exit status 1"
	exit 1
fi
source "${LDK_DIR}/nv_tegra/bsp_version"
echo "# R${BSP_BRANCH} (release), REVISION: ${BSP_MAJOR}.${BSP_MINOR}, GCID: 00000000, BOARD: t186ref, EABI: aarch64, DATE: STAND-IN" \
	> "${LDK_ROOTFS_DIR}/etc/nv_tegra_release"
echo "Removing QEMU binary from rootfs"
echo "Removing stashed Debian packages from rootfs"
echo "L4T BSP package installation completed!"
echo "Disabling NetworkManager-wait-online.service"
echo "Disable the ondemand service by changing the runlevels to 'K'"
echo "Success!"
