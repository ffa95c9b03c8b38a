"""Inventory -> typed, validated Board objects.

`ansible-inventory --list` is the one truth for parsing (INI or YAML, group_vars,
host_vars, inheritance): we never parse the inventory ourselves, so a board means the
same thing to tx2setup and to the Ansible play that provisions it.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tx2setup.errors import EnvironmentProblem, InventoryError

COMPONENTS = ("ros", "zed_sdk", "caffe", "pytorch")
DEFAULT_TARGET_FPS = 15.0  # the Z2Color acceptance profile: 15 Hz on a TX2
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
SAFE_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)
SAFE_VALUE = re.compile(r"^[A-Za-z0-9_.:/+@=,-]*$")
OVERRIDE_FIELDS = (
    "ros_distro",
    "torch_version",
    "torch_wheel_url",
    "zed_sdk_version",
    "zed_sdk_url",
    "caffe_source_url",
    "nvidia_apt_base",
)


@dataclass(frozen=True)
class Board:
    """One board as the inventory describes it (before resolution against the matrix)."""

    name: str
    ansible_host: str
    module: str
    jetpack: str
    power_mode: str | None
    target_fps: float
    components: tuple[str, ...]
    groups: tuple[str, ...]
    emulated: bool = False
    overrides: dict[str, str] = field(default_factory=dict)
    usb_port: str | None = None
    serial: str | None = None
    hostvars: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class Inventory:
    path: Path
    boards: tuple[Board, ...]


def _run_ansible_inventory(path: Path) -> dict[str, Any]:
    exe = shutil.which("ansible-inventory")
    if exe is None:
        venv_exe = Path(sys.executable).with_name("ansible-inventory")
        if not venv_exe.exists():
            raise EnvironmentProblem("ansible-inventory not found: install ansible-core 2.16 (pip install tx2setup)")
        exe = str(venv_exe)
    env = dict(os.environ)
    # Fail on a source that does not parse instead of warning and returning nothing.
    env.update(
        ANSIBLE_INVENTORY_UNPARSED_FAILED="True",
        ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED="True",
        ANSIBLE_INVENTORY_ENABLED="host_list,yaml,ini,auto",
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_DEPRECATION_WARNINGS="False",
    )
    proc = subprocess.run([exe, "-i", str(path), "--list"], capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise InventoryError(f"{path}: {_ansible_error_line(proc.stderr, path)}")
    try:
        data: dict[str, Any] = json.loads(proc.stdout)
    except json.JSONDecodeError as exc:
        raise InventoryError(f"{path}: ansible-inventory printed no JSON ({exc})") from exc
    return data


def _ansible_error_line(stderr: str, path: Path) -> str:
    """Reduce ansible-inventory's wrapped, multi-plugin complaint to the one line that matters."""
    # Ansible wraps warnings at the terminal width: undo the wrapping first.
    text = " ".join(re.sub(r"\x1b\[[0-9;]*m", "", stderr).split())
    stop = r"(?= \[WARNING\]| ERROR!| \[ERROR\]|$)"
    m = re.search(rf"{re.escape(str(path))}:(\d+): (.+?){stop}", text)
    if m:  # INI: "lab.ini:7: Expected key=value host variable assignment, got: x"
        return f"line {m.group(1)}: {m.group(2)}"
    m = re.search(
        r"Syntax Error while loading YAML\. (.+?) The error appears to be in '[^']*': line (\d+), column (\d+)", text
    )
    if m:
        return f"line {m.group(2)}, column {m.group(3)}: YAML syntax error: {m.group(1)}"
    m = re.search(rf"ERROR! (.+?){stop}", text)
    if m:
        return m.group(1)
    return text or "ansible-inventory failed"


def _hostvars(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    meta = data.get("_meta", {})
    hostvars: dict[str, dict[str, Any]] = meta.get("hostvars", {})
    # hosts without variables are absent from hostvars; find them through the groups
    for group, body in data.items():
        if group == "_meta" or not isinstance(body, dict):
            continue
        for host in body.get("hosts", []):
            hostvars.setdefault(host, {})
    return hostvars


def _groups_of(data: dict[str, Any]) -> dict[str, list[str]]:
    children = {g: b.get("children", []) for g, b in data.items() if g != "_meta" and isinstance(b, dict)}
    direct = {g: b.get("hosts", []) for g, b in data.items() if g != "_meta" and isinstance(b, dict)}
    out: dict[str, list[str]] = {}

    def walk(group: str, trail: list[str]) -> None:
        for host in direct.get(group, []):
            out.setdefault(host, [])
            for g in [*trail, group]:
                if g not in out[host] and g != "all":
                    out[host].append(g)
        for child in children.get(group, []):
            walk(child, [*trail, group])

    walk("all", [])
    return out


def _fail(path: Path, host: str, fieldname: str, msg: str) -> InventoryError:
    return InventoryError(f"{path}: host {host}: {fieldname}: {msg}")


def _board_from_vars(path: Path, name: str, hv: dict[str, Any], groups: list[str]) -> Board:
    if not SAFE_NAME.match(name):
        raise _fail(
            path,
            name,
            "name",
            "host name may only hold letters, digits, '.', '_' and '-' (it is used in paths and commands)",
        )
    host = hv.get("ansible_host")
    if host is None or str(host).strip() == "":
        raise _fail(path, name, "ansible_host", "missing (every board needs the address Ansible connects to)")
    host = str(host)
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if not SAFE_HOSTNAME.match(host):
            raise _fail(
                path, name, "ansible_host", f"{host!r} is neither an IP address nor a valid host name"
            ) from None
    module = hv.get("jetson_module")
    if module is None:
        raise _fail(
            path,
            name,
            "jetson_module",
            "missing (one of tx2, tx2-nx, xavier-nx, agx-xavier, orin-nx, orin-nano, agx-orin)",
        )
    jetpack = hv.get("jetpack")
    if jetpack is None:
        raise _fail(path, name, "jetpack", "missing (set it on the host or inherit it from a group)")
    jetpack = str(jetpack)
    if not re.fullmatch(r"\d+(\.\d+){0,3}", jetpack):
        raise _fail(path, name, "jetpack", f"{jetpack!r} is not a version like 4.6.4")
    power = hv.get("power_mode")
    if power is not None and not SAFE_VALUE.match(str(power)):
        raise _fail(path, name, "power_mode", f"{power!r} holds characters that are unsafe in a command")
    target = hv.get("target_fps", DEFAULT_TARGET_FPS)
    try:
        target_f = float(target)
    except (TypeError, ValueError):
        raise _fail(path, name, "target_fps", f"{target!r} is not a number") from None
    if not (target_f > 0 and target_f < float("inf")):
        raise _fail(path, name, "target_fps", f"{target!r} must be a positive number")
    comps = hv.get("components", list(COMPONENTS))
    if isinstance(comps, str):
        comps = [c.strip() for c in comps.split(",") if c.strip()]
    if not isinstance(comps, list):
        raise _fail(path, name, "components", "must be a list (any of ros, zed_sdk, caffe, pytorch)")
    for comp in comps:
        if comp not in COMPONENTS:
            raise _fail(path, name, "components", f"unknown component {comp!r} (any of {', '.join(COMPONENTS)})")
    overrides: dict[str, str] = {}
    for key in OVERRIDE_FIELDS:
        if key in hv and hv[key] is not None:
            value = str(hv[key])
            if not SAFE_VALUE.match(value):
                raise _fail(path, name, key, f"{value!r} holds characters that are unsafe in a command")
            overrides[key] = value
    return Board(
        name=name,
        ansible_host=host,
        module=str(module),
        jetpack=jetpack,
        power_mode=None if power is None else str(power),
        target_fps=target_f,
        components=tuple(dict.fromkeys(comps)),
        groups=tuple(groups),
        emulated=bool(hv.get("tx2setup_emulated", False)),
        overrides=overrides,
        usb_port=None if hv.get("usb_port") is None else str(hv["usb_port"]),
        serial=None if hv.get("board_serial") is None else str(hv["board_serial"]),
        hostvars=hv,
    )


def load(path: str | Path, limit: str | None = None) -> Inventory:
    """Load an inventory through ansible-inventory and validate every board in it.

    `limit` keeps only the named hosts or groups (comma separated, as Ansible's --limit).
    """
    p = Path(path)
    if not p.exists():
        raise InventoryError(f"{p}: no such inventory file or directory")
    data = _run_ansible_inventory(p)
    hostvars = _hostvars(data)
    groups = _groups_of(data)
    if not hostvars:
        raise InventoryError(f"{p}: the inventory holds no hosts")
    boards = [_board_from_vars(p, name, hv, groups.get(name, [])) for name, hv in sorted(hostvars.items())]
    seen: dict[str, str] = {}
    for b in boards:
        if b.ansible_host in seen:
            raise _fail(p, b.name, "ansible_host", f"{b.ansible_host} is also the address of {seen[b.ansible_host]}")
        seen[b.ansible_host] = b.name
    if limit:
        wanted = {x.strip() for x in limit.split(",") if x.strip()}
        boards = [b for b in boards if b.name in wanted or wanted & set(b.groups)]
        if not boards:
            raise InventoryError(f"{p}: --limit {limit!r} matches no host or group")
    return Inventory(path=p, boards=tuple(boards))
