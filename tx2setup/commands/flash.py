"""`tx2setup flash`: boards in USB recovery mode get the planned L4T (host side)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from tx2setup.commands.options import JSON, LIMIT, connection_options, inventory_option


def _ask_board(device: object, names: list[str]) -> str | None:
    from tx2setup.flash.detect import RecoveryDevice

    assert isinstance(device, RecoveryDevice)
    choice = click.prompt(
        f"Which inventory host is the {device.module_label} at USB port {device.port}? (or 'skip')",
        type=click.Choice([*names, "skip"]),
        default="skip",
        err=True,
    )
    return None if choice == "skip" else str(choice)


def _ask(prompt: str, hide: bool) -> str:
    return str(click.prompt(prompt, hide_input=hide, confirmation_prompt=hide, err=True))


@click.command("flash")
@inventory_option(required=False)
@LIMIT
@connection_options
@click.option("--list", "list_only", is_flag=True, help="Only show boards in recovery mode and their hosts.")
@JSON
@click.option(
    "--bsp",
    type=click.Path(file_okay=False),
    help="A Linux_for_Tegra folder for the planned L4T (default: the per-L4T cache, built from NVIDIA's tarballs).",
)
@click.option(
    "--bsp-mirror",
    envvar="TX2SETUP_BSP_MIRROR",
    help="Base URL that serves the BSP tarballs by file name, instead of NVIDIA's download URLs.",
)
@click.option("--lock", "lock_path", type=click.Path(dir_okay=False), help="Pin file (default: next to the inventory).")
@click.option("--one-by-one", is_flag=True, help="Flash boards one at a time instead of a mass flash.")
@click.option("--accept-license", is_flag=True, help="Accept NVIDIA's L4T license (needed to create the default user).")
@click.option(
    "--timeout", "timeout_s", type=float, default=3600.0, show_default=True, help="Seconds until a flash is killed."
)
@click.option("--wait/--no-wait", default=True, show_default=True, help="Wait for flashed boards on the network (SSH).")
@click.option("--wait-timeout", "wait_timeout_s", type=float, default=900.0, show_default=True, help="Seconds to wait.")
@click.option("--then-provision", is_flag=True, help="Provision the flashed boards right away.")
@click.option(
    "--write-become-vault",
    "become_vault",
    type=click.Path(dir_okay=False),
    help="Write the created user's sudo password, vaulted, as ansible_become_password into this "
    "group_vars/host_vars file next to the inventory (e.g. group_vars/all/become.yml); "
    "encrypted with --vault-password-file / ANSIBLE_VAULT_PASSWORD_FILE.",
)
@click.option("--log-dir", type=click.Path(file_okay=False), help="Where the per-board logs go.")
@click.option("--min-free-gib", type=float, default=32.0, show_default=True, help="Free disk the BSP folder needs.")
@click.option("--sysfs-root", default="/sys", show_default=True, help="Where sysfs is (for tests).")
def flash(
    inventory: Path | None,
    limit: str | None,
    vault_password_file: str | None,
    ask_become_pass: bool,
    become_password_file: str | None,
    list_only: bool,
    json_out: str | None,
    bsp: str | None,
    bsp_mirror: str | None,
    lock_path: str | None,
    one_by_one: bool,
    accept_license: bool,
    timeout_s: float,
    wait: bool,
    wait_timeout_s: float,
    then_provision: bool,
    become_vault: str | None,
    log_dir: str | None,
    min_free_gib: float,
    sysfs_root: str,
) -> None:
    """Flash boards in USB recovery mode with the L4T their plan names (run as root on the host).

    One board: flash.sh (initrd/NVMe path for Orin NX/Nano). Several identical boards:
    l4t_initrd_flash.sh --massflash. Boards are matched to inventory hosts by usb_port or
    board_serial, or by asking. Without --bsp, the BSP of the planned L4T is built once
    from NVIDIA's tarballs, fetched through the artifact cache and pinned in tx2setup.lock.
    """
    from tx2setup.errors import UserError
    from tx2setup.flash import session

    interactive = sys.stdin.isatty()
    if list_only:
        _list(
            Path(sysfs_root),
            inventory,
            limit,
            json_out,
            _ask_board if interactive and inventory else None,
            vault_password_file,
        )
        return
    if inventory is None:
        raise UserError("flash: -i/--inventory is required (or use --list to only look)")
    opts = session.FlashOptions(
        inventory=Path(inventory),
        limit=limit,
        sysfs_root=Path(sysfs_root),
        bsp=Path(bsp) if bsp else None,
        bsp_mirror=bsp_mirror,
        lock_path=Path(lock_path) if lock_path else None,
        one_by_one=one_by_one,
        timeout_s=timeout_s,
        log_dir=Path(log_dir) if log_dir else None,
        wait=wait,
        wait_timeout_s=wait_timeout_s,
        then_provision=then_provision,
        min_free_bytes=int(min_free_gib * session.GIB),
        vault_password_file=vault_password_file,
        accept_license=accept_license,
        become_vault=Path(become_vault).absolute() if become_vault else None,
    )
    hooks = session.Hooks(
        ask_board=_ask_board if interactive else None,
        ask=_ask if interactive else None,
        note=lambda msg: click.echo(msg, err=True),
    )
    if (ask_become_pass or become_password_file) and not then_provision:
        raise UserError("-K/--become-password-file are for --then-provision (provisioning after the flash)")
    from tx2setup import become

    # asked before the flash starts, not after it: nobody waits at the prompt for an hour
    with become.password_file(ask_become_pass, become_password_file) as become_file:
        _flash_then_provision(opts, hooks, json_out, become_file)


class PlainFlashProgress:
    """Off a terminal, the live view's stand-in: a timestamped line per board per phase."""

    def __init__(self) -> None:
        self._phase: dict[str, str] = {}

    def __enter__(self) -> PlainFlashProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def __call__(self, event: Any) -> None:
        from tx2setup.console import progress_line

        phase = event.status if event.status is not None else event.phase
        if phase is not None and phase != self._phase.get(event.board):
            self._phase[event.board] = phase
            progress_line(event.board, "flash", str(phase))


def _flash_then_provision(opts: Any, hooks: Any, json_out: str | None, become_file: str | None) -> None:
    from tx2setup.errors import RemoteError
    from tx2setup.flash import session

    then_provision, vault_password_file = opts.then_provision, opts.vault_password_file
    prep = session.prepare(opts, hooks)
    for line in prep.skipped:
        click.echo(f"warning: {line}", err=True)

    from tx2setup.console import is_terminal, json_to_stdout
    from tx2setup.flash.progress import ProgressView

    view: Any = ProgressView(prep.targets) if is_terminal(sys.stderr) else PlainFlashProgress()
    with view:
        hooks.on_event = view
        summary = session.execute(prep, hooks)
    failed = [r for r in summary.results if not r.ok]
    unseen = [r for r in summary.results if r.ok and r.network and not r.network.startswith("up")]
    chain = then_provision and not failed and not unseen
    if not (chain and json_out):
        _print_summary(summary, json_out)
    elif not json_to_stdout(json_out):  # chained JSON: one document, flash and provision together
        _print_summary(summary, None)
    if failed or unseen:
        parts = [f"{r.board} ({r.status})" for r in failed] + [f"{r.board} (not on the network)" for r in unseen]
        raise RemoteError(
            f"{len(parts)} of {len(summary.results)} boards: {', '.join(parts)}; logs in {summary.log_dir}"
        )
    if chain:
        click.echo(f"provisioning {', '.join(summary.flashed)} (--then-provision)", err=True)

        def show(result: Any) -> None:
            from tx2setup.console import emit_json

            emit_json(json_out, {**summary.to_dict(), "provision": result.to_dict()})
            if not json_to_stdout(json_out):
                # the summary `tx2setup provision` prints
                from tx2setup.commands.provision import print_summary

                print_summary(result)

        # the vault just written is read with the same vault password file (flag or env)
        from tx2setup.flash.become_vault import vault_password_file as vault_file

        session.run_provision(
            summary.inventory, summary.flashed, show, vault_file(vault_password_file), become_password_file=become_file
        )


LIST_KEYS = ("port", "product_id", "modules", "serial", "host", "matched_by", "check")


def _list(
    sysfs_root: Path,
    inventory: Path | None,
    limit: str | None,
    json_out: str | None,
    ask: object,
    vault_password_file: str | None = None,
) -> None:
    from tx2setup.console import emit_json, json_to_stdout, print_table
    from tx2setup.flash import session

    devices, result = session.survey(
        sysfs_root,
        Path(inventory) if inventory else None,
        limit,
        ask,  # type: ignore[arg-type]
        vault_password_file=vault_password_file,
    )
    who = {a.device.port: a for a in result.assigned} if result else {}
    rows = []
    for d in devices:
        a = who.get(d.port)
        if a is None:
            host, how, fit = "-", "-", "unassigned" if result else "-"
            if not d.supported:
                fit = "not flashed by tx2setup"
        else:
            host, how = a.board.name, a.how
            fit = "ok" if a.module_fits else f"MISMATCH: inventory says {a.board.module}"
        rows.append((d.port, d.product_id, d.module_label, d.serial or "-", host, how, fit))
    emit_json(
        json_out,
        {
            "devices": [dict(zip(LIST_KEYS, r, strict=True)) for r in rows],
            "absent": [b.name for b in result.absent] if result else [],
        },
    )
    if json_to_stdout(json_out):
        return
    cols = ("USB port", "product", "module", "serial", "inventory host", "matched by", "check")
    caption = None
    if result and result.absent:
        caption = "pinned in the inventory but not in recovery mode: " + ", ".join(b.name for b in result.absent)
    if not rows:
        caption = "no board in USB recovery mode" + (f"; {caption}" if caption else "")
    print_table("Boards in USB recovery mode", cols, rows, caption=caption)


def _print_summary(summary: object, json_out: str | None) -> None:
    from tx2setup.console import emit_json, json_to_stdout, print_table
    from tx2setup.flash.session import Summary

    assert isinstance(summary, Summary)
    emit_json(json_out, summary.to_dict())
    if json_to_stdout(json_out):
        return
    rows = [(r.board, r.port, r.module, r.status, f"{r.duration_s:.0f}s", r.network or "-") for r in summary.results]
    cols = ("board", "port", "module", "result", "time", "network")
    print_table(f"Flashed L4T {summary.l4t} ({summary.mode})", cols, rows, caption=f"logs: {summary.log_dir}")
    for r in summary.results:
        if not r.ok:
            click.echo(f"{r.board}: {r.status}: {r.detail} (log: {r.log})")
    for line in summary.skipped:
        click.echo(f"not flashed: {line}")
    if summary.password_generated:
        click.echo(f"user {summary.user}: SSH key only (a random password was set)")
    if summary.become_vault is not None:
        click.echo(f"sudo password of {summary.user}: vaulted as ansible_become_password in {summary.become_vault}")
    nxt = summary.next_step()
    if nxt:
        click.echo(f"next: {nxt}")
