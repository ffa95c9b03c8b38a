"""STAND-IN for NVIDIA's nvpmodel (tx2setup sim): power modes of an emulated Jetson board.

Same command line and output as the real tool: `nvpmodel -q` prints
"NV Power Mode: <NAME>" then the mode id; `nvpmodel -m <id>` switches and persists the
mode in /var/lib/nvpmodel/status ("pmode:0002"), `-p --verbose` lists the modes from
/etc/nvpmodel.conf. On R35+ Orin a mode with another set of online cores asks on
stdin whether to reboot now (design.md section 4); the mode is stored either way.
Nothing here touches clocks: there are none to touch.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
from pathlib import Path

CONF = "etc/nvpmodel.conf"
BOARD = "etc/tx2setup-sim/board.json"
STATUS = "var/lib/nvpmodel/status"
# under /run: a real board forgets what jetson_clocks pinned when it reboots
CLOCKS_STATE = "run/tx2setup-sim/jetson_clocks"
MODEL_RE = re.compile(r"^<\s*POWER_MODEL\s+ID=(\d+)\s+NAME=(\S+)\s*>")
DEFAULT_RE = re.compile(r"^<\s*PM_CONFIG\s+DEFAULT=(\d+)\s*>")


class Conf:
    """The parsed nvpmodel.conf: modes in file order, the default, each mode's settings."""

    def __init__(self, modes: dict[int, str], default: int, settings: dict[int, list[tuple[str, str, str]]]) -> None:
        self.modes = modes
        self.default = default
        self.settings = settings

    def online_cpus(self, mode: int) -> list[int]:
        return [int(k.split("_")[1]) for name, k, v in self.settings.get(mode, []) if name == "CPU_ONLINE" and v == "1"]

    def all_cpus(self, mode: int) -> list[int]:
        return [int(k.split("_")[1]) for name, k, _ in self.settings.get(mode, []) if name == "CPU_ONLINE"]

    def value(self, mode: int, name: str, key: str) -> int | None:
        for n, k, v in self.settings.get(mode, []):
            if n == name and k == key:
                return int(v)
        return None


def parse_conf(text: str) -> Conf:
    modes: dict[int, str] = {}
    settings: dict[int, list[tuple[str, str, str]]] = {}
    default: int | None = None
    current: int | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        m = MODEL_RE.match(line)
        if m:
            current = int(m.group(1))
            modes[current] = m.group(2)
            settings[current] = []
            continue
        m = DEFAULT_RE.match(line)
        if m:
            default = int(m.group(1))
            current = None
            continue
        parts = line.split()
        if current is not None and len(parts) == 3:
            settings[current].append((parts[0], parts[1], parts[2]))
    if not modes:
        raise ValueError("no POWER_MODEL entries")
    if default is None or default not in modes:
        default = min(modes)
    return Conf(modes, default, settings)


def parse_status(text: str) -> int | None:
    m = re.search(r"pmode:(\d+)", text)
    return int(m.group(1)) if m else None


def format_status(mode: int) -> str:
    return f"pmode:{mode:04d}\n"


def format_query(conf: Conf, mode: int) -> str:
    return f"NV Power Mode: {conf.modes[mode]}\n{mode}\n"


def current_mode(conf: Conf, root: Path) -> int:
    try:
        mode = parse_status((root / STATUS).read_text())
    except OSError:
        mode = None
    return mode if mode is not None and mode in conf.modes else conf.default


def set_mode(conf: Conf, root: Path, mode: int) -> None:
    status = root / STATUS
    status.parent.mkdir(parents=True, exist_ok=True)
    tmp = status.with_name("status.tmp")
    tmp.write_text(format_status(mode))
    os.replace(tmp, status)
    # as on a real board, a mode change drops what jetson_clocks pinned
    with contextlib.suppress(FileNotFoundError):
        (root / CLOCKS_STATE).unlink()


def is_root(root: Path) -> bool:
    """Whether the caller may do what only root may (a fake root in unit tests counts as root)."""
    return root != Path("/") or os.geteuid() == 0


def l4t_major(root: Path) -> int:
    try:
        return int(json.loads((root / BOARD).read_text()).get("l4t_major", 0))
    except (OSError, ValueError):
        return 0


# What the login user sees after the mode on L4T R32: nvpmodel then reads the EMC cap,
# which only root may read (13 = EACCES). Real capture: tests/fixtures/real/
# nvpmodel-q-r32-nano-default.txt (https://github.com/NVIDIA-AI-IOT/jetbot/issues/49);
# TX2/Xavier have the same file (jetson_clocks' do_emc). The capture is a terminal's, so
# stdout/stderr are not told apart: the lines go to stdout, the stricter case for readers.
EMC_CAP = "/sys/kernel/nvpmodel_emc_cap/emc_iso_cap"
NON_ROOT_QUERY_ERRORS = (
    f"NVPM ERROR: Error opening {EMC_CAP}: 13\nNVPM ERROR: failed to read PARAM EMC: ARG MAX_FREQ: PATH {EMC_CAP}\n"
)


def needs_reboot(conf: Conf, root: Path, target: int) -> bool:
    """R35+ Orin (t234): a mode with another set of online cores asks for a reboot."""
    try:
        info = json.loads((root / BOARD).read_text())
    except (OSError, ValueError):
        return False
    if info.get("soc") != "t234" or int(info.get("l4t_major", 0)) < 35:
        return False
    return set(conf.online_cpus(current_mode(conf, root))) != set(conf.online_cpus(target))


USAGE = """Usage: nvpmodel [options]
  -m, --mode <x>       set power mode ID x
  -q, --query          print the current power mode
  -p, --verbose        with -p: print the power modes
  -f, --file <file>    use this config file instead of /etc/nvpmodel.conf
  -h, --help           print this help
(STAND-IN for NVIDIA nvpmodel, tx2setup sim)
"""


def main(argv: list[str], root: Path = Path("/")) -> int:
    out, err = sys.stdout, sys.stderr
    conf_path = root / CONF
    mode_arg: str | None = None
    query = verbose = print_modes = False
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in ("-h", "--help"):
            out.write(USAGE)
            return 0
        if a in ("-q", "--query"):
            query = True
        elif a == "--verbose":
            verbose = True
        elif a == "-p":
            print_modes = True
        elif a in ("-m", "--mode", "-f", "--file"):
            if i + 1 >= len(argv):
                err.write(f"NVPM ERROR: option {a} requires an argument\n")
                return 1
            if a in ("-m", "--mode"):
                mode_arg = argv[i + 1]
            else:
                conf_path = Path(argv[i + 1])
            i += 1
        elif a.startswith("-m") and a[2:].isdigit():
            mode_arg = a[2:]
        else:
            err.write(f"NVPM ERROR: unknown option {a}\n{USAGE}")
            return 1
        i += 1
    try:
        conf = parse_conf(conf_path.read_text())
    except (OSError, ValueError) as exc:
        err.write(f"NVPM ERROR: failed to read config file {conf_path}: {exc}\n")
        return 1
    if print_modes and verbose:
        for mode_id, name in conf.modes.items():
            out.write(f"NVPM VERB: POWER_MODEL: ID={mode_id} NAME={name}\n")
    if mode_arg is not None:
        if not mode_arg.isdigit() or int(mode_arg) not in conf.modes:
            err.write(f"NVPM ERROR: Invalid power mode ID: {mode_arg}\n")
            return 1
        if not is_root(root):
            err.write("NVPM ERROR: failed to set power mode: permission denied (run as root)\n")
            return 1
        target = int(mode_arg)
        if needs_reboot(conf, root, target):
            # as the real tool on R35+ Orin: it asks, and a mode that re-plans the cores
            # only takes hold at the next boot; the stand-in stores it either way
            out.write(f"NVPM WARN: Reboot required for changing to this power mode: {target}\n")
            out.write("NVPM WARN: DO YOU WANT TO REBOOT NOW? enter YES/yes to confirm:\n")
            out.flush()
            answer = sys.stdin.readline().strip() if sys.stdin is not None else ""
            if answer in ("YES", "yes"):
                out.write("NVPM WARN: (STAND-IN) an emulated board does not reboot; the mode is set now\n")
            else:
                out.write(f"NVPM WARN: power mode {target} is stored and applies at the next boot\n")
        set_mode(conf, root, target)
        if verbose:
            out.write(f"NVPM VERB: Power mode set to {conf.modes[int(mode_arg)]} ({mode_arg})\n")
    if query:
        out.write(format_query(conf, current_mode(conf, root)))
        if not is_root(root) and l4t_major(root) == 32:
            out.write(NON_ROOT_QUERY_ERRORS)
    if not (query or mode_arg is not None or print_modes):
        out.write(USAGE)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
