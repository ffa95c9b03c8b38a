"""Guard: every command a role runs on a board works with the oldest tools its OS ships.

The rule (docs/real-boards.md, "Ubuntu tool versions per JetPack, and the rule for commands
run on boards"): a role that lists Ubuntu 18.04 (bionic) in meta/main.yml must run with
CMake 3.10.2, pip 9.0.1, Python 3.6.9, apt 1.6, git 2.17 and sudo 1.8.21. The scan reads
each role's tasks (command/shell/raw argv and strings, their task vars, the pip module's
parameters), its templates and files, and resolves `{{ var }}` from defaults/ and the
vars/<OS>.yml of each OS the role runs on, so an option set only for Debian 12 (e.g. pip's
--break-system-packages) is checked against Debian 12's pip, not 18.04's.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ROLES = ROOT / "roles"
DOC = ROOT / "docs" / "real-boards.md"

# The oldest version of each tool per OS (the release's final -updates version is newer only
# in its patch level). Sources: docs/real-boards.md, the table "Ubuntu tool versions".
TOOLS: dict[str, dict[str, str]] = {
    "Ubuntu-18.04": {"python": "3.6.9", "pip": "9.0.1", "cmake": "3.10.2", "gcc": "7.5.0", "git": "2.17.1",
                     "openssh": "7.6", "apt": "1.6", "sudo": "1.8.21"},
    "Ubuntu-20.04": {"python": "3.8.10", "pip": "20.0.2", "cmake": "3.16.3", "gcc": "9.4.0", "git": "2.25.1",
                     "openssh": "8.2", "apt": "2.0", "sudo": "1.8.31"},
    "Ubuntu-22.04": {"python": "3.10.12", "pip": "22.0.2", "cmake": "3.22.1", "gcc": "11.4.0", "git": "2.34.1",
                     "openssh": "8.9", "apt": "2.4", "sudo": "1.9.9"},
    "Debian-12": {"python": "3.11.2", "pip": "23.0.1", "cmake": "3.25.1", "gcc": "12.2.0", "git": "2.39.2",
                  "openssh": "9.2", "apt": "2.6", "sudo": "1.9.13"},
}  # fmt: skip
CODENAMES = {"bionic": "Ubuntu-18.04", "focal": "Ubuntu-20.04", "jammy": "Ubuntu-22.04", "bookworm": "Debian-12"}

# (tool, option or sub-command, first version that has it, source)
CMAKE_OPTIONS = {
    "-S": ("3.13", "https://cmake.org/cmake/help/latest/release/3.13.html (-S/-B)"),
    "-B": ("3.13", "https://cmake.org/cmake/help/latest/release/3.13.html (-S/-B)"),
    "--install": ("3.15", "https://cmake.org/cmake/help/latest/release/3.15.html (cmake --install)"),
    "--toolchain": ("3.21", "https://cmake.org/cmake/help/latest/release/3.21.html"),
    "--preset": ("3.19", "https://cmake.org/cmake/help/latest/release/3.19.html"),
    "--fresh": ("3.24", "https://cmake.org/cmake/help/latest/release/3.24.html"),
}
CMAKE_BUILD_PARALLEL = ("3.12", "https://cmake.org/cmake/help/latest/release/3.12.html (cmake --build --parallel/-j)")
PIP_OPTIONS = {  # pip's NEWS.rst (https://pip.pypa.io/en/stable/news/): the release that added each
    "--progress-bar": "10.0",
    "--no-warn-script-location": "10.0",
    "--no-build-isolation": "10.0",
    "--prefer-binary": "18.0",
    "--use-pep517": "19.0",
    "--no-python-version-warning": "19.2",
    "--use-feature": "20.0",
    "--use-deprecated": "20.3",
    "--root-user-action": "22.1",
    "--break-system-packages": "23.0.1",
}
VENV_OPTIONS = {"--upgrade-deps": "3.9", "--without-scm-ignore-files": "3.13"}  # docs.python.org/3/library/venv.html
APT_SUBCOMMANDS = {"satisfy": "1.9"}  # apt's NEWS / apt-get(8): "satisfy" came with apt 1.9
GIT_SUBCOMMANDS = {"switch": "2.23", "restore": "2.23"}  # git 2.23.0 release notes
SUDO_OPTIONS = {"-D": "1.9.3", "--chdir": "1.9.3"}  # sudo 1.9.3 CHANGELOG (-D/--chdir; before, -D was debug)
# ansible.builtin.pip parameters that make the module pass such an option to pip
PIP_MODULE_PARAMS = {"break_system_packages": ("pip", "23.0.1", "--break-system-packages")}

SEPARATORS = re.compile(r"&&|\|\||;|\||\n")
JINJA = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:\|[^}]*)?\}\}")


def version_key(v: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", v)[:3])


@dataclass(frozen=True)
class Finding:
    where: str
    os: str
    message: str

    def __str__(self) -> str:
        return f"{self.where} [{self.os}]: {self.message}"


def _too_new(tool: str, need: str, what: str, os_name: str) -> str | None:
    have = TOOLS[os_name][tool]
    if version_key(have) < version_key(need):
        return f"{what} needs {tool} {need}, {os_name} has {have}"
    return None


def _tokens(command: str) -> list[str]:
    try:
        return shlex.split(command)
    except ValueError:
        return command.split()


def _check_cmake(args: list[str], os_name: str) -> list[str]:
    out = []
    args = args[: args.index("--")] if "--" in args else args  # after --: the native tool's own flags
    for arg in args:
        for opt, (need, src) in CMAKE_OPTIONS.items():
            if arg == opt or (opt in ("-S", "-B") and arg.startswith(opt) and len(arg) > 2):
                out.append(_too_new("cmake", need, f"`cmake {opt}` ({src})", os_name))
    if "--build" in args and any(a in ("--parallel", "-j") or re.fullmatch(r"-j\d+|--parallel=?\d*", a) for a in args):
        out.append(
            _too_new(
                "cmake", CMAKE_BUILD_PARALLEL[0], f"`cmake --build -j/--parallel` ({CMAKE_BUILD_PARALLEL[1]})", os_name
            )
        )
    return [m for m in out if m]


def _check_pip(args: list[str], os_name: str) -> list[str]:
    out = []
    for arg in args:
        opt = arg.split("=", 1)[0]
        if opt in PIP_OPTIONS:
            out.append(_too_new("pip", PIP_OPTIONS[opt], f"pip `{opt}`", os_name))
    return [m for m in out if m]


SUDO_WITH_ARG = {"-u", "-g", "-D", "--chdir", "-C", "-p", "-U", "-r", "-t", "-h"}


def _skip_sudo(toks: list[str], os_name: str, found: list[str]) -> list[str]:
    """The command after sudo's own options; options too new for os_name go to `found`."""
    while toks and toks[0].startswith("-"):
        opt = toks[0].split("=", 1)[0]
        if opt in SUDO_OPTIONS:
            msg = _too_new("sudo", SUDO_OPTIONS[opt], f"`sudo {opt}`", os_name)
            found += [msg] if msg else []
        toks = toks[2:] if opt in SUDO_WITH_ARG and "=" not in toks[0] else toks[1:]
    return toks


def check_command(command: str, os_name: str) -> list[str]:
    """What in one shell command line (possibly several commands) is too new for os_name."""
    found: list[str] = []
    # an unresolved Jinja expression is one word (its filters' | are no shell pipes)
    command = re.sub(r"\{\{.*?\}\}", "JINJA", re.sub(r"\{%.*?%\}", " ", command, flags=re.S), flags=re.S)
    for part in SEPARATORS.split(command):
        toks = _tokens(part.strip())
        while toks and (("=" in toks[0] and not toks[0].startswith("-")) or toks[0] in ("sudo", "env", "exec")):
            toks = _skip_sudo(toks[1:], os_name, found) if toks[0] == "sudo" else toks[1:]
        if not toks:
            continue
        prog, args = Path(toks[0]).name, toks[1:]
        if prog == "cmake":
            found += _check_cmake(args, os_name)
        elif re.fullmatch(r"pip3?(\.\d+)?", prog):
            found += _check_pip(args, os_name)
        elif re.fullmatch(r"python3?(\.\d+)?", prog) and args[:2] == ["-m", "pip"]:
            found += _check_pip(args[2:], os_name)
        elif re.fullmatch(r"python3?(\.\d+)?", prog) and args[:2] == ["-m", "venv"]:
            found += [
                m
                for a in args[2:]
                if a in VENV_OPTIONS
                for m in [_too_new("python", VENV_OPTIONS[a], f"`python3 -m venv {a}`", os_name)]
                if m
            ]
        elif prog in ("apt-get", "apt") and args:
            sub = next((a for a in args if not a.startswith("-")), "")
            if sub in APT_SUBCOMMANDS:
                found += [m for m in [_too_new("apt", APT_SUBCOMMANDS[sub], f"`{prog} {sub}`", os_name)] if m]
        elif prog == "git" and args:
            sub = next((a for a in args if not a.startswith("-")), "")
            if sub in GIT_SUBCOMMANDS:
                found += [m for m in [_too_new("git", GIT_SUBCOMMANDS[sub], f"`git {sub}`", os_name)] if m]
    return found


# ---- reading roles -------------------------------------------------------------------


def role_oses(role: Path) -> list[str]:
    """The OSes a role runs on: its meta/main.yml platforms (codenames), Debian 12 always (emulated boards)."""
    meta = yaml.safe_load((role / "meta" / "main.yml").read_text()) if (role / "meta" / "main.yml").exists() else {}
    oses = ["Debian-12"]
    for platform in (meta or {}).get("galaxy_info", {}).get("platforms", []):
        for v in platform.get("versions", []):
            if str(v) in CODENAMES and CODENAMES[str(v)] not in oses:
                oses.append(CODENAMES[str(v)])
    return oses


def role_vars(role: Path, os_name: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in (role / "defaults" / "main.yml", role / "vars" / "main.yml", role / "vars" / f"{os_name}.yml"):
        if f.exists():
            out.update(yaml.safe_load(f.read_text()) or {})
    return out


def render(text: str, variables: dict[str, Any], depth: int = 3) -> str:
    """`{{ name }}` replaced by the variable's text where it is a string or a list of strings."""

    def sub(m: re.Match[str]) -> str:
        value = variables.get(m.group(1))
        if isinstance(value, str):
            return value
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return " ".join(value)
        return m.group(0)

    for _ in range(depth):
        text = JINJA.sub(sub, text)
    return text


COMMAND_MODULES = {"command", "shell", "raw", "ansible.builtin.command", "ansible.builtin.shell", "ansible.builtin.raw"}
PIP_MODULES = {"pip", "ansible.builtin.pip"}


def _walk_tasks(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, list):
        for item in node:
            yield from _walk_tasks(item)
    elif isinstance(node, dict):
        yield node
        for key in ("block", "rescue", "always"):
            if key in node:
                yield from _walk_tasks(node[key])


def _flat(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [" ".join(str(v) for v in value)] if all(not isinstance(v, (list, dict)) for v in value) else []
    if isinstance(value, dict):
        return [s for v in value.values() for s in _flat(v)]
    return []


def task_commands(task: dict[str, Any]) -> list[str]:
    """The command lines a task runs: its command module's string/cmd/argv, the lists in its
    vars (an argv built from them), and for the pip module `pip install <extra_args>`."""
    out: list[str] = []
    for key, value in task.items():
        if key in COMMAND_MODULES:
            if isinstance(value, dict):
                out += _flat({k: v for k, v in value.items() if k in ("cmd", "argv", "_raw_params")})
            else:
                out += _flat(value)
            out += [s for v in (task.get("vars") or {}).values() if isinstance(v, list) for s in _flat(v)]
        elif key in PIP_MODULES and isinstance(value, dict):
            out.append("pip install " + " ".join(str(value.get(k, "")) for k in ("extra_args",)))
            if value.get("virtualenv_command"):
                out.append(str(value["virtualenv_command"]))
    return out


def scan_tasks_text(text: str, where: str, os_name: str, variables: dict[str, Any]) -> list[Finding]:
    found = []
    for task in _walk_tasks(yaml.safe_load(text)):
        for key, value in task.items():
            if key in PIP_MODULES and isinstance(value, dict):
                for param, (tool, need, what) in PIP_MODULE_PARAMS.items():
                    if param in value and str(render(str(value[param]), variables)).lower() not in ("false", "no"):
                        msg = _too_new(tool, need, f"pip module `{param}` (passes {what})", os_name)
                        if msg:
                            found.append(Finding(where, os_name, msg))
        for command in task_commands(task):
            found += [Finding(where, os_name, m) for m in check_command(render(command, variables), os_name)]
    return found


def scan_script_text(text: str, where: str, os_name: str, variables: dict[str, Any]) -> list[Finding]:
    text = render(text.replace("\\\n", " "), variables)
    return [Finding(where, os_name, m) for m in check_command(text, os_name)]


def scan_role(role: Path) -> list[Finding]:
    found: list[Finding] = []
    for os_name in role_oses(role):
        variables = role_vars(role, os_name)
        for f in sorted((role / "tasks").rglob("*.yml")) if (role / "tasks").is_dir() else []:
            found += scan_tasks_text(f.read_text(), str(f.relative_to(ROOT)), os_name, variables)
        for sub in ("templates", "files"):
            for f in sorted((role / sub).rglob("*")) if (role / sub).is_dir() else []:
                if f.is_file() and f.suffix not in (".patch", ".diff"):  # patches change code, run nothing
                    found += scan_script_text(
                        f.read_text(errors="replace"), str(f.relative_to(ROOT)), os_name, variables
                    )
    return found


# ---- the tests ---------------------------------------------------------------------


@pytest.mark.parametrize("role", sorted(p.name for p in ROLES.iterdir() if (p / "tasks").is_dir()))
def test_role_commands_work_with_the_oldest_tools(role: str) -> None:
    findings = scan_role(ROLES / role)
    assert not findings, "\n".join(str(f) for f in findings)


BAD_TASKS = """
- name: Configure
  ansible.builtin.command:
    argv: "{{ args + [src] }}"
  vars:
    args: [cmake, -S, /src, -B, /src/build]
- name: Build
  ansible.builtin.command: cmake --build {{ (src ~ '/build') | quote }} --parallel {{ jobs | int }}
- name: Install
  ansible.builtin.shell: cd /src && cmake --install build && echo done
- name: Venv
  ansible.builtin.command: python3 -m venv --upgrade-deps /opt/venv
- name: Pip options
  ansible.builtin.pip:
    name: torch
    extra_args: "{{ extra }} --progress-bar off"
- name: Pip module parameter
  ansible.builtin.pip:
    name: numpy
    break_system_packages: true
- name: Apt satisfy
  ansible.builtin.command: apt-get satisfy -y "cmake (>= 3.10)"
"""


def test_guard_catches_a_planted_bad_task() -> None:
    found = [
        f.message
        for f in scan_tasks_text(BAD_TASKS, "planted.yml", "Ubuntu-18.04", {"extra": "--no-warn-script-location"})
    ]
    text = "\n".join(found)
    for needle in (
        "`cmake -S`",
        "`cmake -B`",
        "`cmake --build -j/--parallel`",
        "`cmake --install`",
        "`python3 -m venv --upgrade-deps`",
        "pip `--progress-bar`",
        "pip `--no-warn-script-location`",  # from the variable
        "pip module `break_system_packages`",
        "`apt-get satisfy`",
    ):
        assert needle in text, f"not caught: {needle}\n{text}"
    assert all("Ubuntu-18.04 has" in m for m in found)


def test_the_same_task_is_fine_where_the_tools_are_new_enough() -> None:
    found = [f.message for f in scan_tasks_text(BAD_TASKS, "planted.yml", "Debian-12", {"extra": ""})]
    assert found == []


def test_what_cmake_3_10_and_pip_9_accept_passes() -> None:
    good = [
        "cmake -DCMAKE_BUILD_TYPE=Release -DBLAS=Open /usr/local/src/caffe",
        "cmake --build . -- -j2",  # -j after --: make's flag
        "make -j2 && make install",
        "pip3 install --no-deps --no-cache-dir --index-url https://example.org/simple torch==1.10.0",
        "python3 -m pip install -c constraints.txt numpy",  # constraints files: pip 7.1
        "python3 -m venv --system-site-packages /opt/venv",
        "apt-get install -y --no-install-recommends cmake",
    ]
    for command in good:
        assert check_command(command, "Ubuntu-18.04") == [], command


def test_a_planted_template_line_is_caught() -> None:
    script = (
        "#!/bin/sh\nset -e\ncd /src && \\\n  cmake -B build -S . \n"
        "sudo --chdir /tmp {{ pip }} install --use-feature=fast-deps x\n"
    )
    found = [f.message for f in scan_script_text(script, "planted.sh.j2", "Ubuntu-18.04", {"pip": "pip3"})]
    assert any("`cmake -B`" in m for m in found) and any("`cmake -S`" in m for m in found)
    assert any("`sudo --chdir`" in m for m in found) and any("pip `--use-feature`" in m for m in found)


def test_os_specific_vars_are_checked_against_their_own_os() -> None:
    role_vars_by_os = {
        "Debian-12": {"extra": "--no-deps --break-system-packages"},
        "Ubuntu-18.04": {"extra": ""},
    }
    task = '- name: Pip\n  ansible.builtin.pip:\n    name: torch\n    extra_args: "{{ extra }}"\n'
    for os_name, variables in role_vars_by_os.items():
        assert scan_tasks_text(task, "t.yml", os_name, variables) == []
    assert scan_tasks_text(task, "t.yml", "Ubuntu-18.04", role_vars_by_os["Debian-12"]), (
        "18.04's pip has no such option"
    )


def test_docs_table_matches_the_guard() -> None:
    """docs/real-boards.md's version table and TOOLS say the same (one truth, written twice)."""
    text = DOC.read_text()
    columns = ["python", "pip", "cmake", "gcc", "git", "openssh", "apt", "sudo"]
    for os_name, tools in TOOLS.items():
        label = os_name.replace("-", " ")
        row = next((line for line in text.splitlines() if line.startswith(f"| {label} ")), None)
        assert row is not None, f"no row for {label} in {DOC}"
        cells = [c.strip() for c in row.strip("|").split("|")]
        for col, cell in zip(columns, cells[2 : 2 + len(columns)], strict=True):
            assert cell.startswith(tools[col]), f"{label} {col}: docs say {cell}, the guard {tools[col]}"
