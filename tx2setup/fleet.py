"""Inventory -> typed, validated Board objects.

`ansible-inventory --list` is the one truth for parsing (INI or YAML, group_vars,
host_vars, inheritance): we never parse the inventory ourselves, so a board means the
same thing to tx2setup and to the Ansible play that provisions it. What each board's
variables must look like is declared in inventory_schema.py; where an error came from
(file, line, group_vars file) is worked out in inventory_errors.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tx2setup import inventory_schema as schema
from tx2setup.errors import EnvironmentProblem, InventoryError
from tx2setup.inventory_errors import ansible_error_line, field_error, origin, structure_problem
from tx2setup.inventory_schema import COMPONENTS, DEFAULT_TARGET_FPS, OVERRIDE_FIELDS, URL_RE

# Other modules read these through fleet (playvars, plan): they stay importable from here.
__all__ = [
    "COMPONENTS",
    "DEFAULT_TARGET_FPS",
    "OVERRIDE_FIELDS",
    "URL_RE",
    "VAULT_HINT",
    "Board",
    "Inventory",
    "load",
    "origin",
]
_fail = field_error  # playvars words its duplicate-address refusal as fleet does


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
    ansible_port: int | None = None
    hostvars: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class Inventory:
    path: Path
    boards: tuple[Board, ...]
    # the vault password file for the run: the one given, else the inventory's own
    # `tx2setup_vault_password_file` (see _vault_hint), else None
    vault_password_file: str | None = None


# An inventory may name the vault password file of its inline-vaulted values (e.g. the
# emulated fleet's ansible_become_password), so that `tx2setup provision -i FILE` needs no
# flag. Only tx2setup reads it; plain ansible-playbook still takes --vault-password-file.
VAULT_HINT = "tx2setup_vault_password_file"


def _vault_hint(p: Path, hostvars: dict[str, dict[str, Any]]) -> str | None:
    values = sorted({str(hv[VAULT_HINT]) for hv in hostvars.values() if hv.get(VAULT_HINT)})
    if not values:
        return None
    if len(values) > 1:
        raise InventoryError(f"{p}: {VAULT_HINT} differs between hosts ({', '.join(values)}); give one")
    path = Path(values[0]).expanduser()
    if not path.is_absolute():
        path = (p if p.is_dir() else p.parent) / path
    if not path.is_file():
        raise InventoryError(f"{p}: {VAULT_HINT}: {values[0]}: no such file")
    return str(path.resolve())


def _run_ansible_inventory(path: Path, vault_password_file: str | None = None) -> dict[str, Any]:
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
    argv = [exe, "-i", str(path), "--list"]
    if vault_password_file:
        if not Path(vault_password_file).is_file():
            raise InventoryError(f"{vault_password_file}: no such vault password file")
        argv += ["--vault-password-file", vault_password_file]
    # Ansible creates ~/.ansible/tmp on every start: give it a scratch home instead, so a
    # check touches nothing. Collections keep their usual place.
    with tempfile.TemporaryDirectory(prefix="tx2setup-ansible-") as scratch:
        home = Path.home() / ".ansible"
        env.setdefault("ANSIBLE_COLLECTIONS_PATH", f"{home / 'collections'}:/usr/share/ansible/collections")
        env.update(ANSIBLE_HOME=scratch, ANSIBLE_LOCAL_TEMP=str(Path(scratch) / "tmp"))
        proc = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise InventoryError(ansible_error_line(proc.stderr, path))
    try:
        data: dict[str, Any] = json.loads(proc.stdout)
    except json.JSONDecodeError as exc:
        raise InventoryError(f"{path}: ansible-inventory printed no JSON ({exc})") from exc
    return data


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


def _board_from_vars(path: Path, name: str, hv: dict[str, Any], groups: list[str]) -> Board:
    """The board `name`, its variables checked against the schema; the first bad one raises
    InventoryError naming the file (and the group_vars/host_vars file that set it), host and field."""
    try:
        checked = schema.validate(name, hv)
    except schema.FieldProblem as problem:
        raise field_error(path, name, problem.field, problem.message, groups, hv) from None
    return Board(
        name=name,
        ansible_host=checked.ansible_host,
        module=checked.jetson_module,
        jetpack=checked.release_jetpack,
        power_mode=checked.power_mode,
        target_fps=checked.target_fps,
        components=checked.components,
        groups=tuple(groups),
        emulated=checked.tx2setup_emulated,
        overrides=checked.overrides,
        usb_port=checked.usb_port,
        serial=checked.board_serial,
        ansible_port=checked.ansible_port,
        hostvars=hv,
    )


def load(path: str | Path, limit: str | None = None, vault_password_file: str | None = None) -> Inventory:
    """Load an inventory through ansible-inventory and validate every board in it.

    `limit` keeps only the named hosts or groups (comma separated, as Ansible's --limit).
    `vault_password_file` decrypts vaulted group_vars/host_vars (ANSIBLE_VAULT_PASSWORD_FILE
    in the environment works as well: ansible-inventory reads it).
    """
    p = Path(path)
    if not p.exists():
        raise InventoryError(f"{p}: no such inventory file or directory")
    data = _run_ansible_inventory(p, vault_password_file)
    hostvars = _hostvars(data)
    groups = _groups_of(data)
    if not hostvars:
        # Ansible skips keys it does not know (with a warning): say where, if that is why
        hint = structure_problem(p)
        raise InventoryError(f"{p}: the inventory holds no hosts" + (f" ({hint})" if hint else ""))
    boards = [_board_from_vars(p, name, hv, groups.get(name, [])) for name, hv in sorted(hostvars.items())]
    seen: dict[tuple[str, int | None], str] = {}
    for b in boards:
        # host names are case-insensitive; the same address on another port is another board
        where = (b.ansible_host.lower().rstrip("."), b.ansible_port or 22)
        if where in seen:
            port = f" port {where[1]}" if b.ansible_port else ""
            raise field_error(p, b.name, "ansible_host", f"{b.ansible_host}{port} is also the address of {seen[where]}")
        seen[where] = b.name
    if limit:
        wanted = {x.strip() for x in limit.split(",") if x.strip()}
        boards = [b for b in boards if b.name in wanted or wanted & set(b.groups)]
        if not boards:
            raise InventoryError(f"{p}: --limit {limit!r} matches no host or group")
    return Inventory(path=p, boards=tuple(boards), vault_password_file=vault_password_file or _vault_hint(p, hostvars))
