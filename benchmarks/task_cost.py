"""What one Ansible task costs the controller, by kind: executed module, skipped, set_fact,
a skipped include_tasks holding many tasks. The numbers behind issue 14's no-op CPU work.

    sudo .venv/bin/python benchmarks/task_cost.py -i INVENTORY --host NAME [--tasks 60] [--rounds 3] [--json out.json]

For each kind, a generated playbook of N such tasks (and the same play with none) runs with
ansible-playbook against one board; the controller's CPU (ansible-playbook, its forks, ssh
clients: a cpuacct cgroup that holds this process while it runs) of the empty play is
subtracted and the rest divided by N. Facts are not gathered. The board's own work is outside
the cgroup when it runs elsewhere (an emulated board's sshd and Python are not children of
this process). Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CG = Path("/sys/fs/cgroup/cpuacct")

KINDS: dict[str, str] = {
    "command": "- ansible.builtin.command: 'true'\n  changed_when: false\n",
    "stat": "- ansible.builtin.stat:\n    path: /etc/hostname\n",
    "skipped": "- ansible.builtin.command: 'true'\n  when: false\n",
    "set_fact": "- ansible.builtin.set_fact:\n    x_{i}: 1\n",
    "debug": "- ansible.builtin.debug:\n    msg: x\n  changed_when: false\n",
}


def playbook(host: str, body: str) -> str:
    return f"- hosts: {host}\n  gather_facts: false\n  tasks:\n" + "".join(
        "    " + line + "\n" for line in body.splitlines()
    )


def tasks_of(kind: str, n: int) -> str:
    if kind == "skipped_include":
        return "- ansible.builtin.include_tasks: inner.yml\n  when: false\n"
    return "".join(KINDS[kind].replace("{i}", str(i)) for i in range(n))


def cpu_of(inv: Path, host: str, text: str, work: Path, cg: Path, extra: list[str]) -> float:
    (work / "play.yml").write_text(playbook(host, text) if text else playbook(host, "- ansible.builtin.meta: noop\n"))
    before = int((cg / "cpuacct.usage").read_text())
    (cg / "cgroup.procs").write_text(str(os.getpid()))
    try:
        subprocess.run(
            [str(ROOT / ".venv/bin/ansible-playbook"), "-i", str(inv), *extra, str(work / "play.yml")],
            check=True,
            stdout=subprocess.DEVNULL,
            env={**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")},
        )
    finally:
        (CG / "cgroup.procs").write_text(str(os.getpid()))
    return (int((cg / "cpuacct.usage").read_text()) - before) / 1e9


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-i", "--inventory", type=Path, required=True)
    ap.add_argument("--host", required=True)
    ap.add_argument("--tasks", type=int, default=60)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--vault-password-file", type=Path, help="for an inventory whose become password is vaulted")
    args = ap.parse_args()
    extra = ["--vault-password-file", str(args.vault_password_file)] if args.vault_password_file else []
    cg = CG / f"tx2setup-taskcost-{os.getpid()}"
    cg.mkdir()
    rows: dict[str, list[float]] = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            (work / "inner.yml").write_text(tasks_of("command", args.tasks))
            kinds = ["empty", *KINDS, "skipped_include"]
            for _ in range(args.rounds):  # kinds alternate within a round: load drifts hit all alike
                for kind in kinds:
                    n = 0 if kind == "empty" else args.tasks
                    rows.setdefault(kind, []).append(
                        cpu_of(args.inventory, args.host, tasks_of(kind, n) if n else "", work, cg, extra)
                    )
    finally:
        # an ssh ControlPersist master may still be in the cgroup: then it stays
        with contextlib.suppress(OSError):
            cg.rmdir()
    empty = min(rows["empty"])
    out: dict[str, Any] = {"tasks": args.tasks, "rounds": args.rounds, "empty_play_cpu_s": rows["empty"], "kinds": {}}
    print(f"{'kind':<16} {'cpu-s per task (median of rounds)':>34}  runs (cpu-s, whole play)")
    for kind, vals in rows.items():
        if kind == "empty":
            continue
        per = sorted((v - empty) / args.tasks for v in vals)[len(vals) // 2]
        out["kinds"][kind] = {"per_task_cpu_s": round(per, 4), "play_cpu_s": [round(v, 2) for v in vals]}
        print(f"{kind:<16} {per:>34.4f}  {', '.join(f'{v:.2f}' for v in vals)}")
    print(f"empty play: {', '.join(f'{v:.2f}' for v in rows['empty'])} cpu-s")
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
