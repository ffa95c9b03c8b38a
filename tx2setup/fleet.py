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
import tempfile
from collections.abc import Callable, Sequence
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
SAFE_USER = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,31}\$?$")
URL_RE = re.compile(r"^https?://[A-Za-z0-9.-]+(:\d{1,5})?(/[A-Za-z0-9_.:/+@=,%~-]*)?$")
# What each override must look like (after the unsafe-character check).
OVERRIDE_FORMATS: dict[str, tuple[re.Pattern[str], str]] = {
    "ros_distro": (re.compile(r"^[a-z]+$"), "a ROS distro name like melodic"),
    "torch_version": (
        re.compile(r"^\d+\.\d+(\.\d+)?((a|b|rc)\d+)?(\+[A-Za-z0-9.]+)?$"),
        "a torch version like 1.10.0",
    ),
    "torch_wheel_url": (URL_RE, "an http(s) URL"),
    "zed_sdk_version": (re.compile(r"^\d+\.\d+(\.\d+)?$"), "a ZED SDK version like 3.8 or 3.8.2"),
    "zed_sdk_url": (URL_RE, "an http(s) URL"),
    "caffe_source_url": (URL_RE, "an http(s) URL"),
    "nvidia_apt_base": (URL_RE, "an http(s) URL"),
}
# An IPv6 scope id names an interface (at most 15 characters: IFNAMSIZ is 16 with its NUL,
# netdevice(7)) or its index; Python's ipaddress accepts any text after the '%'.
SAFE_SCOPE = re.compile(r"^[A-Za-z0-9_.-]{1,15}$")
# C0 and C1 control characters (newline, ESC, NUL, ...): one would end an ssh_config line,
# split a log line or drive the terminal
CONTROL_CHAR = re.compile(r"[\x00-\x1f\x7f-\x9f]")
JINJA_MARKUP = re.compile(r"\{\{|\{%|\{#")
# read as literal text by tx2setup's own SSH layer (connection.py), where Ansible would template them
LITERAL_SSH_VARS = (
    "ansible_ssh_common_args",
    "ansible_ssh_extra_args",
    "ansible_ssh_private_key_file",
    "ansible_private_key_file",
)
MAX_URL = 2048
# the cache stores an artifact under its URL's file name plus ".part" (a name holds 255 bytes)
MAX_URL_FILE_NAME = 200
# Overrides that only make sense together: a wheel URL names one torch version.
OVERRIDE_PAIRS = (("torch_version", "torch_wheel_url"),)
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
        raise InventoryError(_ansible_error_line(proc.stderr, path))
    try:
        data: dict[str, Any] = json.loads(proc.stdout)
    except json.JSONDecodeError as exc:
        raise InventoryError(f"{path}: ansible-inventory printed no JSON ({exc})") from exc
    return data


def _ansible_error_line(stderr: str, path: Path) -> str:
    """Reduce ansible-inventory's wrapped, multi-plugin complaint to the one line that matters,
    starting with the file at fault (the inventory, or a group_vars/host_vars file)."""
    # Ansible wraps warnings at the terminal width: undo the wrapping first.
    text = " ".join(re.sub(r"\x1b\[[0-9;]*m", "", stderr).split())
    stop = r"(?= \[WARNING\]| ERROR!| \[ERROR\]|$)"
    if path.is_file() and path.suffix in YAML_EXTS:
        # Ansible falls back to the INI parser for a YAML file the YAML plugin refused, and
        # reports that parser's complaint: the YAML reading is the useful one
        found = _yaml_problem(path.read_text(encoding="utf-8", errors="replace"))
        if found:
            return f"{path}: {found}"
    m = re.search(rf"(/\S+|{re.escape(str(path))}):(\d+): (.+?){stop}", text)
    if m:  # INI: "lab.ini:7: Expected key=value host variable assignment, got: x"
        return f"{_shown(m.group(1), path)}: line {m.group(2)}: {m.group(3)}"
    m = re.search(
        r"Syntax Error while loading YAML\. (.+?) The error appears to be in '([^']*)': line (\d+), column (\d+)", text
    )
    if m:  # the file may be the inventory or a group_vars/host_vars file it pulls in
        return f"{_shown(m.group(2), path)}: line {m.group(3)}, column {m.group(4)}: YAML syntax error: {m.group(1)}"
    if "no vault secrets" in text or "Decryption failed" in text:
        m = re.search(r"(?:on|file) (/\S+?)(?:[:.,]? |$)", text)
        vaulted = _shown(m.group(1), path) if m else _first_vaulted(path)
        if "Decryption failed" in text:
            return f"{vaulted}: the vault password given does not decrypt it"
        return f"{vaulted}: vault-encrypted; pass --vault-password-file (or set ANSIBLE_VAULT_PASSWORD_FILE)"
    # No line from Ansible: find the offending line ourselves.
    found = _locate_syntax_error(path, text)
    if found:
        return found
    m = re.search(rf"ERROR! (.+?){stop}", text)
    if m:
        return f"{path}: {m.group(1)}"
    return f"{path}: {text or 'ansible-inventory failed'}"


def _first_vaulted(path: Path) -> str:
    """The first vault-encrypted vars file next to the inventory (Ansible does not name it)."""
    base = path if path.is_dir() else path.parent
    for sub in ("group_vars", "host_vars"):
        for f in sorted((base / sub).rglob("*")) if (base / sub).is_dir() else []:
            try:
                if f.is_file() and f.read_text(encoding="utf-8", errors="replace").startswith("$ANSIBLE_VAULT"):
                    return str(f)
            except OSError:
                continue
    return str(path)


def _shown(name: str, path: Path) -> str:
    """A file Ansible names (absolute), shown relative to the inventory as the user gave it."""
    if name == str(path):
        return name
    base = path if path.is_dir() else path.parent
    try:
        return str(base / Path(name).resolve().relative_to(base.resolve()))
    except ValueError:
        return name


INI_SECTION = re.compile(r"^\[([A-Za-z0-9_.-]+)(:(vars|children))?\]\s*([#;].*)?$")
YAML_EXTS = (".yml", ".yaml", ".json")


def _locate_syntax_error(path: Path, text: str) -> str | None:
    """For "Completely failed to parse" with no line: the file and line at fault, found by
    reading the sources ourselves (only to place the error; Ansible's parse stays the truth)."""
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file())
        ini_files = [p for p in files if p.suffix == ".ini"]
        parsed = [p for p in files if p.suffix in ("", *YAML_EXTS)]
        if ini_files and not parsed:
            names = ", ".join(p.name for p in ini_files)
            return (
                f"{path}: Ansible skips *.ini files inside an inventory directory (INVENTORY_IGNORE_EXTS),"
                f" so it found no inventory in it ({names}): pass the file, -i {ini_files[0]}"
            )
        sources = parsed
    else:
        sources = [path]
    for src in sources:
        try:
            body = src.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        found = _yaml_problem(body) if src.suffix in YAML_EXTS else _ini_problem(body)
        if found:
            return f"{src}: {found}"
        if src.suffix not in YAML_EXTS:
            m = re.search(
                rf"Failed to parse {re.escape(str(src.resolve()))} with ini plugin: (.+?)(?= \[WARNING\]| ERROR!|$)",
                text,
            )
            if m:
                return f"{src}: {m.group(1)}"
    return None


def _ini_problem(body: str) -> str | None:
    for n, raw in enumerate(body.splitlines(), 1):
        line = raw.strip()
        if line.startswith("[") and not INI_SECTION.match(line):
            return f"line {n}: bad section header {line!r} (expected [group], [group:vars] or [group:children])"
    return None


def _yaml_problem(body: str) -> str | None:
    """The first structural problem of a YAML inventory (group: {hosts, vars, children}), with its line."""
    import yaml

    try:
        root = yaml.compose(body, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        return f"{where}YAML syntax error: {getattr(exc, 'problem', exc)}"
    if root is None:
        return None

    def line(node: yaml.Node) -> int:
        return int(node.start_mark.line) + 1

    def group(name: str, node: yaml.Node) -> str | None:
        if isinstance(node, yaml.ScalarNode) and node.value in ("", "~", "null"):
            return None
        if not isinstance(node, yaml.MappingNode):
            return f"line {line(node)}: group {name!r} must be a mapping (hosts, vars, children)"
        for key, value in node.value:
            k = key.value
            if k not in ("hosts", "vars", "children"):
                return f"line {line(key)}: group {name!r}: unexpected key {k!r} (hosts, vars or children)"
            empty = isinstance(value, yaml.ScalarNode) and value.value in ("", "~", "null")
            if not empty and not isinstance(value, yaml.MappingNode):
                kind = "a list" if isinstance(value, yaml.SequenceNode) else "a scalar"
                return f"line {line(value)}: group {name!r}: {k} must be a mapping of names, not {kind}"
            if k == "children" and isinstance(value, yaml.MappingNode):
                for child_key, child in value.value:
                    found = group(str(child_key.value), child)
                    if found:
                        return found
        return None

    if not isinstance(root, yaml.MappingNode):
        return f"line {line(root)}: the top level must be a mapping of groups (all: ...)"
    for key, value in root.value:
        found = group(str(key.value), value)
        if found:
            return found
    return None


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


def origin(path: Path, host: str, groups: Sequence[str], key: str, hostvars: dict[str, Any] | None = None) -> str:
    """' (set in DIR/group_vars/tx2.yml)' when the value of `key` for `host` comes from a
    host_vars/group_vars file next to the inventory, '' when it is in the inventory itself
    (or cannot be placed). Only used to word an error; Ansible resolved the value."""
    if hostvars is not None and key not in hostvars:
        return ""
    base = path if path.is_dir() else path.parent
    candidates = [base / "host_vars" / host]
    if path.is_file() and _ini_host_sets(path, host, key):
        candidates = candidates[:1]  # the host line beats group_vars files
    else:
        candidates += [base / "group_vars" / g for g in reversed(groups)] + [base / "group_vars" / "all"]
    for cand in candidates:
        for f in _var_files(cand):
            if _file_sets(f, key):
                return f" (set in {f})"
    return ""


def _ini_host_sets(path: Path, host: str, key: str) -> bool:
    try:
        body = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return re.search(rf"(?m)^\s*{re.escape(host)}\s.*\b{re.escape(key)}\s*[=:]", body) is not None


def _var_files(stem: Path) -> list[Path]:
    files = [stem.with_name(stem.name + ext) for ext in ("", ".yml", ".yaml", ".json")]
    out = [f for f in files if f.is_file()]
    if stem.is_dir():
        out += sorted(f for f in stem.rglob("*") if f.is_file())
    return out


def _file_sets(f: Path, key: str) -> bool:
    import yaml

    try:
        text = f.read_text(encoding="utf-8", errors="replace")
        if text.lstrip().startswith("$ANSIBLE_VAULT"):
            return False
        data = yaml.safe_load(text)
    except (OSError, yaml.YAMLError):
        return False
    return isinstance(data, dict) and key in data


def _fail(
    path: Path, host: str, fieldname: str, msg: str, groups: Sequence[str] = (), hv: dict[str, Any] | None = None
) -> InventoryError:
    where = origin(path, host, groups, fieldname, hv) if hv is not None else ""
    return InventoryError(f"{path}: host {host}: {fieldname}: {msg}{where}")


def _board_from_vars(path: Path, name: str, hv: dict[str, Any], groups: list[str]) -> Board:
    def fail(fieldname: str, msg: str) -> InventoryError:
        return _fail(path, name, fieldname, msg, groups, hv)

    if not SAFE_NAME.match(name):
        raise fail(
            "name", "host name may only hold letters, digits, '.', '_' and '-' (it is used in paths and commands)"
        )
    _check_text_vars(hv, fail)
    host = hv.get("ansible_host")
    if host is None or str(host).strip() == "":
        raise fail("ansible_host", "missing (every board needs the address Ansible connects to)")
    host = str(host)
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if not SAFE_HOSTNAME.match(host):
            raise fail("ansible_host", f"{host!r} is neither an IP address nor a valid host name") from None
    if "%" in host and not SAFE_SCOPE.match(host.split("%", 1)[1]):
        raise fail("ansible_host", f"{host!r}: the IPv6 scope id after '%' must be an interface name or index")
    port = hv.get("ansible_port")
    port_i: int | None = None
    if port is not None:
        if not re.fullmatch(r"\d{1,5}", str(port)) or not 0 < int(str(port)) < 65536:
            raise fail("ansible_port", f"{port!r} is not a TCP port (1-65535)")
        port_i = int(str(port))
    user = hv.get("ansible_user")
    if user is not None and not SAFE_USER.match(str(user)):
        raise fail("ansible_user", f"{user!r} is not a plain user name (it is used in commands)")
    for key in ("board_serial", "usb_port"):
        value = hv.get(key)
        if value is not None and (str(value) == "" or not SAFE_VALUE.match(str(value))):
            raise fail(key, f"{value!r} holds characters that are unsafe in a command")
    module = hv.get("jetson_module")
    if module is None:
        raise fail("jetson_module", "missing (one of tx2, tx2-nx, xavier-nx, agx-xavier, orin-nx, orin-nano, agx-orin)")
    if not SAFE_VALUE.match(str(module)):
        raise fail("jetson_module", f"{module!r} holds characters that are unsafe in a command")
    jetpack = _jetpack_of(hv, fail)
    power = hv.get("power_mode")
    if power is not None and not SAFE_VALUE.match(str(power)):
        raise fail("power_mode", f"{power!r} holds characters that are unsafe in a command")
    target = hv.get("target_fps", DEFAULT_TARGET_FPS)
    try:
        target_f = float(target)
    except (TypeError, ValueError):
        raise fail("target_fps", f"{target!r} is not a number") from None
    if not (target_f > 0 and target_f < float("inf")):
        raise fail("target_fps", f"{target!r} must be a positive number")
    comps = hv.get("components", list(COMPONENTS))
    if isinstance(comps, str):
        comps = [c.strip() for c in comps.split(",") if c.strip()]
    if not isinstance(comps, list):
        raise fail("components", "must be a list (any of ros, zed_sdk, caffe, pytorch)")
    for comp in comps:
        if comp not in COMPONENTS:
            raise fail("components", f"unknown component {comp!r} (any of {', '.join(COMPONENTS)})")
    overrides: dict[str, str] = {}
    for key in OVERRIDE_FIELDS:
        if key in hv and hv[key] is not None:
            value = str(hv[key])
            if not SAFE_VALUE.match(value):
                raise fail(key, f"{value!r} holds characters that are unsafe in a command")
            pattern, what = OVERRIDE_FORMATS[key]
            if not pattern.match(value):
                raise fail(key, f"{value!r} is not {what}")
            if pattern is URL_RE:
                _check_url_length(key, value, fail)
            overrides[key] = value
    for a, b in OVERRIDE_PAIRS:
        if (a in overrides) != (b in overrides):
            have, need = (a, b) if a in overrides else (b, a)
            raise fail(need, f"missing: {have} is overridden, so {need} must be given too (they name one wheel)")
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
        ansible_port=port_i,
        hostvars=hv,
    )


def _tx2setup_reads(key: str) -> bool:
    return key.startswith(("ansible_", "tx2setup_")) or key in BOARD_FIELDS or key in OVERRIDE_FIELDS


BOARD_FIELDS = ("jetson_module", "jetpack", "l4t", "power_mode", "target_fps", "components", "board_serial", "usb_port")


def _check_text_vars(hv: dict[str, Any], fail: Callable[[str, str], InventoryError]) -> None:
    """No control character in any variable tx2setup reads (vaulted values are not text
    here and are skipped), and no Jinja markup where tx2setup's SSH layer reads a value as
    literal text: it would connect otherwise than Ansible, which templates it."""
    for key in sorted(k for k in hv if _tx2setup_reads(k)):
        value = hv[key]
        for text in value if isinstance(value, list) else [value]:
            if not isinstance(text, str):
                continue
            bad = CONTROL_CHAR.search(text)
            if bad:
                raise fail(key, f"holds a control character ({bad.group()!r} at offset {bad.start()}): {text[:60]!r}")
            if key in LITERAL_SSH_VARS and JINJA_MARKUP.search(text):
                raise fail(key, f"{text[:80]!r} holds Jinja markup; tx2setup reads this value as literal text")


def _check_url_length(key: str, url: str, fail: Callable[[str, str], InventoryError]) -> None:
    if len(url) > MAX_URL:
        raise fail(key, f"the URL is {len(url)} characters long (at most {MAX_URL})")
    name = url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
    if len(name.encode()) > MAX_URL_FILE_NAME:
        raise fail(key, f"the URL's file name is {len(name.encode())} bytes long (at most {MAX_URL_FILE_NAME})")


def _jetpack_of(hv: dict[str, Any], fail: Callable[[str, str], InventoryError]) -> str:
    """`jetpack`, or the JetPack of `l4t` (either may be given; both must agree)."""
    jetpack = hv.get("jetpack")
    l4t = hv.get("l4t")
    if jetpack is not None:
        jetpack = str(jetpack)
        if not re.fullmatch(r"\d+(\.\d+){0,3}", jetpack):
            raise fail("jetpack", f"{jetpack!r} is not a version like 4.6.4")
    if l4t is None:
        if jetpack is None:
            raise fail("jetpack", "missing (set jetpack or l4t on the host or inherit it from a group)")
        return jetpack
    l4t = str(l4t)
    if not re.fullmatch(r"\d+(\.\d+){1,3}", l4t):
        raise fail("l4t", f"{l4t!r} is not an L4T version like 32.7.4")
    from tx2setup.errors import MatrixError
    from tx2setup.matrix import load as load_matrix

    try:
        rel = load_matrix().release(l4t=l4t)
    except MatrixError as exc:
        raise fail("l4t", exc.message) from None
    if jetpack is not None and jetpack != rel.jetpack:
        raise fail("l4t", f"L4T {l4t} is JetPack {rel.jetpack}, but jetpack is {jetpack}")
    return rel.jetpack


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
        hint = None
        if p.is_file():
            body = p.read_text(encoding="utf-8", errors="replace")
            hint = _yaml_problem(body) if p.suffix in YAML_EXTS else _ini_problem(body)
        raise InventoryError(f"{p}: the inventory holds no hosts" + (f" ({hint})" if hint else ""))
    boards = [_board_from_vars(p, name, hv, groups.get(name, [])) for name, hv in sorted(hostvars.items())]
    seen: dict[tuple[str, int | None], str] = {}
    for b in boards:
        # host names are case-insensitive; the same address on another port is another board
        where = (b.ansible_host.lower().rstrip("."), b.ansible_port or 22)
        if where in seen:
            port = f" port {where[1]}" if b.ansible_port else ""
            raise _fail(p, b.name, "ansible_host", f"{b.ansible_host}{port} is also the address of {seen[where]}")
        seen[where] = b.name
    if limit:
        wanted = {x.strip() for x in limit.split(",") if x.strip()}
        boards = [b for b in boards if b.name in wanted or wanted & set(b.groups)]
        if not boards:
            raise InventoryError(f"{p}: --limit {limit!r} matches no host or group")
    return Inventory(path=p, boards=tuple(boards), vault_password_file=vault_password_file or _vault_hint(p, hostvars))
