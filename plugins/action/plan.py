# tx2setup.jetson.plan: resolve one board's plan on the controller, as the first task of
# the play (roles/validate_inventory). Why an action plugin (docs/ansible.md, "Plan
# resolution"): it reads the board's variables as the play sees them, whatever the
# inventory source (INI/YAML file, AWX inventory); it needs no ansible.cfg setting (a vars
# plugin must be enabled there); and a bad board fails *this task* with the CLI's one-line
# message, which an inventory or vars plugin can only turn into a parse error for all.
# The resolver is the tx2setup package's own (tx2setup/playvars.py), never a copy.
# Documentation: plugins/modules/plan.py.
from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleError
from ansible.plugins.action import ActionBase


class ActionModule(ActionBase):
    """Sets the board's plan_* facts or fails with the CLI's one-line message."""

    TRANSFERS_FILES = False
    _requires_connection = False
    _supports_check_mode = True
    _supports_async = False

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result: dict[str, Any] = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        try:
            from tx2setup import playvars
            from tx2setup.errors import Tx2SetupError
        except ImportError as exc:
            raise AnsibleError(
                f"the tx2setup Python package is not importable by this controller's Python ({exc}): "
                "install it where ansible-playbook runs (pip install tx2setup), or use the execution environment"
            ) from None
        name = str(task_vars.get("inventory_hostname"))
        own = self._board_vars(task_vars, name, playvars)
        try:
            facts, unpinned = playvars.play_vars(
                playvars.inventory_of(own, name),
                name,
                own,
                task_vars.get("group_names") or [],
                self._addresses(task_vars, name, playvars),
            )
        except Tx2SetupError as exc:
            return {**result, "failed": True, "msg": exc.message}
        if unpinned:
            result["warnings"] = [
                f"{name}: {url}: no sha256 pinned (run `tx2setup cache sync -i INVENTORY` to pin it)"
                for url in unpinned
            ]
        plan = facts["tx2setup_plan"]
        return {
            **result,
            "changed": False,
            "ansible_facts": facts,
            "msg": f"JetPack {plan['jetpack']} (L4T {plan['l4t']}) on {plan['module_name']}: "
            + (", ".join(plan["components"]) or "no components"),
        }

    def _plain(self, value: Any) -> Any:
        """A variable's value in plain Python types (Ansible's are str/list subclasses)."""
        if isinstance(value, str):
            return str(value)
        if isinstance(value, list | tuple):
            return [self._plain(v) for v in value]
        return value

    def _board_vars(self, task_vars: dict[str, Any], name: str, playvars: Any) -> dict[str, Any]:
        """The board's variables as the inventory (and -e) give them, templated: `hostvars`,
        not task_vars, whose role defaults (e.g. the ros role's ros_distro) are not the board's."""
        hv = (task_vars.get("hostvars") or {})[name]
        keys = (*playvars.BOARD_KEYS, playvars.CACHE_URL_VAR, playvars.LOCK_FILE_VAR, "inventory_file")
        return {k: self._plain(hv[k]) for k in keys if k in hv}

    def _addresses(self, task_vars: dict[str, Any], name: str, playvars: Any) -> dict[str, Any]:
        """Every other inventory host's (address, port), for the CLI's duplicate-address check."""
        hostvars = task_vars.get("hostvars") or {}
        out = {}
        for other in (task_vars.get("groups") or {}).get("all", []):
            if other == name:
                continue
            hv = hostvars[other]
            out[other] = playvars.address_of(
                {k: self._plain(hv[k]) for k in ("ansible_host", "ansible_port") if k in hv}
            )
        return out
