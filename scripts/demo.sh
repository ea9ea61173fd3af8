#!/usr/bin/env bash
# The demo: a local control plane, a sample app with a PVC and a ReplicationSource, the controller, and a restore
# from annotation to Finished. Does all set-up first.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$repo/scripts/setup.sh"
cd "$repo"
exec .venv/bin/python -m devtools.demo "$@"
