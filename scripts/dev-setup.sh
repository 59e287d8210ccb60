#!/usr/bin/env bash
# One set-up for a fresh machine: system packages (Debian chromium, poppler-utils), a virtual
# environment in .venv and the project with its test extra. Idempotent; both README commands
# and .ci/run call it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-system.sh
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[test]"
echo "environment ready: $(pwd)/.venv"
