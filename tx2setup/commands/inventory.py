"""`tx2setup inventory check`: validate an inventory and show each board's plan."""

from __future__ import annotations

import click

from tx2setup.commands.options import VAULT_PASSWORD_FILE


@click.group("inventory")
def inventory() -> None:
    """Work with a fleet inventory (a standard Ansible inventory)."""


@inventory.command("check")
@click.option("-i", "--inventory", "path", required=True, help="Inventory file or directory (INI or YAML).")
@click.option("--limit", help="Only these hosts or groups (comma separated).")
@click.option("--json", "as_json", is_flag=True, help="Print the plans as JSON.")
@VAULT_PASSWORD_FILE
def check(path: str, limit: str | None, as_json: bool, vault_password_file: str | None) -> None:
    """Validate the inventory and print the plan for every board."""
    from tx2setup import fleet, plan
    from tx2setup.ansible_compat import warnings_for
    from tx2setup.console import print_json, print_table

    inv = fleet.load(path, limit=limit, vault_password_file=vault_password_file)
    plans = plan.resolve(inv)
    warnings = warnings_for(plans)
    if as_json:
        print_json({"inventory": str(inv.path), "boards": [p.to_dict() for p in plans], "warnings": warnings})
        return
    for p in plans:
        rows = [
            ("module", f"{p.module_name} ({p.soc}, sm_{p.cuda_arch.replace('.', '')})"),
            ("address", p.ansible_host),
            ("JetPack / L4T", f"{p.jetpack} / {p.l4t}"),
            ("Ubuntu / Python", f"{p.ubuntu} / {p.python}"),
            ("CUDA / cuDNN / TensorRT", f"{p.cuda} / {p.cudnn} / {p.tensorrt}"),
            ("power mode", f"{p.power_mode_id} {p.power_mode_name}"),
            ("ROS", p.ros_distro or "-"),
            ("PyTorch", _torch_cell(p.torch_version, p.torchvision_version)),
            ("ZED SDK", p.zed_sdk_version or "-"),
            ("Caffe", _caffe(p.caffe_use_cudnn) if "caffe" in p.components else "-"),
            ("target", f"{p.target_fps:g} FPS"),
        ]
        rows += [("note", n) for n in p.notes]
        print_table(p.name, ("field", "plan"), rows)
    for w in warnings:
        click.echo(f"warning: {w}", err=True)


def _caffe(use_cudnn: bool | None) -> str:
    return "source build" + ("" if use_cudnn else " (CUDA, without cuDNN)")


def _torch_cell(torch_version: str | None, torchvision_version: str | None) -> str:
    """'1.10.0 (torchvision 0.11.1)'; an overridden torch has no matrix torchvision to pair."""
    if not torch_version:
        return "-"
    return f"{torch_version} (torchvision {torchvision_version or 'not planned'})"
