"""`tx2setup sim`: emulated Jetson boards on this Linux host (thin shims over tx2setup.sim)."""

from __future__ import annotations

import os
import shutil

import click

from tx2setup.commands.options import JSON


@click.group("sim")
def sim() -> None:
    """Emulated Jetson boards: systemd-nspawn containers with a Jetson identity, on
    127.0.1.x, reachable by SSH (needs root)."""


@sim.command("up")
@click.option("--boards", "count", type=int, default=None, help="How many boards (default 1 for a new fleet).")
@click.option("--module", help="Jetson module of the boards (default tx2).")
@click.option("--jetpack", help="JetPack of the boards (default: the newest the module runs).")
@click.option("--spec", "spec_file", type=click.Path(dir_okay=False), help="YAML file listing the boards.")
@JSON
def up(count: int | None, module: str | None, jetpack: str | None, spec_file: str | None, json_out: str | None) -> None:
    """Bring the fleet up (idempotent): build the base once, start every board."""
    from tx2setup.errors import UserError
    from tx2setup.sim import Fleet, spec
    from tx2setup.sim.hostcmd import require_root

    require_root()
    if spec_file and (count or module or jetpack):
        raise UserError("--spec: give either a spec file or --boards/--module/--jetpack, not both")
    fleet = Fleet()
    if spec_file:
        specs: list[spec.BoardSpec] | None = spec.load_spec(spec_file, fleet.matrix)
    elif count or module or jetpack:
        specs = spec.from_args(count or 1, module, jetpack, fleet.matrix)
    else:
        specs = None
    from tx2setup.console import emit_json, json_to_stdout, progress_line

    boards = fleet.up(specs)
    for b in boards:  # Fleet.up reports once every board answers; a line each for logs
        booted = fleet.boot_seconds.get(b.name)
        progress_line(b.name, "sim up", f"ssh up in {booted:.1f}s" if booted is not None else "already running")
    for line in fleet.warnings:
        click.echo(line, err=True)
    emit_json(json_out, _status_doc(fleet))
    if json_to_stdout(json_out):
        return
    _print_status(fleet)
    click.echo(f"inventory: {fleet.layout.inventory}  (ssh: tx2setup sim ssh {boards[0].name})")


@sim.command("down")
@click.option("--destroy", is_flag=True, help="Also delete the boards' disks, keys and state.")
def down(destroy: bool) -> None:
    """Stop every board and the fleet's HTTP server (nothing stays mounted or running)."""
    from tx2setup.sim import Fleet

    fleet = Fleet()
    n = len(fleet.boards()) if fleet.layout.state.exists() else 0
    fleet.down(destroy=destroy)
    click.echo(f"{n} board(s) down{' and destroyed' if destroy else ''}")


@sim.command("status")
@JSON
def status(json_out: str | None) -> None:
    """Show every board: address, module, JetPack, state."""
    from tx2setup.console import emit_json, json_to_stdout
    from tx2setup.sim import Fleet

    fleet = Fleet()
    emit_json(json_out, _status_doc(fleet))
    if json_to_stdout(json_out):
        return
    _print_status(fleet)


def _status_doc(fleet: object) -> dict[str, object]:
    from tx2setup.sim import Fleet

    assert isinstance(fleet, Fleet)
    sts = fleet.status()
    return {
        "fleet": str(fleet.layout.fleet),
        "http": {"port": fleet.upstream().port, "running": fleet.http_running()},
        "boards": [{**s.board.to_dict(), "state": s.state, "pid": s.pid, "ssh": s.ssh} for s in sts],
    }


@sim.command("inventory")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write here (default: print it).")
def inventory(output: str | None) -> None:
    """Write a standard Ansible inventory for the boards (keys, known_hosts, stand-in URLs)."""
    from tx2setup.sim import Fleet
    from tx2setup.sim.hostcmd import require_root

    require_root()
    fleet = Fleet()
    if output:
        click.echo(str(fleet.write_inventory(output)))
    else:
        click.echo(fleet.write_inventory().read_text(), nl=False)


@sim.command("ssh", context_settings={"ignore_unknown_options": True})
@click.argument("name")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
def ssh(name: str, command: tuple[str, ...]) -> None:
    """Open a shell (or run COMMAND) on board NAME as root."""
    from tx2setup.errors import EnvironmentProblem
    from tx2setup.sim import Fleet
    from tx2setup.sim.hostcmd import require_root

    require_root()
    argv = Fleet().board(name).ssh_argv(*command)
    exe = shutil.which("ssh")
    if exe is None:
        raise EnvironmentProblem("ssh not found: install openssh-client")
    os.execv(exe, argv)  # noqa: S606 - replace this process with ssh, argv is a list


@sim.command("fault")
@click.argument("name")
@click.argument("kind")
@click.option("--for", "seconds", type=float, default=None, help="Undo the fault after this many seconds.")
@click.option("--loss", type=int, default=15, show_default=True, help="net-flaky: percent of packets dropped.")
def fault(name: str, kind: str, seconds: float | None, loss: int) -> None:
    """Inject a fault into board NAME (KIND: power-cut, net-down, net-flaky, disk-full,
    apt-locked, clock-wrong, sshd-down, reboot), or undo its faults (KIND: clear)."""
    from tx2setup.sim import Fleet
    from tx2setup.sim import fault as faults
    from tx2setup.sim.hostcmd import require_root

    require_root()
    if kind == "clear":
        lines = faults.clear(Fleet(), name) or [f"board {name}: no faults to clear"]
    else:
        lines = [faults.inject(Fleet(), name, kind, seconds, loss)]
    for line in lines:
        click.echo(line)


def _print_status(fleet: object) -> None:
    from tx2setup.console import print_table
    from tx2setup.sim import Fleet

    assert isinstance(fleet, Fleet)
    sts = fleet.status()
    rows = [(s.name, s.board.address, s.board.module, s.board.jetpack, s.board.l4t, s.state) for s in sts]
    http = "up" if fleet.http_running() else "down"
    print_table(
        f"emulated boards ({fleet.layout.fleet})",
        ("board", "address", "module", "JetPack", "L4T", "state"),
        rows,
        caption=f"stand-in upstream: http://127.0.0.1:{fleet.upstream().port} ({http})",
    )
