#!/usr/bin/env bash
# The main job on the embedded default: set up, boot two emulated Jetson boards (TX2 on
# JetPack 4.6.4, Xavier NX on 5.1.2), provision them with the Ansible roles, verify them
# (testinfra checks + the Z2Color acceptance benchmark, real torch on the boards), and
# write the HTML report. Needs root (emulated boards are systemd-nspawn containers).
# Outputs go to $TX2SETUP_DEMO_OUT (default: out/demo). `tx2setup sim down` stops the boards.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
out=${TX2SETUP_DEMO_OUT:-out/demo}
mkdir -p "$out"

tx2setup sim up --spec inventory/sim/demo-fleet.yml
tx2setup sim inventory -o "$out/sim.ini"
tx2setup inventory check -i "$out/sim.ini"
tx2setup provision -i "$out/sim.ini"
rc=0
tx2setup verify -i "$out/sim.ini" --db "$out/history.db" \
  --html "$out/report.html" --junit "$out/verify.junit.xml" --json "$out/verify.json" || rc=$?
tx2setup report --db "$out/history.db"
echo "report: $out/report.html   (boards stay up: tx2setup sim status / sim ssh NAME / sim down)"
exit "$rc"
