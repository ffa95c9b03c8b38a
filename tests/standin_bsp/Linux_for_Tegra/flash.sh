#!/bin/bash
# STAND-IN for NVIDIA's Linux_for_Tegra/flash.sh, for tx2setup's tests. It flashes nothing.
# Kept from the real tool: the command line (options, then <target_board> <rootdev>), the
# "Invalid target board" check against <board>.conf, the rootdev check, the root check,
# the BSP banner from nv_tegra/bsp_version, "probing the target board failed" when no
# board is in recovery mode, the progress lines, the success line and the exit codes.
# Instead of talking to the board over USB (tegrarcm) it looks in $STANDIN_SYSFS.
# Knobs: STANDIN_FAIL_PORTS, STANDIN_HANG_PORTS, STANDIN_DELAY, STANDIN_CALLS (README.md).

set -o pipefail
LDK_DIR=$(cd "$(dirname "$0")" && pwd)
source "${LDK_DIR}/tools/standin/standin.func"
standin_log_call "flash.sh $*"
INFODIVIDER="###############################################################################"

usage()
{
	cat <<USAGE
Usage: sudo ./flash.sh [options] <target_board> <rootdev>
  Where,
	target board: Valid target board name.
	rootdev: Proper root device.
  options:
	--usb-instance <id> --- Specify the USB instance to connect to; the USB port path (e.g. 3-14).
	-r ------------------ skip building and reuse existing system.img.
	--no-flash ---------- perform all steps except physically flashing the board.
USAGE
	exit 1
}

usb_instance=""
no_flash=0
while [ $# -gt 2 ]; do
	case "$1" in
	--usb-instance) usb_instance="$2"; shift 2 ;;
	--no-flash) no_flash=1; shift ;;
	-r|--no-systemimg) shift ;;
	-k|-c|-C|-d|-S|-K|-L|-I|-R|-u|-v) shift 2 ;;
	-*) echo "Error: unknown option $1"; usage ;;
	*) break ;;
	esac
done
[ $# -eq 2 ] || usage
ext_target_board="$1"
target_rootdev="$2"

if [ ! -r "${LDK_DIR}/${ext_target_board}.conf" ]; then
	echo "Error: Invalid target board - ${ext_target_board}."
	usage
fi
source "${LDK_DIR}/${ext_target_board}.conf"

case "${target_rootdev}" in
mmcblk0p1|mmcblk1p1|internal|external|nvme0n1p1|sda1|eth0) ;;
*) echo "Error: Invalid target rootdev(${target_rootdev})."; usage ;;
esac

if [ "$(id -u)" -ne 0 ]; then
	echo "flash.sh requires root privilege"
	exit 1
fi

echo "${INFODIVIDER}"
echo "# L4T BSP Information:"
if [ -f "${LDK_DIR}/nv_tegra/bsp_version" ]; then
	source "${LDK_DIR}/nv_tegra/bsp_version"
	echo "# R${BSP_BRANCH} , REVISION: ${BSP_MAJOR}.${BSP_MINOR}"
else
	echo "# Unknown Release"
fi
echo "${INFODIVIDER}"

# The real tool reads the board's ECID over USB here; no board, no answer.
port=""
for p in $(standin_devpaths); do
	if [ -z "${usb_instance}" ] || [ "${usb_instance}" = "${p}" ]; then
		port="${p}"
		break
	fi
done
if [ -z "${port}" ] && [ "${no_flash}" = "0" ]; then
	echo "Error: probing the target board failed."
	echo "       Make sure the target board is connected through"
	echo "       USB port and is in recovery mode."
	exit 1
fi
echo "# Target Board Information:"
echo "# Name: ${ext_target_board}, Board Family: ${target_board}, SoC: Tegra ${CHIPID}, "
echo "# OS Type: linux, Boot Device Type: emmc, Rootfs Device: ${target_rootdev} (USB port ${port:-none})"
echo "${INFODIVIDER}"
standin_step "copying bctfile(${LDK_DIR}/bootloader/${target_board}/BCT/standin.cfg)... done."
standin_step "Making system.img... "
standin_step "	populating rootfs from ${LDK_DIR}/rootfs ... 	populating /boot/extlinux/extlinux.conf ... done."
standin_step "	Sync'ing system.img ... done."
standin_step "	Converting RAW image to Sparse image... done."
standin_step "system.img built successfully. "
if [ "${no_flash}" = "1" ]; then
	echo "*** no-flash flag enabled. Exiting now... *** "
	exit 0
fi
standin_step "*** Flashing target device started. ***"
standin_step "[   0.0035 ] Generating RCM messages"
standin_step "[   1.2081 ] Boot Rom communication"
standin_step "[   2.5102 ] Sending bootloader and pre-requisite binaries"
if standin_port_in "${port}" "${STANDIN_HANG_PORTS}"; then
	standin_hang
fi
standin_step "[  12.8821 ] Writing partition secure-os with tos-mon-only.img"
if standin_port_in "${port}" "${STANDIN_FAIL_PORTS}"; then
	echo "[  13.0020 ] Writing partition APP with system.img"
	echo "[  13.4471 ] ERROR: might be timeout in USB write."
	echo "Error: Return value 3"
	echo "Command tegradevflash_v2 --pt flash.xml.bin --create"
	echo "Failed flashing t186ref."
	exit 1
fi
standin_step "[  13.0020 ] Writing partition APP with system.img"
standin_step "[ 180.5012 ] Coldbooting the device"
echo "*** The target ${target_board} has been flashed successfully. ***"
echo "Reset the board to boot from internal eMMC."
exit 0
