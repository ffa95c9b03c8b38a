"""Where the Ansible content lives (a checkout, or the copy the wheel carries) and what its
roles default to, read from the roles themselves so Python never keeps a second copy."""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from tx2setup.errors import EnvironmentProblem

PLAYBOOK = "playbooks/site.yml"


def project_root() -> Path:
    """The directory holding ansible.cfg, playbooks/ and roles/: TX2SETUP_PLAYBOOK_DIR if
    set, else the checkout tx2setup runs from, else the copy inside the installed package
    (tx2setup/ansible, which the wheel carries; in a checkout it is symlinks to the root)."""
    env = os.environ.get("TX2SETUP_PLAYBOOK_DIR")
    package = Path(__file__).resolve().parent
    candidates = [Path(env)] if env else [package.parent, package / "ansible"]
    for root in candidates:
        if (root / PLAYBOOK).is_file():
            return root
    raise EnvironmentProblem(
        f"{candidates[0] / PLAYBOOK} not found: set TX2SETUP_PLAYBOOK_DIR to a directory holding playbooks/ and roles/"
    )


@cache
def role_file(path: Path, what: str = "defaults") -> dict[str, Any]:
    """A role's YAML variables file (defaults/main.yml, a vars/ file) as a mapping, read once."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise EnvironmentProblem(f"{path}: cannot read the role's {what}: {exc}") from None
    if not isinstance(data, dict):
        raise EnvironmentProblem(f"{path}: the role's {what} are not a mapping")
    return data


def role_default(role: str, name: str, variables: dict[str, Any] | None = None) -> Any:
    """`name` as roles/<role>/defaults/main.yml sets it, templated as Ansible would with
    `variables` (e.g. jetson_base_swap_size_mb depends on plan_emulated)."""
    path = project_root() / "roles" / role / "defaults" / "main.yml"
    defaults = role_file(path)
    if name not in defaults:
        raise EnvironmentProblem(f"{path}: no default for {name}")
    value = defaults[name]
    if not (isinstance(value, str) and "{{" in value):
        return value
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar

    # Ansible's own templating (ansible-core lib/ansible/template/__init__.py, class Templar),
    # so filters such as `bool` and `default` mean what they mean in the play
    return Templar(loader=DataLoader(), variables=variables or {}).template(value)
