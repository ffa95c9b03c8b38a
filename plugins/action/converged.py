# tx2setup.jetson.converged, the controller side: the digest of what decides a role's result
# (its files, the variables its defaults and vars files name, the plan, the board's OS facts,
# and any controller files it copies), then the module (plugins/modules/converged.py) on the
# board compares it and the board's managed state with the record of the role's last complete
# run. Why: docs/benchmarks.md, issue 14 ("Controller CPU"); the pattern: docs/ansible.md
# ("Converged roles").
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import yaml
from ansible.errors import AnsibleError
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase

# Facts that choose a role's OS vars file (the first_found in every role's main.yml)
FACTS = (
    "ansible_distribution",
    "ansible_distribution_version",
    "ansible_distribution_major_version",
    "ansible_architecture",
)
# Per-run transport: the run's artifact server and apt proxy listen on a new port each run;
# what they serve is pinned by sha256 (plan_*_sha256), so their address is not an input.
TRANSPORT_VARS = ("tx2setup_cache_url", "tx2setup_apt_proxy_url")
PLUGINS = Path(__file__).resolve().parent.parent  # the collection's plugins/: filters the roles call


def _tree_digest(top: Path, skip: tuple[str, ...] = ()) -> str:
    h = hashlib.sha256()
    if top.is_file():
        h.update(top.read_bytes())
        return h.hexdigest()
    for root, dirs, files in os.walk(top):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__" and not d.startswith("."))
        for name in sorted(files):
            path = Path(root, name)
            if name in skip or name.endswith(".pyc"):
                continue
            h.update(str(path.relative_to(top)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def _declared_names(role_path: Path) -> set[str]:
    """The variables the role declares (defaults/main.yml and every vars/ file), less those
    worked out from the board's facts (ansible_local, directly or through another such
    variable, e.g. jetpack_missing): the board state they reflect is in the module's digest,
    and as inputs they would differ between the run that installs and the run after it."""
    raw: dict[str, str] = {}
    for f in [role_path / "defaults" / "main.yml", *sorted((role_path / "vars").glob("*.yml"))]:
        if f.is_file():
            for name, value in (yaml.safe_load(f.read_text()) or {}).items():
                raw[name] = raw.get(name, "") + json.dumps(value, default=str)
    volatile = {"ansible_local"}
    grew = True
    while grew:
        more = {n for n, text in raw.items() if n not in volatile and any(v in text for v in volatile)}
        volatile |= more
        grew = bool(more)
    return set(raw) - volatile


class ActionModule(ActionBase):
    """Adds the inputs digest and runs the board-side module."""

    TRANSFERS_FILES = False
    _supports_check_mode = True
    _supports_async = False

    def _value(self, value: Any, transports: list[str]) -> Any:
        try:
            out = self._templar.template(value)
        except AnsibleError as exc:  # undefined in this run: a state of its own, stable across runs
            return f"<undefined: {type(exc).__name__}>"
        text = json.dumps(out, sort_keys=True, default=str)
        for base in transports:
            text = text.replace(base, "<run server>")
        return text

    def inputs_digest(self, task_vars: dict[str, Any], extra_paths: list[str]) -> str:
        role = self._task._role
        if role is None:
            raise AnsibleError("tx2setup.jetson.converged runs inside a role only")
        role_path = Path(role._role_path)
        transports = [str(self._templar.template(task_vars[v])).rstrip("/") for v in TRANSPORT_VARS if task_vars.get(v)]
        names = sorted(_declared_names(role_path) | {n for n in task_vars if n.startswith("plan_")})
        digest = {
            "role": _tree_digest(role_path, skip=("README.md",)),
            "plugins": _tree_digest(PLUGINS),
            "vars": {n: self._value(task_vars.get(n), transports) for n in names if n in task_vars},
            "facts": {f: str(task_vars.get(f)) for f in FACTS},
            "controller_files": {p: _tree_digest(Path(p)) if Path(p).exists() else "absent" for p in extra_paths},
        }
        return hashlib.sha256(json.dumps(digest, sort_keys=True).encode()).hexdigest()

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result: dict[str, Any] = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        args = dict(self._task.args)
        role = self._task._role
        args.setdefault("name", role.get_name() if role is not None else "")
        # `spec`: the role's state list as one variable (paths, packages, commands, and the
        # controller files it copies), so the probe and the record read the same list
        spec = args.pop("spec", None) or {}
        if not isinstance(spec, dict):
            raise AnsibleError(f"tx2setup.jetson.converged: spec must be a mapping, not {type(spec).__name__}")
        for key in ("paths", "packages", "commands", "controller_files"):
            if key in spec:
                args.setdefault(key, spec[key])
        controller_files = [str(p) for p in args.pop("controller_files", None) or []]
        state = args.get("state", "check")
        # the digest is taken at the probe, before the role's tasks register anything, and the
        # record is given the probe's (a variable may read what a task registers: pytorch_found)
        if state == "check" or (state == "record" and not args.get("inputs")):
            args["inputs"] = self.inputs_digest(task_vars, controller_files)
        gate = self._templar.template(task_vars.get("tx2setup_converge_gate", True))
        if state == "check" and not boolean(gate, strict=False):  # `-e tx2setup_converge_gate=false` is a string
            reason = "tx2setup_converge_gate is off"
            return {**result, "changed": False, "converged": False, "inputs": args["inputs"], "reason": reason}
        out = self._execute_module(module_name="tx2setup.jetson.converged", module_args=args, task_vars=task_vars)
        return {**result, **out, "inputs": args.get("inputs", "")}
