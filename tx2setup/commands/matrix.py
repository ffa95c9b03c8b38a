"""`tx2setup matrix`: which versions go together."""

from __future__ import annotations

import click

from tx2setup.commands.options import JSON


@click.command("matrix")
@click.option("--module", "module", help="Only releases that support this module (e.g. tx2).")
@click.option("--jetpack", help="Only this JetPack (4.6 also matches 4.6.x).")
@click.option("--l4t", help="Only this L4T (32.7 also matches 32.7.x).")
@JSON
def matrix(module: str | None, jetpack: str | None, l4t: str | None, json_out: str | None) -> None:
    """Show the compatibility matrix: JetPack, L4T, CUDA stack, ROS, PyTorch, ZED SDK."""
    from tx2setup import matrix as mx
    from tx2setup.console import emit_json, json_to_stdout, print_table

    data = mx.load()
    releases = data.filter(module=module, jetpack=jetpack, l4t=l4t)
    emit_json(
        json_out,
        {
            "schema_version": data.schema_version,
            "releases": [r.model_dump() for r in releases],
            "modules": {k: data.module(k).model_dump() for k in data.modules if module in (None, k)},
        },
    )
    if json_to_stdout(json_out):
        return
    if module is not None:
        mod = data.module(module)
        rows = [
            ("SoC / CUDA arch", f"{mod.soc} / {mod.cuda_arch} (sm_{mod.cuda_arch.replace('.', '')})"),
            ("model string", mod.model),
            ("flash board", mod.flash_board),
        ]
        tables: dict[str, list[str]] = {}
        for r in releases:
            modes = data.module(module, jetpack=r.jetpack).power_modes
            text = ", ".join(f"{k} {v}" for k, v in sorted(modes.items()))
            tables.setdefault(text, []).append(r.jetpack)
        for text, jps in tables.items():
            span = jps[0] if len(jps) == 1 else f"{jps[0]} to {jps[-1]}"
            rows.append((f"power modes (JetPack {span})", f"{text}; default {mod.default_power_mode}"))
        if mod.notes:
            rows.append(("note", mod.notes))
        print_table(mod.name, ("field", "value"), rows)
    footnotes: list[str] = []
    release_rows: list[tuple[str, ...]] = []
    for r in releases:
        mark = ""
        if r.notes:
            footnotes.append(r.notes)
            mark = f" [{len(footnotes)}]"
        torch = "-"
        if r.pytorch:
            torch = f"{r.pytorch.version} (tv {r.pytorch.torchvision})" + ("" if r.pytorch.url_verified else " *")
        release_rows.append(
            (
                r.jetpack + mark,
                r.l4t,
                r.ubuntu,
                r.python,
                f"{r.cuda} / {r.cudnn} / {r.tensorrt}",
                r.ros,
                torch,
                r.zed_sdk.version if r.zed_sdk else "-",
                ", ".join(m + ("*" if m in r.power_modes else "") for m in r.modules),
            )
        )
    cols = ("JetPack", "L4T", "Ubuntu", "Python", "CUDA / cuDNN / TRT", "ROS", "PyTorch", "ZED", "Modules")
    caption = "PyTorch *: wheel URL unverified, use the index; module*: own power modes on this release (--module)"
    print_table("tx2setup compatibility matrix", cols, release_rows, caption=caption + "; URLs: --json")
    for n, note in enumerate(footnotes, 1):
        click.echo(f"[{n}] {note}")
