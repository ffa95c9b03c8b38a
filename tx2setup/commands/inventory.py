"""`tx2setup inventory check`: validate an inventory and show each board's plan."""

from __future__ import annotations

from pathlib import Path

import click

from tx2setup.commands.options import JSON, LIMIT, VAULT_PASSWORD_FILE, inventory_option


@click.group("inventory")
def inventory() -> None:
    """Work with a fleet inventory (a standard Ansible inventory)."""


@inventory.command("check")
@inventory_option()
@LIMIT
@VAULT_PASSWORD_FILE
@JSON
def check(inventory: Path, limit: str | None, vault_password_file: str | None, json_out: str | None) -> None:
    """Validate the inventory and print the plan for every board."""
    from tx2setup import board
    from tx2setup.ansible_compat import warnings_for
    from tx2setup.console import emit_json, json_to_stdout, print_table

    fleet = board.load(inventory, limit=limit, vault_password_file=vault_password_file)
    plans = fleet.plans
    warnings = warnings_for(plans)
    emit_json(json_out, {"inventory": str(fleet.path), "boards": [p.to_dict() for p in plans], "warnings": warnings})
    if json_to_stdout(json_out):
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
