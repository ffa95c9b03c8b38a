#!/bin/bash
# STAND-IN for NVIDIA's tools/l4t_create_default_user.sh, for tx2setup's tests. Modelled on
# two public copies of the real script: R32.7.2 (github.com/ncsu-yoon-lab/Jetson_TEE,
# Linux_for_Tegra/tools/l4t_create_default_user.sh; nv_tegra/bsp_version 32.7.2) and
# R36.2.0 (github.com/johnnynunez/Linux_for_Tegra, tools/l4t_create_default_user.sh; debs
# 36.2.0). Kept from the real tool: options (-u, -p, -a, -n, --accept-license, -h), its
# checks (root, a valid rootfs, /usr/bin/qemu-aarch64-static on the host, the license
# file; without --accept-license the real one asks with whiptail, which the stand-in
# answers "Cancel"), its output (including the password in clear text, as the real one
# prints it), `set -e`, and what a second run on the same rootfs does: on R32 useradd
# refuses the existing user and the script exits 9; on R35+ (BSP_BRANCH >= 35) that
# useradd is `|| true` and the old password stays. Instead of useradd in a qemu chroot it
# edits rootfs/etc/{passwd,group,shadow} (standin_useradd) and creates the home folder.
# Knob: STANDIN_QEMU_AARCH64 stands for the host path /usr/bin/qemu-aarch64-static.

set -e
script_name="$(basename "${0}")"
l4t_tools_dir="$(cd "$(dirname "${0}")" && pwd)"
l4t_dir="${l4t_tools_dir%/*}"
rfs_dir="${l4t_dir}/rootfs"
source "${l4t_tools_dir}/standin/standin.func"
standin_log_call "l4t_create_default_user.sh $*"

usage()
{
	echo "Usage:"
	echo "${script_name} [-u <username>] [-p <password>] [-a] [-h]"
	echo "	-u | --username	- If not specified then default will be set to 'nvidia'."
	echo "	-p | --password	- If not set then randomized password will be generated."
	echo "	-a | --autologin - If specified autologin will be enabled. Default is disabled"
	echo "	-n | --hostname - If not specified then default will be set to 'tegra-ubuntu'."
	echo "	-h | --help - print usage"
	echo "	     --accept-license - Specified to accept the terms and conditions of EULA"
	exit 1
}

user_name=""
user_pass=""
auto_login=false
host_name=""
accept_license=false
while [ -n "${1}" ]; do
	case "${1}" in
	-h|--help) usage ;;
	-a|--autologin) auto_login=true; shift 1 ;;
	-u|--username) [ -n "${2}" ] || usage; user_name="${2}"; shift 2 ;;
	-p|--password) [ -n "${2}" ] || usage; user_pass="${2}"; shift 2 ;;
	-n|--hostname) [ -n "${2}" ] || usage; host_name="${2}"; shift 2 ;;
	--accept-license) accept_license=true; shift 1 ;;
	*) echo "ERROR: Invalid parameter. Exiting..."; usage ;;
	esac
done

if [ "$(id -u)" -ne 0 ]; then
	echo "ERROR: please run as sudo or root user" > /dev/stderr
	usage
fi
if [ ! -f "${rfs_dir}/etc/passwd" ]; then
	echo "ERROR: not a valid rootfs directory" > /dev/stderr
	usage
fi
if [ ! -f "${STANDIN_QEMU_AARCH64:-/usr/bin/qemu-aarch64-static}" ]; then
	echo "ERROR: please install qemu-user-static package" > /dev/stderr
	usage
fi
user_name="${user_name:-nvidia}"
user_pass="${user_pass:-$(date +%s | sha256sum | base64 | head -c 8)}"
host_name="${host_name:-tegra-ubuntu}"
# R32.7.2 reads L4T_End_User_License_Agreement.txt(.gz), R36.2.0 Tegra_Software_License_Agreement-Tegra-Linux.txt(.gz)
doc="${rfs_dir}/usr/share/doc/nvidia-tegra"
if ! ls "${doc}/L4T_End_User_License_Agreement.txt"* "${doc}/Tegra_Software_License_Agreement-Tegra-Linux.txt"* > /dev/null 2>&1; then
	echo "ERROR: Cannot find the Tegra software license agreement"
	exit 1
fi
if [ "${accept_license}" != true ]; then
	# the real tool shows the license in whiptail; with no terminal that is "Cancel"
	exit 1
fi

echo "Creating: Username - ${user_name}, Password - ${user_pass}, Autologin - ${auto_login}"
# The real create_user() copies /usr/bin/qemu-aarch64-static into the rootfs, bind-mounts
# /sys, /proc and /dev, and runs `LC_ALL=C chroot . useradd ...` (aarch64 binaries, run
# through qemu by binfmt_misc). R32 (32.7.2) runs it bare under `set -e`; R36 (36.2.0)
# adds `|| true` to the branch taken when /home/USER already exists, so a re-run there
# keeps the old password. standin_useradd imitates useradd's refusal of a taken name.
bsp_branch="$(sed -n 's/^BSP_BRANCH=//p' "${l4t_dir}/nv_tegra/bsp_version" 2>/dev/null)"
groups="sudo,video,audio,adm"
if [ "${bsp_branch:-32}" -ge 35 ]; then
	groups="sudo,video,audio,adm,render,weston-launch"
	grep -q "^weston-launch:" "${rfs_dir}/etc/group" || echo "weston-launch:x:999:" >> "${rfs_dir}/etc/group"
fi
hash="$(echo "${user_pass}" | openssl passwd -1 -stdin)"
if [ -d "${rfs_dir}/home/${user_name}" ]; then
	if [ "${bsp_branch:-32}" -ge 35 ]; then
		standin_useradd "${rfs_dir}" "${user_name}" "${hash}" "${groups}" || true
	else
		standin_useradd "${rfs_dir}" "${user_name}" "${hash}" "${groups}"
	fi
	cp -r "${rfs_dir}/etc/skel/." "${rfs_dir}/home/${user_name}"
	chown -R "$(grep "^${user_name}:" "${rfs_dir}/etc/passwd" | cut -d: -f3-4)" "${rfs_dir}/home/${user_name}"
else
	standin_useradd "${rfs_dir}" "${user_name}" "${hash}" "${groups}"
	mkdir -p "${rfs_dir}/home/${user_name}"
	cp -r "${rfs_dir}/etc/skel/." "${rfs_dir}/home/${user_name}"
	chown -R "$(grep "^${user_name}:" "${rfs_dir}/etc/passwd" | cut -d: -f3-4)" "${rfs_dir}/home/${user_name}"
fi
rm -f "${rfs_dir}/etc/systemd/system/default.target"
mkdir -p "${rfs_dir}/etc/nv"
touch "${rfs_dir}/etc/nv/nvautoconfig"

echo "Creating: Hostname - ${host_name}"
echo "${host_name}" > "${rfs_dir}/etc/hostname"
if [ "$(grep -Fxc "127.0.1.1 ${host_name}" "${rfs_dir}/etc/hosts")" == "0" ]; then
	echo "127.0.1.1 ${host_name}" >> "${rfs_dir}/etc/hosts"
fi
