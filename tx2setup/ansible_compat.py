"""Whether the installed ansible-core can manage each board's Python.

ansible-core 2.16 is the last release whose modules run on Python 3.6 (every TX2 on
JetPack 4); 2.17 needs 3.7+ on the target and 2.18+ needs 3.8+.
"""

from __future__ import annotations

from importlib import metadata

from tx2setup.matrix import version_key
from tx2setup.plan import BoardPlan

# ansible-core (major, minor) from which a target Python floor applies
TARGET_PYTHON_FLOOR = [((2, 18), (3, 8)), ((2, 17), (3, 7))]


def installed_ansible_core() -> str | None:
    try:
        return metadata.version("ansible-core")
    except metadata.PackageNotFoundError:
        return None


def min_target_python(ansible_core: str) -> tuple[int, ...]:
    core = version_key(ansible_core.split("rc")[0].split("b")[0])[:2]
    for since, floor in TARGET_PYTHON_FLOOR:
        if core >= since:
            return floor
    return (2, 7)


def warnings_for(plans: list[BoardPlan], ansible_core: str | None = None) -> list[str]:
    core = ansible_core or installed_ansible_core()
    if core is None:
        return ["ansible-core is not installed: provision and verify will not run"]
    floor = min_target_python(core)
    out = []
    for p in plans:
        if version_key(p.python) < floor:
            need = ".".join(map(str, floor))
            out.append(
                f"{p.name}: ansible-core {core} needs Python >= {need} on the board, "
                f"but JetPack {p.jetpack} has Python {p.python}; install ansible-core 2.16"
            )
    return out
