"""Output anywhere (issue 15): off a terminal, tables print whole at their natural width and
long verbs print timestamped lines; every verb spells a shared option the same way."""

from __future__ import annotations

import configparser
import io
import re
from collections.abc import Iterator
from pathlib import Path

import click
import pytest

from tx2setup import cli, console
from tx2setup.commands.options import DEFAULT_FORKS

ROOT = Path(__file__).resolve().parents[2]
LONG = "tx2-1 failed at 'jetpack: Refuse a board flashed with another L4T': " + "word " * 60 + "END"


def test_a_table_off_a_terminal_keeps_every_cell_whole(capsys: pytest.CaptureFixture[str]) -> None:
    rows = [("car-tx2-01-with-a-long-name", "failed", LONG), ("b2", "ok", "multi\nline message")]
    console.print_table("provision summary", ("board", "status", "message"), rows, caption="logs: /x")
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == "provision summary" and lines[-1] == "logs: /x"
    assert lines[1].split() == ["board", "status", "message"]
    # one line per row, nothing cut or wrapped, whatever the length
    assert lines[3].startswith("car-tx2-01-with-a-long-name  failed  ") and lines[3].endswith(LONG)
    assert lines[4].split(None, 2) == ["b2", "ok", "multi line message"]
    assert "…" not in out and len(lines) == 6
    assert all(line == line.rstrip() for line in lines)


def test_progress_lines_are_timestamped_and_whole() -> None:
    buf = io.StringIO()
    console.progress_line("tx2-1", "provision jetpack", LONG, stream=buf)
    (line,) = buf.getvalue().splitlines()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d tx2-1 provision jetpack: .*END", line)


def test_json_goes_to_stdout_or_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    console.emit_json("-", {"a": 1})
    console.emit_json(str(tmp_path / "d" / "x.json"), {"b": 2})
    console.emit_json(None, {"c": 3})
    assert capsys.readouterr().out == '{\n  "a": 1\n}\n'
    assert (tmp_path / "d" / "x.json").read_text() == '{\n  "b": 2\n}\n'


def _commands() -> Iterator[tuple[str, click.Command]]:
    ctx = click.Context(cli.main)
    for name in cli.main.list_commands(ctx):
        cmd = cli.main.get_command(ctx, name)
        assert cmd is not None
        if isinstance(cmd, click.Group):
            for sub in cmd.commands.values():
                yield f"{name} {sub.name}", sub
        else:
            yield name, cmd


# options shared by several verbs whose meaning differs on purpose
SPECIFIC = {"--db", "--timeout", "--lock", "--html", "--junit", "--bsp-mirror", "--module", "--jetpack"}


def test_a_shared_option_has_one_name_type_and_help_in_every_verb() -> None:
    seen: dict[str, tuple[str, tuple[tuple[str, ...], str, str | None]]] = {}
    for verb, cmd in _commands():
        for p in cmd.params:
            long = max(p.opts, key=len)
            if not isinstance(p, click.Option) or long in SPECIFIC:
                continue
            spec = (tuple(sorted(p.opts)), repr(p.type.to_info_dict()), p.help)
            first_verb, first = seen.setdefault(long, (verb, spec))
            assert spec == first, f"{long}: `{verb}` declares {spec}, `{first_verb}` declares {first}"
    assert {"--inventory", "--limit", "--json", "--forks", "--duration"} <= set(seen)


def test_every_verb_that_reports_takes_json() -> None:
    reporting = {"matrix", "inventory check", "flash", "provision", "verify", "status", "report", "cache sync",
                 "cache list", "cache verify", "sim up", "sim status"}  # fmt: skip
    with_json = {verb for verb, cmd in _commands() if any("--json" in p.opts for p in cmd.params)}
    assert reporting <= with_json, reporting - with_json


def test_ask_become_pass_sits_with_the_connection_options() -> None:
    for verb in ("provision", "verify", "status"):
        cmd = dict(_commands())[verb]
        names = [max(p.opts, key=len) for p in cmd.params if isinstance(p, click.Option)]
        start = names.index("--inventory")
        assert names[start : start + 5] == [
            "--inventory",
            "--limit",
            "--vault-password-file",
            "--ask-become-pass",
            "--become-password-file",
        ], (verb, names)


def test_default_forks_is_ansible_cfgs() -> None:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "ansible.cfg")
    assert cfg.getint("defaults", "forks") == DEFAULT_FORKS


def test_bench_takes_duration_and_the_old_name() -> None:
    import importlib

    bench_cli = importlib.import_module("tx2setup.bench.cli")
    parser = bench_cli.build_parser()
    assert parser.parse_args(["--duration", "7"]).min_duration == 7.0
    assert parser.parse_args(["--min-duration", "8"]).min_duration == 8.0
    assert "--min-duration" not in parser.format_help() and "--duration" in parser.format_help()


def test_provision_off_a_terminal_prints_a_line_per_board_per_role(capsys: pytest.CaptureFixture[str]) -> None:
    from tx2setup.commands.provision import PlainProgress
    from tx2setup.provision import HostProgress

    show = PlainProgress()
    a, b = HostProgress("tx2-1", role="jetson_base"), HostProgress("nx-1", role="jetson_base")
    show({"tx2-1": a, "nx-1": b})
    show({"tx2-1": a, "nx-1": b})  # no news: nothing printed
    a.role, b.failed, b.failed_task, b.message = "jetpack", 1, "jetpack: Refuse a board", LONG
    show({"tx2-1": a, "nx-1": b})
    a.finished, a.ok, a.changed = a.started + 42, 30, 2
    show({"tx2-1": a, "nx-1": b})
    # the elapsed time depends on this host's speed; the rest is exact
    lines = [re.sub(r"\(\d+s in\)", "(Ns in)", ln.split(" ", 1)[1]) for ln in capsys.readouterr().err.splitlines()]
    assert lines == [
        "tx2-1 provision jetson_base: started (Ns in)",
        "nx-1 provision jetson_base: started (Ns in)",
        "tx2-1 provision jetpack: started (Ns in)",
        f"nx-1 provision: failed at 'jetpack: Refuse a board': {LONG}",
        "tx2-1 provision: done (ok=30 changed=2, 42s)",
    ]


def test_flash_off_a_terminal_prints_a_line_per_board_per_phase(capsys: pytest.CaptureFixture[str]) -> None:
    from tx2setup.commands.flash import PlainFlashProgress
    from tx2setup.flash.runner import Event

    show = PlainFlashProgress()
    for ev in (Event("car-1", phase="writing"), Event("car-1", line="x"), Event("car-1", status="flashed")):
        show(ev)
    lines = [ln.split(" ", 1)[1] for ln in capsys.readouterr().err.splitlines()]
    assert lines == ["car-1 flash: writing", "car-1 flash: flashed"]
