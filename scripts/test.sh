#!/usr/bin/env bash
# The whole test suite: set up, lint (ruff, mypy, yamllint, ansible-lint, vermin), pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
ruff check .
ruff format --check .
mypy
yamllint -s .
[ -d roles ] && [ -n "$(ls roles)" ] && ansible-lint --profile production playbooks roles
vermin -q --no-tips --violations -t=3.6- tx2setup/bench
pytest -q "$@"
