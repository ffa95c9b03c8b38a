"""jetson_base's clock repair (roles/jetson_base/tasks/clock.yml, issue 13), decision and
command line, in a real ansible-playbook run on this host with a stand-in `date` first in
PATH: it answers `date -u +%s` with a clock years behind (or right) and records any
`date -u -s ...` instead of setting this host's clock; `timedatectl` likewise.

What this does not exercise: a real board's clock being set. An emulated board shares the
host's clock (CLOCK_REALTIME has no namespace), and libfaketime would fake the reading but
not a `date -s`; docs/reliability.md and docs/real-boards.md say so."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
YEARS_BEHIND = 3 * 365 * 86400

STUB = """#!/bin/sh
# stand-in for date(1)/timedatectl(1): reads from $CLOCK_STUB_NOW, records every call
echo "$(basename "$0") $*" >> "$CLOCK_STUB_CALLS"
case "$*" in
  "-u +%s") echo "$CLOCK_STUB_NOW" ;;
esac
"""


def _play(tmp_path: Path, board_now: int, extra: dict[str, object] | None = None) -> tuple[list[str], dict[str, int]]:
    stubs = tmp_path / "bin"
    stubs.mkdir(exist_ok=True)
    for tool in ("date", "timedatectl"):
        (stubs / tool).write_text(STUB)
        (stubs / tool).chmod(0o755)
    calls = tmp_path / "calls.txt"
    calls.write_text("")
    play = tmp_path / "play.yml"
    play.write_text(
        "- hosts: localhost\n  connection: local\n  gather_facts: false\n"
        f"  environment:\n    PATH: \"{stubs}:{{{{ lookup('ansible.builtin.env', 'PATH') }}}}\"\n"
        f"    CLOCK_STUB_NOW: '{board_now}'\n    CLOCK_STUB_CALLS: '{calls}'\n"
        f"  tasks:\n    - ansible.builtin.import_tasks: {ROOT / 'roles/jetson_base/tasks/clock.yml'}\n"
    )
    env = {
        **os.environ,
        "ANSIBLE_HOME": str(tmp_path / "ah"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_LOCALHOST_WARNING": "false",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false",
    }
    argv = [str(BIN / "ansible-playbook"), str(play), "-e", json.dumps(extra or {})]
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    recap = re.search(r"^localhost\s+:\s+(.*)$", proc.stdout, re.M)  # the default callback's PLAY RECAP
    assert recap is not None, proc.stdout[-2000:]
    stats = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", recap.group(1))}
    return calls.read_text().splitlines(), stats


@pytest.mark.parametrize("behind", [YEARS_BEHIND, 2 * 3600])
def test_a_clock_far_behind_is_set_from_the_controller_and_ntp_turned_on(tmp_path: Path, behind: int) -> None:
    before = int(time.time())
    calls, stats = _play(tmp_path, before - behind)
    after = int(time.time())
    assert calls[0] == "date -u +%s"
    setting = [c for c in calls if c.startswith("date -u -s @")]
    assert len(setting) == 1, calls
    assert before <= int(setting[0].rsplit("@", 1)[1]) <= after  # the controller's time, not the board's
    assert "timedatectl set-ntp true" in calls
    assert stats["changed"] == 2


def test_a_clock_close_enough_is_left_alone(tmp_path: Path) -> None:
    calls, stats = _play(tmp_path, int(time.time()) - 30)
    assert calls == ["date -u +%s"]
    assert stats["changed"] == 0


def test_a_clock_ahead_past_the_limit_is_set_too_and_the_limit_is_a_variable(tmp_path: Path) -> None:
    calls, _ = _play(tmp_path, int(time.time()) + 7200)
    assert any(c.startswith("date -u -s @") for c in calls), calls
    calls, _ = _play(tmp_path, int(time.time()) - 7200, {"jetson_base_clock_max_skew": 86400})
    assert calls == ["date -u +%s"]
