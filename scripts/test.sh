#!/usr/bin/env bash
# The whole test suite: set up, lint (ruff, mypy, yamllint, ansible-lint, vermin), pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
# the project's own suite: a missing chromium/chromedriver fails the browser tests instead of skipping them
export TX2SETUP_FULL_SUITE=1
ruff check .
ruff format --check .
mypy
yamllint -s .
[ -d roles ] && [ -n "$(ls roles)" ] && ansible-lint --profile production playbooks roles
# the harness and the facts script run on the boards: Python 3.6 (JetPack 4) and newer
vermin -q --no-tips --violations -t=3.6- tx2setup/bench roles/jetson_base/files/tx2setup.fact plugins/modules/converged.py
pytest -q "$@"
