"""Where an inventory error comes from: the file, line, host and variable to name.

Ansible parses the inventory (fleet.py runs ansible-inventory); this module only words its
failures and tx2setup's own refusals so that the one line a user sees points at the place
to fix: ansible-inventory's wrapped multi-plugin complaint reduced to the file at fault
(the inventory, or a group_vars/host_vars file it pulls in) and its line, and a bad board
variable traced to the host_vars/group_vars file that set it. Nothing here decides whether
an inventory is valid.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from tx2setup.errors import InventoryError

INI_SECTION = re.compile(r"^\[([A-Za-z0-9_.-]+)(:(vars|children))?\]\s*([#;].*)?$")
YAML_EXTS = (".yml", ".yaml", ".json")


def ansible_error_line(stderr: str, path: Path) -> str:
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
    try:
        text = f.read_text(encoding="utf-8", errors="replace")
        if text.lstrip().startswith("$ANSIBLE_VAULT"):
            return False
        data = yaml.safe_load(text)
    except (OSError, yaml.YAMLError):
        return False
    return isinstance(data, dict) and key in data


def field_error(
    path: Path, host: str, fieldname: str, msg: str, groups: Sequence[str] = (), hv: dict[str, Any] | None = None
) -> InventoryError:
    where = origin(path, host, groups, fieldname, hv) if hv is not None else ""
    return InventoryError(f"{path}: host {host}: {fieldname}: {msg}{where}")


def structure_problem(path: Path) -> str | None:
    """The first structural problem of an inventory file that Ansible read as holding no hosts
    (it skips keys it does not know, with a warning), with its line; None when none is found."""
    if not path.is_file():
        return None
    body = path.read_text(encoding="utf-8", errors="replace")
    return _yaml_problem(body) if path.suffix in YAML_EXTS else _ini_problem(body)
