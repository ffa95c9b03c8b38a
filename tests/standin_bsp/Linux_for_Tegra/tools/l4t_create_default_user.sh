#!/bin/bash
# STAND-IN for NVIDIA's tools/l4t_create_default_user.sh, for tx2setup's tests. Kept from
# the real tool: options (-u, -p, -a, -n, --accept-license, -h), its checks (root, a
# valid rootfs, the license file; without --accept-license the real one asks with
# whiptail, which the stand-in answers "Cancel"), its output (including the password in
# clear text, as the real one prints it) and exit codes. Instead of useradd in a qemu
# chroot it edits rootfs/etc/passwd and creates the home folder.

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
user_name="${user_name:-nvidia}"
user_pass="${user_pass:-$(date +%s | sha256sum | base64 | head -c 8)}"
host_name="${host_name:-tegra-ubuntu}"
if [ ! -f "${rfs_dir}/usr/share/doc/nvidia-tegra/Tegra_Software_License_Agreement-Tegra-Linux.txt" ]; then
	echo "ERROR: Cannot find the Tegra software license agreement"
	exit 1
fi
if [ "${accept_license}" != true ]; then
	# the real tool shows the license in whiptail; with no terminal that is "Cancel"
	exit 1
fi

echo "Creating: Username - ${user_name}, Password - ${user_pass}, Autologin - ${auto_login}"
if ! grep -q "^${user_name}:" "${rfs_dir}/etc/passwd"; then
	uid=1000
	while cut -d: -f3 "${rfs_dir}/etc/passwd" | grep -qx "${uid}"; do uid=$((uid + 1)); done
	echo "${user_name}:x:${uid}:${uid}::/home/${user_name}:/bin/bash" >> "${rfs_dir}/etc/passwd"
	echo "${user_name}:x:${uid}:" >> "${rfs_dir}/etc/group"
fi
hash="$(printf '%s' "${user_pass}" | sha256sum | cut -d' ' -f1)"
touch "${rfs_dir}/etc/shadow"
sed -i "/^${user_name}:/d" "${rfs_dir}/etc/shadow"
echo "${user_name}:STANDIN-sha256-${hash}:19000:0:99999:7:::" >> "${rfs_dir}/etc/shadow"
uid="$(grep "^${user_name}:" "${rfs_dir}/etc/passwd" | cut -d: -f3)"
mkdir -p "${rfs_dir}/home/${user_name}"
cp -r "${rfs_dir}/etc/skel/." "${rfs_dir}/home/${user_name}"
chown -R "${uid}:${uid}" "${rfs_dir}/home/${user_name}"
mkdir -p "${rfs_dir}/etc/nv"
touch "${rfs_dir}/etc/nv/nvautoconfig"

echo "Creating: Hostname - ${host_name}"
echo "${host_name}" > "${rfs_dir}/etc/hostname"
if [ "$(grep -Fxc "127.0.1.1 ${host_name}" "${rfs_dir}/etc/hosts")" == "0" ]; then
	echo "127.0.1.1 ${host_name}" >> "${rfs_dir}/etc/hosts"
fi
