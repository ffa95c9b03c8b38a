"""The converged probe (plugins/modules/converged.py, plugins/action/converged.py) and the roles'
state lists: a role skips its tasks only when its record, its inputs and the board state it
manages all match (docs/ansible.md, "Converged roles")."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
MODULE = ROOT / "plugins" / "modules" / "converged.py"
GATED = sorted(p.parent.parent for p in (ROOT / "roles").glob("*/tasks/converge.yml"))

# The modules whose target a task writes, and the argument that names it
WRITERS = {
    "copy": "dest",
    "template": "dest",
    "file": "path",
    "lineinfile": "path",
    "blockinfile": "path",
    "replace": "path",
    "get_url": "dest",
    "unarchive": "dest",
    "command": "creates",
    "shell": "creates",
}
# Paths a converge task writes that are deliberately not in the role's state list, and why
EXEMPT = {
    ("acceptance", "{{ acceptance_scratch.path }}"): "a scratch directory on the control host",
    ("caffe", "{{ item }}"): "download, source, patch, build and ccache directories: build inputs",
    ("caffe", "{{ caffe_download_dir }}/{{ caffe_tarball_url | urlsplit('path') | basename }}"): "a download",
    ("caffe", "{{ caffe_src_dir }}"): "the source tree: the installed tree and its build record are the state",
    ("caffe", "{{ caffe_patch_dir }}/{{ item }}"): "build inputs (in the build record's id)",
    ("jetpack", "{{ jetpack_sources_file }}"): "read through sed (commands), the proxy form undone",
    ("jetson_base", "/etc/systemd/system/{{ item.name }}"): "a loop: both units are listed by name",
    ("jetson_base", "{{ item }}"): "a loop over the unit paths, listed by name",
    ("pytorch", "{{ pytorch_venv }}/bin/python"): "the venv's Python runs the state command",
    ("pytorch", "{{ pytorch_site.stdout | trim }}/{{ item }}.py"): "hashed by the state command",
    ("pytorch", "{{ pytorch_download_dir }}"): "a download directory",
    ("pytorch", "{{ pytorch_download_dir }}/{{ pytorch_wheel_name }}"): "a download, removed after install",
    ("pytorch", "{{ pytorch_download_dir }}/{{ pytorch_torchvision_wheel_url | urlsplit('path') | basename }}"): (
        "a download, removed after install"
    ),
    ("zed_sdk", "{{ zed_sdk_download_dir }}"): "a download directory",
    ("zed_sdk", "{{ zed_sdk_download_dir }}/zed_sdk_{{ zed_sdk_release }}.run"): "a download, removed after install",
}


def _written(task: dict[str, Any]) -> list[str]:
    out = []
    for key, value in task.items():
        short = key.split(".")[-1]
        if short in WRITERS:
            args = value if isinstance(value, dict) else task.get("args") or {}
            if args.get(WRITERS[short]):
                out.append(str(args[WRITERS[short]]))
    return out


def written_paths(tasks_file: Path, seen: set[Path] | None = None) -> list[str]:
    """Every path a task in this file (its blocks and imported/included files) writes."""
    seen = seen if seen is not None else {tasks_file}
    out: list[str] = []
    stack = list(yaml.safe_load(tasks_file.read_text()) or [])
    while stack:
        task = stack.pop(0)
        for key in ("block", "rescue", "always"):
            stack.extend(task.get(key) or [])
        for key, value in task.items():
            if key.split(".")[-1] in ("import_tasks", "include_tasks"):
                nested = tasks_file.parent / (value if isinstance(value, str) else value["file"])
                if nested not in seen:
                    seen.add(nested)
                    out.extend(written_paths(nested, seen))
        out.extend(_written(task))
    return out


def state_of(role: Path) -> dict[str, Any]:
    spec: dict[str, Any] = yaml.safe_load((role / "vars" / "main.yml").read_text())[f"{role.name}_converged_state"]
    return spec


def covered(path: str, listed: list[str]) -> bool:
    return any(path == s or (s.endswith("/**") and (path == s[:-3] or path.startswith(s[:-3] + "/"))) for s in listed)


def test_the_gated_roles() -> None:
    assert [r.name for r in GATED] == ["acceptance", "caffe", "jetpack", "jetson_base", "pytorch", "ros", "zed_sdk"]


@pytest.mark.parametrize("role", GATED, ids=lambda r: r.name)
def test_every_path_a_converge_task_writes_is_in_the_state_list(role: Path) -> None:
    listed = state_of(role).get("paths", [])
    written = written_paths(role / "tasks" / "converge.yml")
    missing = [p for p in written if not covered(p, listed) and (role.name, p) not in EXEMPT]
    assert missing == [], f"{role.name}: add these to {role.name}_converged_state (vars/main.yml) or EXEMPT"


@pytest.mark.parametrize("role", GATED, ids=lambda r: r.name)
def test_the_probe_and_the_record_read_the_same_list(role: Path) -> None:
    main = (role / "tasks" / "main.yml").read_text()
    converge = yaml.safe_load((role / "tasks" / "converge.yml").read_text())
    var = f"{role.name}_converged_state"
    assert f'spec: "{{{{ {var} }}}}"' in main
    record = converge[-1]["tx2setup.jetson.converged"]
    inputs = f"{{{{ {role.name}_converged.inputs }}}}"
    assert record == {"state": "record", "spec": f"{{{{ {var} }}}}", "inputs": inputs}
    assert converge[0]["tx2setup.jetson.converged"] == {"state": "forget"}, "the record goes first"


def test_no_exemption_is_stale() -> None:
    written = {(r.name, p) for r in GATED for p in written_paths(r / "tasks" / "converge.yml")}
    assert set(EXEMPT) <= written


# --- the board side, run as Ansible runs it: a module file and its arguments in a JSON file


def run_module(tmp_path: Path, **args: Any) -> dict[str, Any]:
    argfile = tmp_path / "args.json"
    args.setdefault("record_dir", str(tmp_path / "records"))
    args.setdefault("name", "demo")
    argfile.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
    proc = subprocess.run([sys.executable, str(MODULE), str(argfile)], capture_output=True, text=True, check=False)
    out: dict[str, Any] = json.loads(proc.stdout)
    assert not out.get("failed"), out
    return out


@pytest.fixture
def managed(tmp_path: Path) -> dict[str, Any]:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "conf").write_text("a = 1\n")
    (tmp_path / "tree" / "sub").mkdir(parents=True)
    (tmp_path / "tree" / "sub" / "f.py").write_text("x = 1\n")
    return {
        "paths": [str(tmp_path / "etc" / "conf"), str(tmp_path / "tree") + "/**", str(tmp_path / "absent")],
        "commands": [["echo", "hello"], ["no-such-command-here"]],
        "inputs": "digest-1",
    }


def test_no_record_then_recorded_then_converged(tmp_path: Path, managed: dict[str, Any]) -> None:
    first = run_module(tmp_path, **managed)
    assert first["converged"] is False and first["reason"] == "no record of a complete run"
    assert run_module(tmp_path, state="record", **managed)["changed"] is False
    again = run_module(tmp_path, **managed)
    assert again["converged"] is True and again["state_digest"] == first["state_digest"]


@pytest.mark.parametrize(
    "drift",
    [
        lambda t: (t / "etc" / "conf").write_text("a = 2\n"),
        lambda t: (t / "etc" / "conf").chmod(0o600),
        lambda t: (t / "tree" / "sub" / "new.py").write_text(""),
        lambda t: (t / "absent").write_text(""),
    ],
    ids=["content", "mode", "new file in a tree", "a file that was absent"],
)
def test_board_drift_is_not_converged(tmp_path: Path, managed: dict[str, Any], drift: Any) -> None:
    run_module(tmp_path, state="record", **managed)
    drift(tmp_path)
    out = run_module(tmp_path, **managed)
    assert out["converged"] is False and out["reason"] == "the board's state changed since the last complete run"


def test_changed_inputs_are_not_converged(tmp_path: Path, managed: dict[str, Any]) -> None:
    run_module(tmp_path, state="record", **managed)
    out = run_module(tmp_path, **{**managed, "inputs": "digest-2"})
    assert out["converged"] is False and "inputs changed" in out["reason"]


def test_bytecode_and_big_files(tmp_path: Path, managed: dict[str, Any]) -> None:
    big = tmp_path / "swap"
    big.write_bytes(b"\0" * (2 << 20))
    spec = {**managed, "paths": [*managed["paths"], str(big)]}
    run_module(tmp_path, state="record", **spec)
    (tmp_path / "tree" / "sub" / "__pycache__").mkdir()
    (tmp_path / "tree" / "sub" / "__pycache__" / "f.cpython-311.pyc").write_bytes(b"x")
    with big.open("r+b") as f:  # same size, other bytes: a big file counts by size
        f.write(b"\1")
    assert run_module(tmp_path, **spec)["converged"] is True
    big.write_bytes(b"\0" * (1 << 20))
    assert run_module(tmp_path, **spec)["converged"] is False


def test_forget_and_check_mode(tmp_path: Path, managed: dict[str, Any]) -> None:
    run_module(tmp_path, state="record", **managed)
    run_module(tmp_path, state="forget", _ansible_check_mode=True, **managed)
    assert run_module(tmp_path, **managed)["converged"] is True, "check mode removed the record"
    run_module(tmp_path, state="forget", **managed)
    assert run_module(tmp_path, **managed)["reason"] == "no record of a complete run"
    run_module(tmp_path, state="record", _ansible_check_mode=True, **managed)
    assert not (tmp_path / "records" / "demo.json").exists(), "check mode wrote a record"


def test_packages_count(tmp_path: Path) -> None:
    """dpkg-query's view of the packages is part of the state (this host is Debian)."""
    out = run_module(tmp_path, packages=["dpkg"])
    assert run_module(tmp_path, packages=["dpkg", "no-such-package-tx2setup"])["state_digest"] != out["state_digest"]


# --- the controller side


def _action() -> ModuleType:
    path = ROOT / "plugins" / "action" / "converged.py"
    spec = importlib.util.spec_from_file_location("tx2setup_converged_action", path)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_inputs_leave_out_what_the_facts_decide(tmp_path: Path) -> None:
    (tmp_path / "defaults").mkdir()
    (tmp_path / "vars").mkdir()
    (tmp_path / "defaults" / "main.yml").write_text("demo_a: 1\ndemo_b: '{{ demo_a }}'\n")
    (tmp_path / "vars" / "main.yml").write_text(
        "demo_missing: \"{{ demo_a | f(ansible_local | default({})) }}\"\ndemo_via: '{{ demo_missing | length > 0 }}'\n"
    )
    assert _action()._declared_names(tmp_path) == {"demo_a", "demo_b"}


def test_role_files_digest(tmp_path: Path) -> None:
    digest = _action()._tree_digest
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "main.yml").write_text("- name: x\n")
    (tmp_path / "README.md").write_text("docs")
    first = digest(tmp_path, skip=("README.md",))
    (tmp_path / "README.md").write_text("other docs")
    assert digest(tmp_path, skip=("README.md",)) == first
    (tmp_path / "tasks" / "main.yml").write_text("- name: y\n")
    assert digest(tmp_path, skip=("README.md",)) != first
