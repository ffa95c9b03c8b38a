"""`tx2setup matrix`: which versions go together."""

from __future__ import annotations

import click


@click.command("matrix")
@click.option("--module", "module", help="Only releases that support this module (e.g. tx2).")
@click.option("--jetpack", help="Only this JetPack (4.6 also matches 4.6.x).")
@click.option("--l4t", help="Only this L4T (32.7 also matches 32.7.x).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def matrix(module: str | None, jetpack: str | None, l4t: str | None, as_json: bool) -> None:
    """Show the compatibility matrix: JetPack, L4T, CUDA stack, ROS, PyTorch, ZED SDK."""
    from tx2setup import matrix as mx
    from tx2setup.console import print_json, print_table

    data = mx.load()
    releases = data.filter(module=module, jetpack=jetpack, l4t=l4t)
    if as_json:
        print_json(
            {
                "schema_version": data.schema_version,
                "releases": [r.model_dump() for r in releases],
                "modules": {k: data.module(k).model_dump() for k in data.modules if module in (None, k)},
            }
        )
        return
    rows = [
        (
            r.jetpack,
            r.l4t,
            r.ubuntu,
            r.python,
            f"{r.cuda} / {r.cudnn} / {r.tensorrt}",
            r.ros,
            f"{r.pytorch.version} (tv {r.pytorch.torchvision})" if r.pytorch else "-",
            r.zed_sdk.version if r.zed_sdk else "-",
            ", ".join(r.modules),
        )
        for r in releases
    ]
    cols = ("JetPack", "L4T", "Ubuntu", "Python", "CUDA / cuDNN / TRT", "ROS", "PyTorch", "ZED", "Modules")
    print_table("tx2setup compatibility matrix", cols, rows, caption="notes and URLs: tx2setup matrix --json")
