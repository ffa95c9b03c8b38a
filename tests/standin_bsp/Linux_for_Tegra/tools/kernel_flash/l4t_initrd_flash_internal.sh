#!/bin/bash
# STAND-IN for NVIDIA's tools/kernel_flash/l4t_initrd_flash_internal.sh (tx2setup tests).
# --no-flash: "builds" the flash package (records the flash parameters in
# initrdflashparam.txt, as the real one does). --flash-only: "flashes" one board, printing
# the real steps and ending with "Flash is successful" or "Flash failure".

set -eo pipefail
L4T_INITRD_FLASH_DIR="$(cd "$(dirname "${0}")" && pwd)"
L4T_TOOLS_DIR="${L4T_INITRD_FLASH_DIR%/*}"
source "${L4T_TOOLS_DIR}/standin/standin.func"

if [ "$1" = "--no-flash" ]; then
	shift
	standin_step "Step 1: Build the flashing environment"
	standin_step "Create flash environment 0"
	standin_step "Finish creating flash environment 0."
	echo "$*" > "${L4T_INITRD_FLASH_DIR}/initrdflashparam.txt"
	standin_step "Success"
	exit 0
fi

usb_instance=""
device_instance=""
while [ $# -gt 0 ]; do
	case "$1" in
	--usb-instance) usb_instance="$2"; shift 2 ;;
	--device-instance) device_instance="$2"; shift 2 ;;
	--flash-only) shift ;;
	*) shift ;;
	esac
done

standin_step "Start flashing device: ${usb_instance}, rcm instance: ${device_instance}"
standin_step "Step 2: Boot the device with flash initrd image"
standin_step "[   0.0091 ] Sending bootloader and pre-requisite binaries"
standin_step "Waiting for target to boot-up..."
standin_step "Waiting for device to expose ssh ......"
standin_step "Step 3: Start the flashing process"
if standin_port_in "${usb_instance}" "${STANDIN_HANG_PORTS}"; then
	standin_hang
fi
standin_step "Writing partition APP ..."
if standin_port_in "${usb_instance}" "${STANDIN_FAIL_PORTS}"; then
	echo "Error: Could not stat device /dev/mmcblk0 - No such file or directory"
	echo "Flash failure"
	echo "Cleaning up..."
	exit 1
fi
standin_step "Successfully flash the emmc"
echo "Flash is successful"
echo "Reboot device"
echo "Cleaning up..."
