"""Fixtures for the board checks: each host's resolved plan and check settings.

The plan comes from `--tx2setup-plan FILE` (JSON written by `tx2setup verify`) or is
resolved from the inventory (`--tx2setup-inventory` or testinfra's `--ansible-inventory`)
through tx2setup itself, so the checks and `inventory check` agree on what is expected.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from tx2setup.verify import check_settings


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("tx2setup")
    group.addoption("--tx2setup-plan", help="JSON file: {host: {plan..., settings...}} written by tx2setup verify")
    group.addoption("--tx2setup-inventory", help="inventory to resolve plans from (default: --ansible-inventory)")


def _plans_from_inventory(path: str) -> dict[str, dict[str, Any]]:
    from tx2setup import board
    from tx2setup.verify import plans_document

    # `tx2setup verify --vault-password-file` sets this for the pytest it starts; a
    # standalone run takes it from the caller's environment, as ansible-inventory would
    return plans_document(board.load(path, vault_password_file=os.environ.get("ANSIBLE_VAULT_PASSWORD_FILE") or None))


@pytest.fixture(scope="session")
def all_plans(pytestconfig: pytest.Config) -> dict[str, dict[str, Any]]:
    plan_file = pytestconfig.getoption("--tx2setup-plan")
    if plan_file:
        with open(plan_file, encoding="utf-8") as fh:
            data: dict[str, dict[str, Any]] = json.load(fh)
        return data
    inventory = pytestconfig.getoption("--tx2setup-inventory")
    inventory = inventory or pytestconfig.getoption("--ansible-inventory", None)
    if not inventory:
        raise pytest.UsageError(
            "give --tx2setup-plan FILE or an inventory (--tx2setup-inventory / --ansible-inventory)"
        )
    return _plans_from_inventory(inventory)


@pytest.fixture
def plan(host: Any, all_plans: dict[str, dict[str, Any]]) -> dict[str, Any]:
    name = host.backend.get_hostname()
    if name not in all_plans:
        pytest.fail(f"no plan for host {name!r} (known: {', '.join(sorted(all_plans))})")
    return all_plans[name]


@pytest.fixture
def settings(plan: dict[str, Any]) -> dict[str, Any]:
    """The plan file's settings over the defaults `verify` would use for this board."""
    return {**check_settings(plan["name"], {}, bool(plan["emulated"])), **plan.get("settings", {})}
