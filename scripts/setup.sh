#!/usr/bin/env bash
# One-time (and idempotent) set-up on a fresh machine: the virtualenv at .venv with the project and its test
# dependencies, and the cached local control plane (scripts/build-controlplane.sh).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' || { echo "Python >= 3.10 is required" >&2; exit 1; }
  "$python" -m venv .venv
fi
stamp=.venv/.pvc-restore-installed
want=$(sha256sum pyproject.toml | cut -c1-16)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -e '.[test]'
  echo "$want" > "$stamp"
fi
# restic (Debian's) for the `snapshots` tests, which read a real restic repository.
if ! command -v restic >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq restic >/dev/null
  else
    echo "restic is required by the tests: install it (e.g. sudo apt-get install restic)" >&2
    exit 1
  fi
fi
bash scripts/build-controlplane.sh >/dev/null
