#!/bin/bash
# STAND-IN for NVIDIA's tools/kernel_flash/l4t_initrd_flash.sh, for tx2setup's tests. It
# flashes nothing. Kept from the real tool: the options (--no-flash, --flash-only,
# --massflash [N], --usb-instance, --external-device, -c, -p, --network, --showlogs),
# the flow (build the flash package with l4t_initrd_flash_internal.sh --no-flash, find
# the boards in recovery mode, start one child per board writing
# initrdlog/flash_<port>_<instance>_<timestamp>.log, wait for them) and its messages
# ("Start flashing device: ...", "Log will be saved to ...", "No devices to flash",
# "Too many devices in RCM mode", "Flash complete (WITH FAILURES)") and exit codes.
# Boards are found in $STANDIN_SYSFS instead of /sys. Partition layouts given with -c and
# -p "-c ..." must exist (stub .xml files at the R35/R36 paths). Knobs: see ../../README.md.

set -eo pipefail
L4T_INITRD_FLASH_DIR="$(cd "$(dirname "${0}")" && pwd)"
L4T_TOOLS_DIR="${L4T_INITRD_FLASH_DIR%/*}"
LINUX_BASE_DIR="${L4T_TOOLS_DIR%/*}"
source "${L4T_TOOLS_DIR}/standin/standin.func"
standin_log_call "l4t_initrd_flash.sh $*"
INITRD_FLASHPARAM="initrdflashparam.txt"
DEFAULT_MAX_MASSFLASH=10
flash_cmd="${L4T_INITRD_FLASH_DIR}/l4t_initrd_flash_internal.sh"

usage()
{
	echo "Usage: $0 <options> <board-name> <rootdev>"
	echo "    --no-flash                   Generate the flash images."
	echo "    --flash-only                 Flash using existing images."
	echo "    --massflash [<max_devices>]  Flash multiple device."
	echo "    --usb-instance               Specify the USB port where the flashing cable is connected (such as 1-3)."
	exit 1
}

showlogs=0
flash_only=0
no_flash=0
massflash_mode=0
max_massflash=""
usb_instance=""
positional=()
layouts=()
while [ $# -gt 0 ]; do
	case "$1" in
	--no-flash) no_flash=1; shift ;;
	--flash-only) flash_only=1; shift ;;
	--showlogs) showlogs=1; shift ;;
	--massflash)
		massflash_mode=1; shift
		case "${1:-}" in *[!0-9]*|"") ;; *) max_massflash="$1"; shift ;; esac ;;
	--usb-instance) usb_instance="$2"; shift 2 ;;
	-c) [ $# -ge 2 ] || usage; layouts+=("$2"); shift 2 ;;
	-p) [ $# -ge 2 ] || usage
		# options for flash.sh: its own -c <layout> must exist too
		read -r -a p_opts <<< "$2"
		for ((i = 0; i < ${#p_opts[@]}; i++)); do
			if [ "${p_opts[$i]}" = "-c" ] && [ -n "${p_opts[$((i + 1))]:-}" ]; then layouts+=("${p_opts[$((i + 1))]}"); fi
		done
		shift 2 ;;
	--external-device|--network|-S|-k|-u|-v) [ $# -ge 2 ] || usage; shift 2 ;;
	--external-only|--erase-all|--keep|--reuse|--sparse|--initrd|-r) shift ;;
	-*) usage ;;
	*) positional+=("$1"); shift ;;
	esac
done
if [ "${flash_only}" = "0" ] && [ "${#positional[@]}" -ne 2 ]; then
	usage
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "ERROR: please run as sudo or root user"
	exit 1
fi
if [ "${#positional[@]}" -eq 2 ] && [ ! -r "${LINUX_BASE_DIR}/${positional[0]}.conf" ]; then
	echo "Error: Invalid target board - ${positional[0]}."
	exit 1
fi
# The real tool (and flash.sh, for -p "-c ...") fails on a partition layout that is not
# there; the stand-in layouts are labelled stubs at the R35 and R36 paths.
for layout in "${layouts[@]}"; do
	if [ ! -f "${LINUX_BASE_DIR}/${layout}" ]; then
		echo "Error: ${layout} not found"
		exit 1
	fi
done

devpaths=()
for p in $(standin_devpaths); do
	if [ -z "${usb_instance}" ] || [ "${usb_instance}" = "${p}" ]; then
		devpaths+=("${p}")
	fi
done

if [ "${flash_only}" = "0" ]; then
	if [ "${#devpaths[@]}" -eq 0 ] && [ "${no_flash}" = "0" ]; then
		echo "No devices to flash"
		exit 1
	fi
	echo "${flash_cmd} --no-flash ${positional[*]}"
	"${flash_cmd}" --no-flash "${positional[@]}"
	echo "Finish generating flash package."
fi

if [ "${no_flash}" = "1" ]; then
	echo "Put device in recovery mode, run with option --flash-only to flash device."
	exit 0
fi

if [ "${#devpaths[@]}" -eq 0 ]; then
	echo "No devices to flash"
	exit 1
fi

if [ "${flash_only}" = "0" ] && [ "${#devpaths[@]}" -gt 1 ]; then
	echo "Error, too many devices in RCM mode"
	echo "For signing and flashing, only one device is supported"
	exit 1
fi

flash_param="$(cat "${L4T_INITRD_FLASH_DIR}/${INITRD_FLASHPARAM}")"
ts=$(date +%Y%m%d-%H%M%S)
instance=0
if [ "${massflash_mode}" = "1" ]; then
	max_massflash=${max_massflash:-${DEFAULT_MAX_MASSFLASH}}
else
	max_massflash=1
fi
if [ "${#devpaths[@]}" -gt "${max_massflash}" ]; then
	echo "Too many devices in RCM mode"
	exit 1
fi

mkdir -p "${LINUX_BASE_DIR}/initrdlog/"
flash_pids=()
for devpath in "${devpaths[@]}"; do
	fn_log="${LINUX_BASE_DIR}/initrdlog/flash_${devpath}_${instance}_${ts}.log"
	cmd=("${flash_cmd}" --usb-instance "${devpath}" --device-instance "${instance}" --flash-only ${flash_param})
	echo "${cmd[*]}"
	if [ "${max_massflash}" -eq 1 ]; then
		"${cmd[@]}" 2>&1 | tee "${fn_log}"
		echo "Log is saved to Linux_for_Tegra/initrdlog/flash_${devpath}_${instance}_${ts}.log "
		exit
	fi
	"${cmd[@]}" > "${fn_log}" 2>&1 &
	flash_pid="$!"
	flash_pids+=("${flash_pid}")
	echo "Start flashing device: ${devpath}, rcm instance: ${instance}, PID: ${flash_pid}"
	echo "Log will be saved to Linux_for_Tegra/initrdlog/flash_${devpath}_${instance}_${ts}.log "
	instance=$((instance + 1))
done

# Wait until all flash processes are done (the real tool polls every 5 s)
failure=0
while true; do
	running=0
	if [ ${showlogs} -ne 1 ]; then
		echo -n "Ongoing processes:"
	fi
	new_flash_pids=()
	for flash_pid in "${flash_pids[@]}"; do
		if [ -e "/proc/${flash_pid}" ] && ! grep -q '^State:.*Z' "/proc/${flash_pid}/status" 2>/dev/null; then
			if [ ${showlogs} -ne 1 ]; then
				echo -n " ${flash_pid}"
			fi
			running=$((running + 1))
			new_flash_pids+=("${flash_pid}")
		else
			wait "${flash_pid}" || failure=1
		fi
	done
	if [ "${showlogs}" -ne 1 ]; then
		echo
	fi
	if [ "${running}" -eq 0 ]; then
		break
	fi
	flash_pids=("${new_flash_pids[@]}")
	sleep "${STANDIN_POLL_S:-0.2}"
done

if [ ${failure} -ne 0 ]; then
	echo "Flash complete (WITH FAILURES)"
	exit 1
fi
echo "Flash complete (SUCCESS)"
