#!/usr/bin/env bash
# Runs the whole test suite (unit tests and integration tests on a real local control plane), after set-up.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$repo/scripts/setup.sh"
cd "$repo"
exec .venv/bin/python -m pytest "$@"
